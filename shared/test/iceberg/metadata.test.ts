import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  IcebergError,
  addSchema,
  addSnapshot,
  buildSummary,
  createTableMetadata,
  metadataVersion,
  newSnapshotId,
  nextMetadataFile,
  parseMetadata,
  removeSnapshots,
  serializeMetadata,
  setProperties,
  type SnapshotJson,
  type TableMetadata,
} from '#shared/iceberg/index.js';
import type { DataFile } from '#shared/gen/sluice/v1/types.js';

const table = (): TableMetadata =>
  createTableMetadata({
    location: '/wh/db/t/',
    schema: {
      type: 'struct',
      'schema-id': 0,
      fields: [
        { id: 0, name: 'id', required: true, type: 'long' },
        { id: 0, name: 'ts', required: false, type: 'timestamptz' },
      ],
    },
    partitionSpec: { specId: 0, fields: [{ sourceId: 0, sourceName: 'ts', fieldId: 0, name: '', transform: 'day' }] },
    properties: { owner: 'sluice' },
    nowMs: 1000,
  });

const snap = (meta: TableMetadata, id: number, seq = meta['last-sequence-number'] + 1): SnapshotJson => ({
  'snapshot-id': id,
  'parent-snapshot-id': meta['current-snapshot-id'],
  'sequence-number': seq,
  'timestamp-ms': 2000 + id,
  'manifest-list': `/wh/db/t/metadata/snap-${id}.avro`,
  summary: { operation: 'append' },
  'schema-id': 0,
});

test('new table metadata has every v2 field, fresh ids and an unpartitioned-safe spec', () => {
  const m = table();
  assert.equal(m.location, '/wh/db/t');
  assert.equal(m['last-column-id'], 2);
  assert.equal(m['last-partition-id'], 1000);
  assert.deepEqual(m['partition-specs'][0].fields, [{ 'source-id': 2, 'field-id': 1000, name: 'ts_day', transform: 'day' }]);
  assert.deepEqual(m['sort-orders'], [{ 'order-id': 0, fields: [] }]);
  assert.equal(m['current-snapshot-id'], undefined);
  const json = JSON.parse(serializeMetadata(m));
  for (const key of [
    'format-version',
    'table-uuid',
    'location',
    'last-sequence-number',
    'last-updated-ms',
    'last-column-id',
    'schemas',
    'current-schema-id',
    'partition-specs',
    'default-spec-id',
    'last-partition-id',
    'sort-orders',
    'default-sort-order-id',
  ]) {
    assert.ok(key in json, key);
  }
  assert.equal(json['current-snapshot-id'], -1);
  const unpartitioned = createTableMetadata({
    location: '/wh/x',
    schema: { type: 'struct', 'schema-id': 0, fields: [{ id: 0, name: 'a', required: false, type: 'int' }] },
  });
  assert.equal(unpartitioned['last-partition-id'], 999);
});

test('adding snapshots moves main, logs history and bumps the sequence number', () => {
  let m = addSnapshot(table(), snap(table(), 11));
  m = addSnapshot(m, snap(m, 12));
  assert.equal(m['current-snapshot-id'], 12);
  assert.equal(m['last-sequence-number'], 2);
  assert.deepEqual(m.refs.main, { 'snapshot-id': 12, type: 'branch' });
  assert.deepEqual(
    m['snapshot-log'].map((e) => e['snapshot-id']),
    [11, 12],
  );
  assert.equal(m.snapshots[1]['parent-snapshot-id'], 11);
});

test('stale snapshots are refused as conflicts', () => {
  const m = addSnapshot(table(), snap(table(), 11));
  const cases: [string, SnapshotJson, RegExp][] = [
    ['wrong sequence', snap(m, 12, 5), /sequence number 5 is not the next one \(2\)/],
    ['wrong parent', { ...snap(m, 12), 'parent-snapshot-id': undefined }, /current snapshot is 11/],
    ['duplicate id', snap(m, 11), /already exists/],
  ];
  for (const [name, s, pattern] of cases) {
    assert.throws(
      () => addSnapshot(m, s),
      (e: unknown) => e instanceof IcebergError && e.kind === 'conflict' && pattern.test(e.message),
      name,
    );
  }
  assert.throws(() => addSnapshot(m, { ...snap(m, 2 ** 60) }), /below 2\^53/);
});

test('removing snapshots keeps referenced ones and trims the log', () => {
  let m = addSnapshot(table(), snap(table(), 11));
  m = addSnapshot(m, snap(m, 12));
  assert.throws(() => removeSnapshots(m, [12]), /referenced by branch "main"/);
  const r = removeSnapshots(m, [11, 999]);
  assert.deepEqual(
    r.snapshots.map((s) => s['snapshot-id']),
    [12],
  );
  assert.deepEqual(
    r['snapshot-log'].map((e) => e['snapshot-id']),
    [12],
  );
});

test('schemas and properties evolve; identical schemas are reused', () => {
  const m = table();
  const s1 = addSchema(m, { type: 'struct', fields: [...m.schemas[0].fields, { id: 3, name: 'note', required: false, type: 'string' }] });
  assert.equal(s1['current-schema-id'], 1);
  assert.equal(s1['last-column-id'], 3);
  const back = addSchema(s1, { type: 'struct', fields: m.schemas[0].fields });
  assert.equal(back['current-schema-id'], 0);
  assert.equal(back.schemas.length, 2);
  assert.equal(back['last-column-id'], 3, 'last-column-id never shrinks');
  const p = setProperties(m, { a: '1' }, ['owner']);
  assert.deepEqual(p.properties, { a: '1' });
  assert.throws(() => setProperties(m, { a: '1' }, ['a']), /both set and removed/);
});

test('metadata serializes and parses back identically; files get versioned unique names', () => {
  let m = addSnapshot(table(), snap(table(), newSnapshotId()));
  const first = nextMetadataFile(m, undefined);
  assert.match(first.location, /^\/wh\/db\/t\/metadata\/00001-[0-9a-f-]{36}\.metadata\.json$/);
  const second = nextMetadataFile(first.metadata, first.location);
  assert.equal(metadataVersion(second.location), 2);
  assert.deepEqual(
    second.metadata['metadata-log'].map((e) => e['metadata-file']),
    [first.location],
  );
  m = second.metadata;
  assert.deepEqual(parseMetadata(serializeMetadata(m)), m);
  assert.notEqual(nextMetadataFile(m, first.location).location, second.location);
});

test('parsing refuses broken metadata with the offending key', () => {
  const good = JSON.parse(serializeMetadata(table()));
  const cases: [string, unknown, RegExp][] = [
    ['not json', '{', /not valid JSON/],
    ['v1', { ...good, 'format-version': 1 }, /format-version 1 is not supported/],
    ['no location', { ...good, location: undefined }, /"location" must be a string/],
    ['unsafe snapshot id', { ...good, snapshots: [{ 'snapshot-id': 2 ** 60 }] }, /below 2\^53/],
    ['missing schema', { ...good, 'current-schema-id': 7 }, /current schema 7 is missing/],
  ];
  for (const [name, value, pattern] of cases) {
    assert.throws(() => parseMetadata(typeof value === 'string' ? value : JSON.stringify(value)), pattern, name);
  }
});

test('snapshot summaries carry totals from the parent', () => {
  const file = (records: number, size: number, day: number): DataFile => ({
    filePath: `/f${records}`,
    fileFormat: 'parquet',
    specId: 0,
    partition: [{ fieldId: 1000, name: 'ts_day', value: { kind: { $case: 'intValue', value: day } } }],
    recordCount: records,
    fileSizeInBytes: size,
    columnStats: [],
    splitOffsets: [],
  });
  const s1 = buildSummary('append', { added: [file(10, 100, 1), file(5, 50, 2)] });
  assert.deepEqual(s1, {
    operation: 'append',
    'added-data-files': '2',
    'added-records': '15',
    'added-files-size': '150',
    'changed-partition-count': '2',
    'total-records': '15',
    'total-files-size': '150',
    'total-data-files': '2',
    'total-delete-files': '0',
    'total-position-deletes': '0',
    'total-equality-deletes': '0',
  });
  const s2 = buildSummary('replace', { added: [file(15, 120, 1)], removed: [file(10, 100, 1), file(5, 50, 2)] }, s1);
  assert.equal(s2['total-records'], '15');
  assert.equal(s2['total-data-files'], '1');
  assert.equal(s2['deleted-data-files'], '2');
  assert.equal(s2['removed-files-size'], '150');
});
