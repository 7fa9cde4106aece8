import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Schema } from '#shared/gen/sluice/v1/types.js';
import {
  IcebergError,
  assignFreshIds,
  bindSpec,
  buildSpec,
  findField,
  parseTransform,
  schemaFromProto,
  schemaToProto,
  validateSchema,
  type SchemaJson,
} from '#shared/iceberg/index.js';

const nested: SchemaJson = {
  type: 'struct',
  'schema-id': 0,
  fields: [
    { id: 0, name: 'id', required: true, type: 'long' },
    {
      id: 0,
      name: 'address',
      required: false,
      type: {
        type: 'struct',
        fields: [
          { id: 0, name: 'city', required: false, type: 'string' },
          { id: 0, name: 'zip', required: false, type: 'int' },
        ],
      },
    },
    { id: 0, name: 'tags', required: false, type: { type: 'list', 'element-id': 0, 'element-required': false, element: 'string' } },
    {
      id: 0,
      name: 'attrs',
      required: false,
      type: { type: 'map', 'key-id': 0, key: 'string', 'value-id': 0, 'value-required': true, value: 'double' },
    },
    { id: 0, name: 'ts', required: false, type: 'timestamptz' },
    { id: 0, name: 'price', required: false, type: 'decimal(10, 2)' },
  ],
};

test('fresh ids: top-level fields first, then nested types, as Java assigns them', () => {
  const { result, lastId } = assignFreshIds(nested, 0);
  assert.deepEqual(
    result.fields.map((f) => f.id),
    [1, 2, 3, 4, 5, 6],
  );
  assert.deepEqual(
    (result.fields[1].type as { fields: { id: number }[] }).fields.map((f) => f.id),
    [7, 8],
  );
  assert.equal((result.fields[2].type as { 'element-id': number })['element-id'], 9);
  assert.deepEqual(
    [(result.fields[3].type as { 'key-id': number })['key-id'], (result.fields[3].type as { 'value-id': number })['value-id']],
    [10, 11],
  );
  assert.equal(lastId, 11);
  validateSchema(result);
});

test('proto and Iceberg JSON schemas convert both ways, canonicalizing type spellings', () => {
  const proto: Schema = {
    schemaId: 3,
    identifierFieldIds: [1],
    fields: [
      { id: 1, name: 'id', required: true, doc: 'key', type: { kind: { $case: 'primitive', value: 'LONG' } } },
      { id: 2, name: 'amount', required: false, doc: '', type: { kind: { $case: 'primitive', value: 'decimal(12,3)' } } },
      {
        id: 3,
        name: 'items',
        required: false,
        doc: '',
        type: {
          kind: {
            $case: 'list',
            value: { elementId: 4, elementRequired: true, element: { kind: { $case: 'primitive', value: 'string' } } },
          },
        },
      },
    ],
  };
  const json = schemaFromProto(proto);
  assert.equal(json.fields[0].type, 'long');
  assert.equal(json.fields[1].type, 'decimal(12, 3)');
  assert.deepEqual(json['identifier-field-ids'], [1]);
  const back = schemaToProto(json);
  assert.equal(back.fields[1].type?.kind?.$case, 'primitive');
  assert.deepEqual(schemaFromProto(back), json);
  assert.throws(
    () => schemaFromProto({ ...proto, fields: [{ ...proto.fields[0], type: { kind: { $case: 'primitive', value: 'varchar' } } }] }),
    (e: unknown) => e instanceof IcebergError && e.field === 'id' && /unknown type "varchar"/.test(e.message),
  );
});

test('fields are found by dotted path, through lists and maps', () => {
  const { result } = assignFreshIds(nested, 0);
  assert.equal(findField(result, 'address.city')?.field.id, 7);
  assert.equal(findField(result, 'address.city')?.repeated, false);
  assert.equal(findField(result, 'nope'), undefined);
});

test('schema validation refuses duplicates, dotted names and bad identifier fields', () => {
  const base = (fields: SchemaJson['fields'], ids?: number[]): SchemaJson => ({
    type: 'struct',
    'schema-id': 0,
    fields,
    'identifier-field-ids': ids,
  });
  const cases: [string, SchemaJson, RegExp][] = [
    [
      'duplicate',
      base([
        { id: 1, name: 'a', required: false, type: 'int' },
        { id: 2, name: 'a', required: false, type: 'int' },
      ]),
      /duplicate field name/,
    ],
    ['dot', base([{ id: 1, name: 'a.b', required: false, type: 'int' }]), /contain no '.'/],
    [
      'reused id',
      base([
        { id: 1, name: 'a', required: false, type: 'int' },
        { id: 1, name: 'b', required: false, type: 'int' },
      ]),
      /reuses id 1/,
    ],
    ['optional identifier', base([{ id: 1, name: 'a', required: false, type: 'int' }], [1]), /must be a required primitive/],
    ['missing identifier', base([{ id: 1, name: 'a', required: true, type: 'int' }], [9]), /not in the schema/],
    ['double identifier', base([{ id: 1, name: 'a', required: true, type: 'double' }], [1]), /may not be float or double/],
    ['empty', base([]), /no fields/],
  ];
  for (const [name, schema, pattern] of cases) assert.throws(() => validateSchema(schema), pattern, name);
});

test('transforms parse, and bind to sources with the right result types and default names', () => {
  const { result } = assignFreshIds(nested, 0);
  const { spec, lastPartitionId } = buildSpec(
    {
      specId: 0,
      fields: [
        { sourceId: 0, sourceName: 'ts', fieldId: 0, name: '', transform: 'day' },
        { sourceId: 0, sourceName: 'id', fieldId: 0, name: '', transform: 'bucket[16]' },
        { sourceId: 0, sourceName: 'address.city', fieldId: 0, name: 'city', transform: 'identity' },
        { sourceId: 0, sourceName: 'price', fieldId: 0, name: '', transform: 'truncate[100]' },
        { sourceId: 5, sourceName: '', fieldId: 0, name: '', transform: 'hour' },
      ],
    },
    result,
    0,
    999,
  );
  assert.deepEqual(
    spec.fields.map((f) => [f['field-id'], f.name, f['source-id'], f.transform]),
    [
      [1000, 'ts_day', 5, 'day'],
      [1001, 'id_bucket_16', 1, 'bucket[16]'],
      [1002, 'city', 7, 'identity'],
      [1003, 'price_trunc_100', 6, 'truncate[100]'],
      [1004, 'ts_hour', 5, 'hour'],
    ],
  );
  assert.equal(lastPartitionId, 1004);
  assert.deepEqual(
    bindSpec(spec, result).map((b) => b.resultType.kind),
    ['date', 'int', 'string', 'decimal', 'int'],
  );
});

test('bad partition specs are refused naming the field', () => {
  const { result } = assignFreshIds(nested, 0);
  const one =
    (sourceName: string, transform: string, name = '') =>
    () =>
      buildSpec({ specId: 0, fields: [{ sourceId: 0, sourceName, fieldId: 0, name, transform }] }, result, 0, 999);
  const cases: [string, () => unknown, RegExp][] = [
    ['unknown column', one('nope', 'identity'), /column "nope" is not in the schema/],
    ['hour on long', one('id', 'hour'), /hour cannot apply to id of type long/],
    ['bad transform', one('id', 'squash'), /unknown transform "squash"/],
    ['zero bucket', one('id', 'bucket[0]'), /positive int/],
    ['list source', one('tags', 'identity'), /not a primitive column/],
    ['struct source', one('address', 'identity'), /not a primitive column/],
    ['shadowing name', one('ts', 'day', 'id'), /conflicts with a column/],
  ];
  for (const [name, fn, pattern] of cases) assert.throws(fn, pattern, name);
  assert.deepEqual(parseTransform(' Truncate[ 4 ] '), { kind: 'truncate', width: 4 });
});
