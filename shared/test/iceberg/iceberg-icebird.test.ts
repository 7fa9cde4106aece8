/**
 * End to end: a partitioned table built with this module (metadata.json, manifest lists,
 * manifests, and Parquet files the test writes) is read back by icebird, an independent
 * Iceberg reader, over HTTP: current rows, schema, snapshot history and time travel.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { serveDirectory, type FileServer } from '#test-support/file-server.js';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { icebergMetadata, icebergRead } from 'icebird';
import { createStorage, type Storage } from '#shared/storage/index.js';
import type { DataFile } from '#shared/gen/sluice/v1/types.js';
import {
  EntryStatus,
  addSnapshot,
  buildSummary,
  createTableMetadata,
  currentSchema,
  currentSnapshot,
  defaultSpec,
  manifestFileFor,
  newSnapshotId,
  nextMetadataFile,
  readManifestList,
  serializeMetadata,
  writeManifest,
  writeManifestList,
  type ManifestFile,
  type TableMetadata,
} from '#shared/iceberg/index.js';

let dir: string;
let server: FileServer;
let base: string;
let storage: Storage;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sluice-icebird-'));
  server = await serveDirectory(dir);
  base = `${server.url}/wh`;
  storage = createStorage({ mounts: { [base]: join(dir, 'wh') } });
});

after(async () => {
  await server.close();
  await rm(dir, { recursive: true, force: true });
});

async function writeParquet(location: string, rows: { id: bigint; category: string; amount: number }[]): Promise<DataFile> {
  const buffer = parquetWriteBuffer({
    schema: [
      { name: 'table', num_children: 3 },
      { name: 'id', type: 'INT64', repetition_type: 'REQUIRED', field_id: 1 },
      { name: 'category', type: 'BYTE_ARRAY', converted_type: 'UTF8', repetition_type: 'OPTIONAL', field_id: 2 },
      { name: 'amount', type: 'DOUBLE', repetition_type: 'OPTIONAL', field_id: 3 },
    ],
    columnData: [
      { name: 'id', data: rows.map((r) => r.id) },
      { name: 'category', data: rows.map((r) => r.category) },
      { name: 'amount', data: rows.map((r) => r.amount) },
    ],
  });
  const bytes = new Uint8Array(buffer);
  await storage.write(location, bytes);
  return {
    filePath: location,
    fileFormat: 'parquet',
    specId: 0,
    partition: [{ fieldId: 1000, name: 'category', value: { kind: { $case: 'stringValue', value: rows[0].category } } }],
    recordCount: rows.length,
    fileSizeInBytes: bytes.length,
    columnStats: [],
    splitOffsets: [],
  };
}

/** One append commit, the way the commit service does it: manifest, list, metadata file. */
async function append(
  meta: TableMetadata,
  previous: string | undefined,
  files: DataFile[],
): Promise<{ meta: TableMetadata; location: string }> {
  const snapshotId = newSnapshotId();
  const parent = currentSnapshot(meta);
  const sequenceNumber = meta['last-sequence-number'] + 1;
  const { bytes, stats } = writeManifest(
    files.map((dataFile) => ({ status: EntryStatus.ADDED, snapshotId, dataFile })),
    { schema: currentSchema(meta), spec: defaultSpec(meta) },
  );
  const manifestPath = `${meta.location}/metadata/${crypto.randomUUID()}-m0.avro`;
  await storage.write(manifestPath, bytes);
  const carried: ManifestFile[] = parent ? readManifestList(await storage.read(parent['manifest-list'])) : [];
  const manifests = [manifestFileFor({ path: manifestPath, length: bytes.length, specId: 0, snapshotId, stats }), ...carried];
  const listPath = `${meta.location}/metadata/snap-${snapshotId}-1-${crypto.randomUUID()}.avro`;
  await storage.write(listPath, writeManifestList(manifests, { snapshotId, parentSnapshotId: parent?.['snapshot-id'], sequenceNumber }));
  const next = addSnapshot(meta, {
    'snapshot-id': snapshotId,
    'parent-snapshot-id': parent?.['snapshot-id'],
    'sequence-number': sequenceNumber,
    'timestamp-ms': Date.now(),
    'manifest-list': listPath,
    summary: buildSummary('append', { added: files }, parent?.summary),
    'schema-id': meta['current-schema-id'],
  });
  const { metadata, location } = nextMetadataFile(next, previous);
  await storage.write(location, Buffer.from(serializeMetadata(metadata)));
  return { meta: metadata, location };
}

test('icebird reads a table written by this module: rows, schema, history, time travel', async () => {
  const location = `${base}/db/events`;
  const created = nextMetadataFile(
    createTableMetadata({
      location,
      schema: {
        type: 'struct',
        'schema-id': 0,
        fields: [
          { id: 0, name: 'id', required: true, type: 'long' },
          { id: 0, name: 'category', required: false, type: 'string' },
          { id: 0, name: 'amount', required: false, type: 'double' },
        ],
      },
      partitionSpec: { specId: 0, fields: [{ sourceId: 0, sourceName: 'category', fieldId: 0, name: '', transform: 'identity' }] },
    }),
    undefined,
  );
  await storage.write(created.location, Buffer.from(serializeMetadata(created.metadata)));

  const fileA = await writeParquet(`${location}/data/category=a/00000-a.parquet`, [
    { id: 1n, category: 'a', amount: 1.5 },
    { id: 2n, category: 'a', amount: 2.5 },
    { id: 3n, category: 'a', amount: 3.5 },
  ]);
  const first = await append(created.metadata, created.location, [fileA]);
  const fileB = await writeParquet(`${location}/data/category=b/00000-b.parquet`, [
    { id: 4n, category: 'b', amount: 4.5 },
    { id: 5n, category: 'b', amount: 5.5 },
  ]);
  const second = await append(first.meta, first.location, [fileB]);

  const tableUrl = location;
  const fileName = (l: string) => l.slice(l.lastIndexOf('/') + 1);
  const metadata = await icebergMetadata({ tableUrl, metadataFileName: fileName(second.location) });
  assert.deepEqual(
    metadata.schemas[0].fields.map((f: { id: number; name: string; type: unknown }) => [f.id, f.name, f.type]),
    [
      [1, 'id', 'long'],
      [2, 'category', 'string'],
      [3, 'amount', 'double'],
    ],
  );
  const snapshots = metadata.snapshots ?? [];
  assert.deepEqual(
    snapshots.map((s) => [s['snapshot-id'], s['sequence-number'], s.summary?.['total-records']]),
    [
      [first.meta['current-snapshot-id'], 1, '3'],
      [second.meta['current-snapshot-id'], 2, '5'],
    ],
  );
  assert.equal(metadata['current-snapshot-id'], second.meta['current-snapshot-id']);
  assert.equal(metadata['metadata-log']?.length, 2);

  const rows = await icebergRead({ tableUrl, metadataFileName: fileName(second.location) });
  const simple = rows
    .map((r: Record<string, unknown>) => [Number(r.id), r.category, r.amount])
    .sort((x, y) => (x[0] as number) - (y[0] as number));
  assert.deepEqual(simple, [
    [1, 'a', 1.5],
    [2, 'a', 2.5],
    [3, 'a', 3.5],
    [4, 'b', 4.5],
    [5, 'b', 5.5],
  ]);

  // Time travel: the first metadata file sees only the first snapshot's rows.
  const old = await icebergRead({ tableUrl, metadataFileName: fileName(first.location) });
  assert.deepEqual(old.map((r: Record<string, unknown>) => Number(r.id)).sort(), [1, 2, 3]);
});
