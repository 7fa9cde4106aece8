/** Merging the schemas workers evolved into the one a round commits with its files. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Schema } from '#shared/gen/sluice/v1/types.js';
import { field, schema } from '#test-support/builders.js';
import { mergeReportedSchemas } from '../src/schema-merge.js';

const current = schema(field(1, 'id', 'long', true), field(2, 'n', 'int'));
const names = (s: Schema | null) =>
  s?.fields.map((f) => `${f.id}:${f.name}:${f.type?.kind?.$case === 'primitive' ? f.type.kind.value : ''}`);

const cases: [string, (Schema | undefined)[], string[] | undefined, number[]][] = [
  ['no report evolved the schema', [undefined, undefined], undefined, []],
  ['a report repeats the current schema', [current], undefined, []],
  ['one report adds a column', [schema(...current.fields, field(3, 'tag', 'string'))], ['1:id:long', '2:n:int', '3:tag:string'], []],
  [
    'two reports add the same column alike, one widens',
    [
      schema(...current.fields, field(3, 'tag', 'string')),
      schema(field(1, 'id', 'long', true), field(2, 'n', 'long'), field(3, 'tag', 'string')),
    ],
    ['1:id:long', '2:n:long', '3:tag:string'],
    [],
  ],
  [
    'two reports give one id to two names: the second does not fit',
    [schema(...current.fields, field(3, 'tag', 'string')), schema(...current.fields, field(3, 'ref', 'string'))],
    ['1:id:long', '2:n:int', '3:tag:string'],
    [1],
  ],
  [
    'two reports give one name two ids: the second does not fit',
    [schema(...current.fields, field(3, 'tag', 'string')), schema(...current.fields, field(4, 'tag', 'string'))],
    ['1:id:long', '2:n:int', '3:tag:string'],
    [1],
  ],
  ['a new column with an id the table used already', [schema(...current.fields, field(2, 'tag', 'string'))], undefined, [0]],
];
for (const [name, reported, expected, misfits] of cases) {
  test(`schema merge: ${name}`, () => {
    const merge = mergeReportedSchemas(current, 2, reported);
    assert.deepEqual(names(merge.schema), expected);
    assert.deepEqual(
      merge.misfits.map((m) => m.index),
      misfits,
    );
  });
}
