/**
 * Change streams through the plan (transformChanges): envelopes into keyed rows with their
 * canonical key text, deletes named by a key only, key changes, and the refusals with reasons.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ChangeFormat, type Schema } from '#shared/gen/sluice/v1/types.js';
import { compilePlan, RecordError, SchemaGrowth, SpecError, transformChanges, type ChangeRow } from '../src/core/index.js';
import { field, mapping, record } from '#test-support/builders.js';

const keyed = (...ids: number[]): Schema => ({
  schemaId: 0,
  fields: [field(1, 'id', 'long', true), field(2, 'name', 'string'), field(3, 'sales', 'decimal(7,2)'), field(4, 'day', 'date')],
  identifierFieldIds: ids,
});

const plan = (changes: ChangeFormat, schema = keyed(1)) => compilePlan({ schema, mapping: mapping({ flattenLevel: 1, changes }) });

/** The changes of one record as [key, row or 'delete'], or the refusal's reason and message. */
function changesOf(format: ChangeFormat, value: unknown, key?: unknown, schema?: Schema): unknown {
  const out: ChangeRow[] = [];
  const rec = record(value === null ? undefined : JSON.stringify(value), {
    keyText: key === undefined ? undefined : JSON.stringify(key),
    offset: 5,
  });
  const refusal = transformChanges(plan(format, schema), rec, { nowMs: 0 }, out);
  if (refusal) return { reason: refusal.reason, message: refusal.message };
  return out.map((c) => [c.key, c.row ?? 'delete']);
}

describe('transformChanges', () => {
  it('keyed: a row per key, a tombstone deletes the key its Kafka key names', () => {
    assert.deepEqual(changesOf(ChangeFormat.CHANGE_FORMAT_KEYED, { id: 2, name: 'Lee', sales: '150', day: '2019-11-11' }), [
      ['[2]', [2, 'Lee', 15000n, 18211]],
    ]);
    assert.deepEqual(changesOf(ChangeFormat.CHANGE_FORMAT_KEYED, null, { id: 2 }), [['[2]', 'delete']]);
    assert.deepEqual(changesOf(ChangeFormat.CHANGE_FORMAT_KEYED, null, 2), [['[2]', 'delete']]);
  });

  it('the key text is the same for a row and a delete of one key, whatever the source type', () => {
    const row = changesOf(ChangeFormat.CHANGE_FORMAT_KEYED, { id: '9007199254740993', name: 'x' }) as [string, unknown][];
    const gone = changesOf(ChangeFormat.CHANGE_FORMAT_KEYED, null, { id: 9007199254740993n.toString() }) as [string, unknown][];
    assert.equal(row[0][0], '[9007199254740993]');
    assert.equal(gone[0][0], row[0][0]);
  });

  it('a composite key renders its values in key order', () => {
    const out = changesOf(ChangeFormat.CHANGE_FORMAT_KEYED, { id: 1, name: 'a"b' }, undefined, keyed(2, 1)) as [string, unknown][];
    assert.equal(out[0][0], '[“a\\"b”,1]'.replace(/[“”]/g, '"'));
  });

  it('debezium: an update that changes the key deletes the old key first', () => {
    const event = { op: 'u', before: { id: 1, name: 'Robert' }, after: { id: 10, name: 'Robert' }, source: { lsn: 33 } };
    assert.deepEqual(changesOf(ChangeFormat.CHANGE_FORMAT_DEBEZIUM, event), [
      ['[1]', 'delete'],
      ['[10]', [10, 'Robert', null, null]],
    ]);
  });

  it('debezium: a delete whose before image has only the key (replica identity default)', () => {
    const event = { op: 'd', before: { id: 4, name: null, sales: null, day: null }, after: null };
    assert.deepEqual(changesOf(ChangeFormat.CHANGE_FORMAT_DEBEZIUM, event), [['[4]', 'delete']]);
  });

  const refusals: [string, ChangeFormat, unknown, unknown, string, RegExp][] = [
    ['no key value', ChangeFormat.CHANGE_FORMAT_KEYED, { name: 'x' }, undefined, 'missing_field', /column "id" is required/],
    ['delete naming no key', ChangeFormat.CHANGE_FORMAT_DEBEZIUM, { op: 'd', before: { name: 'x' } }, { name: 'x' }, 'no_image', /"id"/],
    ['unknown op', ChangeFormat.CHANGE_FORMAT_DEBEZIUM, { op: 'x', after: { id: 1 } }, undefined, 'unknown_op', /op "x"/],
    [
      'update without after image',
      ChangeFormat.CHANGE_FORMAT_DEBEZIUM,
      { op: 'u', before: { id: 1 } },
      undefined,
      'no_image',
      /no after image/,
    ],
    ['key of the wrong type', ChangeFormat.CHANGE_FORMAT_KEYED, { id: 'abc' }, undefined, 'type_mismatch', /column "id"/],
    ['not an envelope', ChangeFormat.CHANGE_FORMAT_DTS, [1, 2], undefined, 'not_a_change', /dts/],
  ];
  for (const [name, format, value, key, reason, message] of refusals) {
    it(`refuses ${name} with reason ${reason}, naming the record`, () => {
      const got = changesOf(format, value, key) as { reason: string; message: string };
      assert.equal(got.reason, reason, got.message);
      assert.match(got.message, message);
      assert.match(got.message, /offset 5/);
    });
  }

  it('a new field asks for a schema change, as appended rows do', () => {
    const out: ChangeRow[] = [];
    const refusal = transformChanges(
      plan(ChangeFormat.CHANGE_FORMAT_KEYED),
      record(JSON.stringify({ id: 1, extra: 'e' })),
      { nowMs: 0 },
      out,
    );
    assert.ok(refusal instanceof SchemaGrowth);
    assert.equal(out.length, 0);
  });

  it('a change stream needs a keyed table and a JSON format', () => {
    assert.throws(
      () => plan(ChangeFormat.CHANGE_FORMAT_DEBEZIUM, keyed()),
      (e: unknown) => e instanceof SpecError && /needs a table with a key/.test(e.message),
    );
    assert.ok(!(changesOf(ChangeFormat.CHANGE_FORMAT_KEYED, { id: 1 }) instanceof RecordError));
  });
});
