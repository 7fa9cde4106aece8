/**
 * CommitTable: optimistic concurrency (20 racing commits, one winner), offset continuity
 * (gaps and overlaps refused, a first commit only at the job's recorded start), RecordJobStart,
 * lease fencing, GetCommittedOffsets, ListSnapshots, and a
 * table committed through the catalog read back by icebird over HTTP.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { status } from '@grpc/grpc-js';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { icebergMetadata, icebergRead } from 'icebird';
import { StartFrom, type CommitTableRequest, type Table } from '#shared/gen/sluice/v1/catalog.js';
import type { DataFile } from '#shared/gen/sluice/v1/types.js';
import {
  EntryStatus,
  buildSummary,
  manifestFileFor,
  newSnapshotId,
  parseMetadata,
  readManifest,
  readManifestList,
  writeManifest,
  writeManifestList,
  type ManifestFile,
} from '#shared/iceberg/index.js';
import { createStorage } from '#shared/storage/index.js';
import { field, job, recordStarts, source, tableRequest } from '#test-support/builders.js';
import { serveDirectory, type FileServer } from '#test-support/file-server.js';
import { failure, startTestCatalog, type TestCatalog } from './harness.js';

let cat: TestCatalog;
let http: FileServer;
let base: string;
let root = '';

before(async () => {
  http = await serveDirectory(() => root);
  base = `${http.url}/wh`;
  cat = await startTestCatalog({
    warehouse: () => base,
    storage: (dir) => {
      root = dir;
      return { mounts: { [base]: join(dir, 'wh') } };
    },
  });
  await cat.client.createDatabase({ name: 'lake', location: '', properties: {} });
  await cat.client.createSource({ source: source('src', 'events') });
});

after(async () => {
  await cat.stop();
  await http.close();
});

async function newTable(name: string, jobName?: string): Promise<Table> {
  const ref = { database: 'lake', table: name };
  const { table } = await cat.client.createTable(tableRequest(ref, [field(0, 'id', 'long', true), field(0, 'msg', 'string')]));
  if (jobName) {
    const start = { from: StartFrom.START_FROM_EARLIEST };
    await cat.client.createJob({ job: job(jobName, 'src', ref, { start, commitIntervalMs: 1000 }) });
  }
  return table!;
}

const storage = () => createStorage({ mounts: { [base]: join(root, 'wh') } });

/** Writes a Parquet file plus manifest and manifest list on top of `table`; returns the commit request. */
async function prepareAppend(
  table: Table,
  rows: { id: number; msg: string }[],
  extra: Partial<CommitTableRequest> = {},
): Promise<CommitTableRequest> {
  const s = storage();
  // A commit that moves offsets needs the table's lease: the tests' coordinator takes it.
  if ((extra.offsets?.length ?? 0) > 0 && extra.leaseEpoch === undefined)
    extra = {
      ...extra,
      leaseEpoch: (await cat.client.acquireCommitLease({ ref: table.ref, owner: 'test-coordinator', ttlMs: 600_000 })).epoch,
    };
  const meta = parseMetadata(await s.read(table.metadataLocation));
  const snapshotId = newSnapshotId();
  const parentId = meta['current-snapshot-id'];
  const sequenceNumber = meta['last-sequence-number'] + 1;
  const dataPath = `${table.location}/data/${crypto.randomUUID()}.parquet`;
  const parquet = new Uint8Array(
    parquetWriteBuffer({
      schema: [
        { name: 'table', num_children: 2 },
        { name: 'id', type: 'INT64', repetition_type: 'REQUIRED', field_id: 1 },
        { name: 'msg', type: 'BYTE_ARRAY', converted_type: 'UTF8', repetition_type: 'OPTIONAL', field_id: 2 },
      ],
      columnData: [
        { name: 'id', data: rows.map((r) => BigInt(r.id)) },
        { name: 'msg', data: rows.map((r) => r.msg) },
      ],
    }),
  );
  await s.write(dataPath, parquet);
  const dataFile: DataFile = {
    filePath: dataPath,
    fileFormat: 'parquet',
    specId: 0,
    partition: [],
    recordCount: rows.length,
    fileSizeInBytes: parquet.length,
    columnStats: [],
    splitOffsets: [],
  };
  const { bytes, stats } = writeManifest([{ status: EntryStatus.ADDED, snapshotId, dataFile }], {
    schema: meta.schemas[0],
    spec: meta['partition-specs'][0],
  });
  const manifestPath = `${table.location}/metadata/${crypto.randomUUID()}-m0.avro`;
  await s.write(manifestPath, bytes);
  const parent = meta.snapshots.find((x) => x['snapshot-id'] === parentId);
  const carried: ManifestFile[] = parent ? readManifestList(await s.read(parent['manifest-list'])) : [];
  const listPath = `${table.location}/metadata/snap-${snapshotId}-${crypto.randomUUID()}.avro`;
  await s.write(
    listPath,
    writeManifestList([manifestFileFor({ path: manifestPath, length: bytes.length, specId: 0, snapshotId, stats }), ...carried], {
      snapshotId,
      parentSnapshotId: parentId,
      sequenceNumber,
    }),
  );
  return {
    ref: table.ref,
    expectedSnapshotId: parentId,
    updates: [
      {
        update: {
          $case: 'addSnapshot',
          value: {
            snapshotId,
            parentSnapshotId: parentId,
            sequenceNumber,
            timestampMs: Date.now(),
            manifestList: listPath,
            operation: 'append',
            summary: buildSummary('append', { added: [dataFile] }, parent?.summary),
            schemaId: 0,
          },
        },
      },
    ],
    job: '',
    offsets: [],
    leaseEpoch: 0,
    errorCounts: [],
    ...extra,
  };
}

const range = (partition: number, startOffset: number, endOffset: number) => ({ topic: 'events', partition, startOffset, endOffset });

test('of 20 concurrent commits against one snapshot exactly one wins; the rest are ABORTED', async () => {
  const table = await newTable('race');
  const requests = await Promise.all(Array.from({ length: 20 }, (_, i) => prepareAppend(table, [{ id: i, msg: `r${i}` }])));
  const results = await Promise.allSettled(requests.map((r) => cat.client.commitTable(r)));
  const won = results.filter((r) => r.status === 'fulfilled');
  assert.equal(won.length, 1);
  for (const r of results) {
    if (r.status === 'rejected') assert.equal((r.reason as { code: number }).code, status.ABORTED);
  }
  const { snapshots, currentSnapshotId } = await cat.client.listSnapshots({ ref: table.ref });
  assert.equal(snapshots.length, 1);
  assert.equal(currentSnapshotId, (won[0] as PromiseFulfilledResult<{ table?: Table }>).value.table?.currentSnapshotId);
});

test('offsets must continue exactly: gaps and overlaps are refused, a first commit starts at the recorded start', async () => {
  let table = await newTable('offsets', 'offsets_job');
  await recordStarts(cat.client, 'offsets_job', 'events', { 0: 100, 1: 0 });
  const commit = async (offsets: ReturnType<typeof range>[], job = 'offsets_job') => {
    const req = await prepareAppend(table, [{ id: 1, msg: 'x' }], { job, offsets });
    const res = await cat.client.commitTable(req);
    table = res.table!;
    return res;
  };
  await commit([range(0, 100, 110), range(1, 0, 5)]);
  await commit([range(0, 110, 120)]);
  assert.deepEqual(
    (await cat.client.getCommittedOffsets({ job: 'offsets_job' })).offsets.map((o) => [o.partition, o.nextOffset, o.snapshotId]),
    [
      [0, 120, table.currentSnapshotId],
      [1, 5, (await cat.client.listSnapshots({ ref: table.ref })).snapshots[0].snapshotId],
    ],
  );
  const gap = await failure(
    cat.client.commitTable(await prepareAppend(table, [{ id: 1, msg: 'x' }], { job: 'offsets_job', offsets: [range(0, 121, 130)] })),
  );
  assert.equal(gap.code, status.FAILED_PRECONDITION);
  assert.match(gap.details, /offset gap on events\/0: committed next offset is 120 but this commit starts at 121/);
  const overlap = await failure(
    cat.client.commitTable(await prepareAppend(table, [{ id: 1, msg: 'x' }], { job: 'offsets_job', offsets: [range(1, 3, 9)] })),
  );
  assert.equal(overlap.code, status.FAILED_PRECONDITION);
  assert.match(overlap.details, /offset overlap on events\/1: committed next offset is 5 but this commit starts at 3/);
  const before = (await cat.client.listSnapshots({ ref: table.ref })).snapshots.length;
  assert.equal(before, 2, 'refused commits added no snapshot');

  const invalid: [Partial<CommitTableRequest>, number, RegExp][] = [
    [{ job: '', offsets: [range(0, 120, 121)] }, status.INVALID_ARGUMENT, /offsets need the job/],
    [{ job: 'offsets_job', offsets: [range(0, 130, 120)] }, status.INVALID_ARGUMENT, /not a valid offset range/],
    [{ job: 'offsets_job', offsets: [range(0, 120, 121), range(0, 121, 122)] }, status.INVALID_ARGUMENT, /appears twice/],
    [{ job: 'nope', offsets: [range(0, 120, 121)] }, status.NOT_FOUND, /job nope does not exist/],
  ];
  for (const [over, code, pattern] of invalid) {
    const f = await failure(cat.client.commitTable(await prepareAppend(table, [{ id: 1, msg: 'x' }], over)));
    assert.equal(f.code, code, pattern.source);
    assert.match(f.details, pattern);
  }
  assert.equal((await failure(cat.client.getCommittedOffsets({ job: 'nope' }))).code, status.NOT_FOUND);
});

test('a commit that moves offsets without the lease (epoch 0) is refused, even when nobody holds it', async () => {
  const table = await newTable('unleased', 'unleased_job');
  const f = await failure(
    cat.client.commitTable(
      await prepareAppend(table, [{ id: 1, msg: 'x' }], { job: 'unleased_job', offsets: [range(0, 5, 10)], leaseEpoch: 0 }),
    ),
  );
  assert.equal(f.code, status.FAILED_PRECONDITION);
  assert.match(f.details, /needs the commit lease of lake\.unleased/);
  assert.deepEqual((await cat.client.getCommittedOffsets({ job: 'unleased_job' })).offsets, [], 'the job skips nothing');
});

test('issue 14 #3: a first commit [5,10) is refused unless the job recorded its start at 5; the job skips nothing', async () => {
  const table = await newTable('first_commit', 'first_commit_job');
  const first = async () =>
    failure(
      cat.client.commitTable(await prepareAppend(table, [{ id: 1, msg: 'x' }], { job: 'first_commit_job', offsets: [range(0, 5, 10)] })),
    );
  const unstarted = await first();
  assert.equal(unstarted.code, status.FAILED_PRECONDITION);
  assert.match(unstarted.details, /job first_commit_job has no start recorded on events\/0 .* start at offset 5/);

  await recordStarts(cat.client, 'first_commit_job', 'events', { 0: 0 });
  const skips = await first();
  assert.equal(skips.code, status.FAILED_PRECONDITION);
  assert.match(
    skips.details,
    /offset gap on events\/0: job first_commit_job starts at offset 0 \(its recorded start\) but this commit starts at 5/,
  );
  assert.deepEqual((await cat.client.getCommittedOffsets({ job: 'first_commit_job' })).offsets, [], 'the job skips nothing');
  assert.equal((await cat.client.listSnapshots({ ref: table.ref })).snapshots.length, 0);

  const ok = await cat.client.commitTable(
    await prepareAppend(table, [{ id: 1, msg: 'x' }], { job: 'first_commit_job', offsets: [range(0, 0, 10)] }),
  );
  assert.ok(ok.table?.currentSnapshotId);
});

test("RecordJobStart: the first start given wins, only on the job's topic, and GetCommittedOffsets returns the starts", async () => {
  await newTable('starts', 'starts_job');
  const record = (starts: { topic?: string; partition: number; offset: number; searchUntilOffset?: number }[]) =>
    cat.client.recordJobStart({ job: 'starts_job', starts: starts.map((s) => ({ topic: 'events', ...s })) });
  const first = await record([
    { partition: 0, offset: 40 },
    { partition: 1, offset: 7, searchUntilOffset: 12 },
  ]);
  const recorded = [
    { topic: 'events', partition: 0, offset: 40, searchUntilOffset: undefined },
    { topic: 'events', partition: 1, offset: 7, searchUntilOffset: 12 },
  ];
  assert.deepEqual(first.starts, recorded);
  // A restart resolving `latest` again (or a second process) gets the recorded starts back.
  const again = await record([
    { partition: 0, offset: 90 },
    { partition: 2, offset: 3 },
  ]);
  assert.deepEqual(again.starts, [...recorded, { topic: 'events', partition: 2, offset: 3, searchUntilOffset: undefined }]);
  assert.deepEqual((await cat.client.getCommittedOffsets({ job: 'starts_job' })).starts, again.starts);

  const invalid: [Parameters<typeof record>[0], number, RegExp][] = [
    [
      [{ topic: 'other', partition: 3, offset: 0 }],
      status.INVALID_ARGUMENT,
      /starts\[0\]\.topic "other" is not the topic events of job starts_job's source/,
    ],
    [[{ partition: -1, offset: 0 }], status.INVALID_ARGUMENT, /starts\[0\]\.partition -1 must be >= 0/],
    [[{ partition: 3, offset: -5 }], status.INVALID_ARGUMENT, /starts\[0\]\.offset -5 of events\/3/],
    [
      [{ partition: 3, offset: 5, searchUntilOffset: 4 }],
      status.INVALID_ARGUMENT,
      /search_until_offset 4 of events\/3 must be >= offset 5/,
    ],
  ];
  for (const [starts, code, pattern] of invalid) {
    const f = await failure(record(starts));
    assert.equal(f.code, code, pattern.source);
    assert.match(f.details, pattern);
  }
  assert.equal((await cat.client.getCommittedOffsets({ job: 'starts_job' })).starts.length, 3, 'a refused request records nothing');
  const missing = await failure(cat.client.recordJobStart({ job: 'nope', starts: [] }));
  assert.equal(missing.code, status.NOT_FOUND);
});

test("a job's progress (last commit, refused records by reason) is kept with its offsets, summed over commits", async () => {
  let table = await newTable('progress', 'progress_job');
  const commit = async (offsets: ReturnType<typeof range>[], errorCounts: { reason: string; count: number }[]) => {
    table = (await cat.client.commitTable(await prepareAppend(table, [{ id: 1, msg: 'x' }], { job: 'progress_job', offsets, errorCounts })))
      .table!;
  };
  assert.equal((await cat.client.getCommittedOffsets({ job: 'progress_job' })).progress, undefined, 'nothing committed yet');
  await recordStarts(cat.client, 'progress_job', 'events', { 0: 0 });
  await commit([range(0, 0, 5)], [{ reason: 'invalid_json', count: 2 }]);
  await commit(
    [range(0, 5, 9)],
    [
      { reason: 'unknown_field', count: 1 },
      { reason: 'invalid_json', count: 3 },
    ],
  );
  const { progress } = await cat.client.getCommittedOffsets({ job: 'progress_job' });
  assert.deepEqual(progress!.errorCounts, [
    { reason: 'invalid_json', count: 5 },
    { reason: 'unknown_field', count: 1 },
  ]);
  assert.equal(progress!.lastSnapshotId, table.currentSnapshotId);
  assert.equal(progress!.lastCommitRows, 1);
  assert.ok(progress!.lastCommitAtMs > 0);

  // A refused commit adds nothing: the counts belong to the offsets, in one transaction.
  await failure(
    cat.client.commitTable(
      await prepareAppend(table, [{ id: 1, msg: 'x' }], {
        job: 'progress_job',
        offsets: [range(0, 20, 25)],
        errorCounts: [{ reason: 'invalid_json', count: 7 }],
      }),
    ),
  );
  assert.deepEqual((await cat.client.getCommittedOffsets({ job: 'progress_job' })).progress!.errorCounts[0], {
    reason: 'invalid_json',
    count: 5,
  });
});

test('commit rules: wrong sequence number, manifest list outside the table, unknown table', async () => {
  const table = await newTable('rules');
  const req = await prepareAppend(table, [{ id: 1, msg: 'x' }]);
  const add = req.updates[0].update as { $case: 'addSnapshot'; value: { sequenceNumber: number; manifestList: string } };
  const wrongSeq = structuredClone(req);
  (wrongSeq.updates[0].update as typeof add).value.sequenceNumber = 7;
  const f1 = await failure(cat.client.commitTable(wrongSeq));
  assert.equal(f1.code, status.FAILED_PRECONDITION);
  assert.match(f1.details, /sequence number 7 is not the next one \(1\)/);
  const outside = structuredClone(req);
  (outside.updates[0].update as typeof add).value.manifestList = `${base}/lake/other/metadata/snap.avro`;
  assert.equal((await failure(cat.client.commitTable(outside))).code, status.INVALID_ARGUMENT);
  assert.equal((await failure(cat.client.commitTable({ ...req, ref: { database: 'lake', table: 'missing' } }))).code, status.NOT_FOUND);
  const stale = await failure(cat.client.commitTable({ ...req, expectedSnapshotId: 12345 }));
  assert.equal(stale.code, status.ABORTED);
  await cat.client.commitTable(req);
});

test('commit leases: one holder, renewals keep the epoch, a takeover fences the old holder', async () => {
  const table = await newTable('leased');
  const a = await cat.client.acquireCommitLease({ ref: table.ref, owner: 'coord-a', ttlMs: 200 });
  assert.equal(a.epoch, 1);
  const held = await failure(cat.client.acquireCommitLease({ ref: table.ref, owner: 'coord-b', ttlMs: 200 }));
  assert.equal(held.code, status.FAILED_PRECONDITION);
  assert.match(held.details, /held by coord-a/);
  assert.equal((await cat.client.acquireCommitLease({ ref: table.ref, owner: 'coord-a', ttlMs: 200 })).epoch, 1, 'renewal keeps the epoch');
  // Expire the lease (rather than sleeping) so the takeover is deterministic.
  await cat.pool.query(`UPDATE catalog.commit_leases SET expires_at_ms = 0`);
  const b = await cat.client.acquireCommitLease({ ref: table.ref, owner: 'coord-b', ttlMs: 60_000 });
  assert.equal(b.epoch, 2);

  const fenced = await failure(cat.client.commitTable(await prepareAppend(table, [{ id: 1, msg: 'x' }], { leaseEpoch: a.epoch })));
  assert.equal(fenced.code, status.FAILED_PRECONDITION);
  assert.match(fenced.details, /fenced: commit lease epoch 1 .* is stale \(current epoch 2, held by coord-b\)/);
  const ok = await cat.client.commitTable(await prepareAppend(table, [{ id: 1, msg: 'x' }], { leaseEpoch: b.epoch }));
  assert.ok(ok.table?.currentSnapshotId);
  assert.equal((await failure(cat.client.acquireCommitLease({ ref: table.ref, owner: '', ttlMs: 0 }))).code, status.INVALID_ARGUMENT);
});

test('a table committed through CommitTable reads back in icebird: schema, rows, history', async () => {
  let table = await newTable('readable', 'readable_job');
  await recordStarts(cat.client, 'readable_job', 'events', { 0: 0 });
  table = (
    await cat.client.commitTable(
      await prepareAppend(
        table,
        [
          { id: 1, msg: 'one' },
          { id: 2, msg: 'two' },
        ],
        { job: 'readable_job', offsets: [range(0, 0, 2)] },
      ),
    )
  ).table!;
  const firstMetadata = table.metadataLocation;
  table = (
    await cat.client.commitTable(await prepareAppend(table, [{ id: 3, msg: 'three' }], { job: 'readable_job', offsets: [range(0, 2, 3)] }))
  ).table!;
  // A properties-only maintenance commit also produces a new metadata file.
  table = (
    await cat.client.commitTable({
      ref: table.ref,
      expectedSnapshotId: table.currentSnapshotId,
      updates: [{ update: { $case: 'setProperties', value: { updates: { 'commit.owner': 'test' }, removals: [] } } }],
      job: '',
      offsets: [],
      leaseEpoch: 0,
      errorCounts: [],
    })
  ).table!;
  assert.equal(table.properties['commit.owner'], 'test');

  const jdbc = await cat.pool.query(
    `SELECT metadata_location, previous_metadata_location FROM public.iceberg_tables WHERE table_name = 'readable'`,
  );
  assert.equal(jdbc.rows[0].metadata_location, table.metadataLocation);
  assert.equal(jdbc.rows[0].previous_metadata_location, table.previousMetadataLocation);

  const name = (l: string) => l.slice(l.lastIndexOf('/') + 1);
  const metadata = await icebergMetadata({ tableUrl: table.location, metadataFileName: name(table.metadataLocation) });
  assert.deepEqual(
    metadata.schemas[0].fields.map((f: { id: number; name: string }) => [f.id, f.name]),
    [
      [1, 'id'],
      [2, 'msg'],
    ],
  );
  assert.deepEqual(
    (metadata.snapshots ?? []).map((s) => s.summary?.['total-records']),
    ['2', '3'],
  );
  const rows = await icebergRead({ tableUrl: table.location, metadataFileName: name(table.metadataLocation) });
  assert.deepEqual(rows.map((r: Record<string, unknown>) => [Number(r.id), r.msg]).sort(), [
    [1, 'one'],
    [2, 'two'],
    [3, 'three'],
  ]);
  const old = await icebergRead({ tableUrl: table.location, metadataFileName: name(firstMetadata) });
  assert.deepEqual(old.map((r: Record<string, unknown>) => Number(r.id)).sort(), [1, 2]);
});

test("a keyed table's row index moves with its commits: LookupRowKeys answers by file, and a commit naming an unknown file is refused", async () => {
  const table = await newTable('keyed_index');
  const first = await prepareAppend(table, [
    { id: 1, msg: 'a' },
    { id: 2, msg: 'b' },
  ]);
  const [dataPath] = await readBackDataPaths(first);
  await cat.client.commitTable({
    ...first,
    rowKeys: {
      upserts: [{ filePath: dataPath, keys: ['[1]', '[2]'], positions: [0, 1] }],
      deletes: [],
      files: [{ filePath: dataPath, specId: 0, partition: [] }],
      droppedFiles: [],
    },
    changeCounts: { inserted: 2, updated: 0, deleted: 0 },
  });
  const { rows, files, snapshotId } = await cat.client.lookupRowKeys({ ref: table.ref, keys: ['[2]', '[3]'], filePaths: [] });
  assert.deepEqual(rows, [{ filePath: dataPath, keys: ['[2]'], positions: [1] }]);
  assert.deepEqual(files, [{ filePath: dataPath, specId: 0, partition: [] }]);
  assert.equal(snapshotId, (first.updates[0].update as { value: { snapshotId: number } }).value.snapshotId);

  // A second commit deletes key 1 and points key 2 at a file the index does not know: refused, nothing moves.
  const { table: current } = await cat.client.getTable({ ref: table.ref });
  const second = await prepareAppend(current!, [{ id: 2, msg: 'c' }]);
  const refused = await failure(
    cat.client.commitTable({
      ...second,
      rowKeys: {
        upserts: [{ filePath: '/nowhere.parquet', keys: ['[2]'], positions: [0] }],
        deletes: ['[1]'],
        files: [],
        droppedFiles: [],
      },
    }),
  );
  assert.equal(refused.code, status.INVALID_ARGUMENT);
  assert.match(
    refused.details,
    /row_keys\.upserts names data file \/nowhere\.parquet, which is neither new in row_keys\.files nor indexed/,
  );
  const after = await cat.client.lookupRowKeys({ ref: table.ref, keys: ['[1]', '[2]'], filePaths: [] });
  assert.deepEqual(after.rows, [{ filePath: dataPath, keys: ['[1]', '[2]'], positions: [0, 1] }]);

  const mismatched = await failure(
    cat.client.commitTable({
      ...second,
      rowKeys: { upserts: [{ filePath: dataPath, keys: ['[2]'], positions: [] }], deletes: [], files: [], droppedFiles: [] },
    }),
  );
  assert.equal(mismatched.code, status.INVALID_ARGUMENT);
  assert.match(mismatched.details, /row_keys\.upserts\[0\] has 1 keys and 0 positions/);
});

/** The data files a prepared append adds (read back from its manifest list). */
async function readBackDataPaths(req: CommitTableRequest): Promise<string[]> {
  const s = storage();
  const list = (req.updates[0].update as { value: { manifestList: string } }).value.manifestList;
  const manifests = readManifestList(await s.read(list));
  return readManifest(await s.read(manifests[0].manifestPath)).entries.map((e) => e.dataFile.filePath);
}
