import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { DataFile } from '#shared/gen/sluice/v1/types.js';
import {
  EntryStatus,
  createTableMetadata,
  avro,
  manifestFileFor,
  readManifest,
  readManifestList,
  writeManifest,
  writeManifestList,
} from '#shared/iceberg/index.js';
import { serializeSingleValue } from '#shared/iceberg/single-value.js';

const meta = createTableMetadata({
  location: '/wh/db/t',
  schema: {
    type: 'struct',
    'schema-id': 0,
    fields: [
      { id: 0, name: 'id', required: true, type: 'long' },
      { id: 0, name: 'score', required: false, type: 'double' },
      { id: 0, name: 'region', required: false, type: 'string' },
      { id: 0, name: 'ts', required: false, type: 'timestamp' },
    ],
  },
  partitionSpec: {
    specId: 0,
    fields: [
      { sourceId: 0, sourceName: 'region', fieldId: 0, name: '', transform: 'identity' },
      { sourceId: 0, sourceName: 'ts', fieldId: 0, name: '', transform: 'day' },
    ],
  },
});
const schema = meta.schemas[0];
const spec = meta['partition-specs'][0];

const dataFile = (path: string, region: string | undefined, day: number, rows: number): DataFile => ({
  filePath: path,
  fileFormat: 'parquet',
  specId: 0,
  partition: [
    { fieldId: 1000, name: 'region', value: region === undefined ? undefined : { kind: { $case: 'stringValue', value: region } } },
    { fieldId: 1001, name: 'ts_day', value: { kind: { $case: 'intValue', value: day } } },
  ],
  recordCount: rows,
  fileSizeInBytes: rows * 10,
  columnStats: [
    {
      fieldId: 1,
      columnSize: 80,
      valueCount: rows,
      nullValueCount: 0,
      nanValueCount: 0,
      lowerBound: serializeSingleValue({ kind: 'long' }, 1),
      upperBound: serializeSingleValue({ kind: 'long' }, rows),
    },
    {
      fieldId: 2,
      columnSize: 40,
      valueCount: rows,
      nullValueCount: 1,
      nanValueCount: 0,
      lowerBound: Buffer.alloc(0),
      upperBound: Buffer.alloc(0),
    },
  ],
  splitOffsets: [4],
});

test('a manifest round-trips entries, partition tuples and column stats, with spec headers', () => {
  const files = [dataFile('/wh/db/t/data/a.parquet', 'eu', 19000, 3), dataFile('/wh/db/t/data/b.parquet', undefined, 19001, 2)];
  const { bytes, stats } = writeManifest(
    [
      { status: EntryStatus.ADDED, snapshotId: 7, dataFile: files[0] },
      { status: EntryStatus.EXISTING, snapshotId: 5, sequenceNumber: 3, fileSequenceNumber: 3, dataFile: files[1] },
    ],
    { schema, spec },
  );
  assert.deepEqual(
    [stats.addedFilesCount, stats.existingFilesCount, stats.addedRowsCount, stats.existingRowsCount, stats.minExplicitSequenceNumber],
    [1, 1, 3, 2, 3],
  );
  assert.equal(stats.partitions[0].containsNull, true);
  assert.equal(Buffer.from(stats.partitions[0].lowerBound!).toString(), 'eu');
  assert.equal(Buffer.from(stats.partitions[1].upperBound!).readInt32LE(0), 19001);

  const header = avro.readContainer(bytes);
  assert.equal(header.metadata['format-version'], '2');
  assert.equal(header.metadata.content, 'data');
  assert.equal(header.metadata['partition-spec-id'], '0');
  assert.deepEqual(JSON.parse(header.metadata['partition-spec']), spec.fields);
  assert.deepEqual(JSON.parse(header.metadata.schema), schema);
  const json = JSON.stringify(header.schema);
  for (const needle of [
    '"field-id":134',
    '"field-id":102',
    '"name":"k117_v118"',
    '"element-id":133',
    '"logicalType":"date"',
    '"field-id":1001',
  ]) {
    assert.ok(json.includes(needle), needle);
  }

  const m = readManifest(bytes, { snapshotId: 7, sequenceNumber: 4 });
  assert.equal(m.specId, 0);
  assert.equal(m.entries.length, 2);
  const [added, existing] = m.entries;
  assert.deepEqual(
    [added.status, added.snapshotId, added.sequenceNumber, added.fileSequenceNumber],
    [EntryStatus.ADDED, 7, 4, 4],
    'ADDED entries inherit',
  );
  assert.deepEqual([existing.sequenceNumber, existing.snapshotId], [3, 5], 'EXISTING entries keep theirs');
  assert.deepEqual(added.dataFile.partition, files[0].partition);
  assert.deepEqual(existing.dataFile.partition[0], { fieldId: 1000, name: 'region', value: { kind: undefined } });
  assert.deepEqual(added.dataFile.columnStats, [files[0].columnStats[0], { ...files[0].columnStats[1], nullValueCount: 1 }]);
  assert.deepEqual(added.dataFile.splitOffsets, [4]);
  assert.equal(added.dataFile.fileFormat, 'parquet');

  const raw = readManifest(bytes);
  assert.equal(raw.entries[0].sequenceNumber, undefined, 'without inheritance the null stays');
});

test('manifest writing refuses inconsistent entries', () => {
  const f = dataFile('/x.parquet', 'eu', 1, 1);
  assert.throws(
    () => writeManifest([{ status: EntryStatus.EXISTING, dataFile: f }], { schema, spec }),
    /needs an explicit sequence number/,
  );
  assert.throws(
    () => writeManifest([{ status: EntryStatus.ADDED, dataFile: { ...f, specId: 3 } }], { schema, spec }),
    /written for spec 3/,
  );
  const badPartition = { ...f, partition: [{ fieldId: 1000, name: 'region', value: { kind: { $case: 'intValue' as const, value: 1 } } }] };
  assert.throws(
    () => writeManifest([{ status: EntryStatus.ADDED, dataFile: badPartition }], { schema, spec }),
    /partition value for data_file.partition.region must be a string/,
  );
  assert.throws(
    () =>
      writeManifest([{ status: EntryStatus.ADDED, dataFile: { ...f, partition: [{ fieldId: 1999, name: 'x', value: undefined }] } }], {
        schema,
        spec,
      }),
    /unknown field 1999/,
  );
});

test('manifest lists round-trip, assigning the snapshot sequence number to new manifests', () => {
  const { bytes, stats } = writeManifest([{ status: EntryStatus.ADDED, snapshotId: 9, dataFile: dataFile('/a', 'us', 2, 4) }], {
    schema,
    spec,
  });
  const fresh = manifestFileFor({ path: '/wh/db/t/metadata/m1.avro', length: bytes.length, specId: 0, snapshotId: 9, stats });
  const carried = { ...fresh, manifestPath: '/wh/db/t/metadata/m0.avro', sequenceNumber: 1, minSequenceNumber: 1, addedSnapshotId: 8 };
  const list = writeManifestList([fresh, carried], { snapshotId: 9, parentSnapshotId: 8, sequenceNumber: 2 });
  assert.equal(avro.readContainer(list).metadata['parent-snapshot-id'], '8');
  const back = readManifestList(list);
  assert.deepEqual(back[0], { ...fresh, sequenceNumber: 2, minSequenceNumber: 2 });
  assert.deepEqual(back[1], carried);
});
