import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { DataFile } from '#shared/gen/sluice/v1/types.js';
import { createStorage, type Storage } from '#shared/storage/index.js';
import {
  EntryStatus,
  addSnapshot,
  buildSummary,
  createTableMetadata,
  currentSchema,
  defaultSpec,
  manifestFileFor,
  readManifestList,
  writeManifest,
  writeManifestList,
  type ManifestEntry,
  type ManifestFile,
  type TableMetadata,
} from '#shared/iceberg/index.js';
import { resolveSnapshot, snapshotFiles } from '#shared/iceberg/scan.js';

let dir: string;
let storage: Storage;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sluice-scan-'));
  storage = createStorage();
});
after(() => rm(dir, { recursive: true, force: true }));

const file = (name: string, records: number): DataFile => ({
  filePath: `${dir}/t/data/${name}.parquet`,
  fileFormat: 'parquet',
  specId: 0,
  partition: [],
  recordCount: records,
  fileSizeInBytes: 100,
  columnStats: [],
  splitOffsets: [],
});

async function commit(meta: TableMetadata, entries: ManifestEntry[], carried: ManifestFile[], id: number, ts: number, op: string) {
  const seq = meta['last-sequence-number'] + 1;
  const parent = meta['current-snapshot-id'] ?? undefined;
  const { bytes, stats } = writeManifest(entries, { schema: currentSchema(meta), spec: defaultSpec(meta) });
  const manifestPath = `${dir}/t/metadata/m-${id}.avro`;
  await storage.write(manifestPath, bytes);
  const manifests = [manifestFileFor({ path: manifestPath, length: bytes.length, specId: 0, snapshotId: id, stats }), ...carried];
  const list = `${dir}/t/metadata/snap-${id}.avro`;
  await storage.write(list, writeManifestList(manifests, { snapshotId: id, parentSnapshotId: parent, sequenceNumber: seq }));
  const next = addSnapshot(
    meta,
    {
      'snapshot-id': id,
      'parent-snapshot-id': parent,
      'sequence-number': seq,
      'timestamp-ms': ts,
      'manifest-list': list,
      summary: buildSummary(op as 'append', { added: [] }),
    },
    ts,
  );
  // Carry manifests forward as stored: the list assigned their sequence numbers.
  return { meta: next, manifests: readManifestList(await storage.read(list)) };
}

test('live data files follow appends and a replace; time travel picks the snapshot of the moment', async () => {
  const created = createTableMetadata({
    location: `${dir}/t`,
    schema: { type: 'struct', 'schema-id': 0, fields: [{ id: 1, name: 'id', required: true, type: 'long' }] },
  });
  const a = file('a', 3);
  const b = file('b', 2);
  const c = file('c', 3);
  const s1 = await commit(created, [{ status: EntryStatus.ADDED, snapshotId: 1, dataFile: a }], [], 1, 1000, 'append');
  const s2 = await commit(s1.meta, [{ status: EntryStatus.ADDED, snapshotId: 2, dataFile: b }], s1.manifests, 2, 2000, 'append');
  // Replace a by c: a DELETED entry and c ADDED in one new manifest; b's manifest carried.
  const s3 = await commit(
    s2.meta,
    [
      { status: EntryStatus.DELETED, snapshotId: 3, sequenceNumber: 1, fileSequenceNumber: 1, dataFile: a },
      { status: EntryStatus.ADDED, snapshotId: 3, dataFile: c },
    ],
    s2.manifests.filter((m) => m.addedSnapshotId === 2),
    3,
    3000,
    'replace',
  );
  const meta = s3.meta;
  const names = async (selector: { snapshotId?: number; asOfMs?: number }) => {
    const snapshot = resolveSnapshot(meta, selector);
    if (!snapshot) return undefined;
    const { dataFiles } = await snapshotFiles(storage, snapshot);
    return dataFiles.map((f) => f.dataFile.filePath.replace(/^.*\//, '')).sort();
  };
  assert.deepEqual(await names({}), ['b.parquet', 'c.parquet']);
  assert.deepEqual(await names({ snapshotId: 1 }), ['a.parquet']);
  assert.deepEqual(await names({ snapshotId: 2 }), ['a.parquet', 'b.parquet']);
  assert.deepEqual(await names({ asOfMs: 2500 }), ['a.parquet', 'b.parquet']);
  assert.deepEqual(await names({ asOfMs: 3000 }), ['b.parquet', 'c.parquet']);
  assert.throws(
    () => resolveSnapshot(meta, { asOfMs: 999 }),
    /^IcebergError: no snapshot as of 1970-01-01T00:00:00.999Z: the table's first snapshot \(1\) was committed at 1970-01-01T00:00:01.000Z$/,
    'a time before the first commit is refused, naming it',
  );
  assert.throws(() => resolveSnapshot(meta, { snapshotId: 42 }), /snapshot 42 does not exist/);

  // ADDED entries inherit the sequence number of the snapshot that added them.
  const current = await snapshotFiles(storage, resolveSnapshot(meta, {})!);
  const seqOf = Object.fromEntries(current.dataFiles.map((f) => [f.dataFile.filePath.replace(/^.*\//, ''), f.sequenceNumber]));
  assert.deepEqual(seqOf, { 'b.parquet': 2, 'c.parquet': 3 });
});
