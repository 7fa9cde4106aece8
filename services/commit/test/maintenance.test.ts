/**
 * Maintenance against the real catalog and files: compaction of 100 small files while
 * appends land, a compaction that loses to another rewrite, snapshot expiry, orphan cleanup,
 * and the result read back by icebird, an independent Iceberg reader, over HTTP.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { icebergMetadata, icebergRead } from 'icebird';
import type { DataFile, TableRef } from '#shared/gen/sluice/v1/types.js';
import { currentSnapshot, type TableMetadata } from '#shared/iceberg/index.js';
import { snapshotFiles } from '#shared/iceberg/scan.js';
import { commitAppend } from '../src/append.js';
import { loadTable } from '../src/catalog.js';
import type { CoordinatorContext } from '../src/context.js';
import { CommitError } from '../src/errors.js';
import { compactTable, expireSnapshots, pickCompaction, removeOrphans, selectExpired, selectOrphans } from '../src/maintenance/index.js';
import { waitFor } from '#test-support/wait.js';
import { ids, range, startCommitStack, tableIds, writeDataFile, type CommitStack, type RunningCoordinator } from './harness.js';

describe('maintenance policies (pure)', () => {
  const snap = (id: number, ts: number, parent?: number) => ({
    'snapshot-id': id,
    'parent-snapshot-id': parent,
    'timestamp-ms': ts,
    'sequence-number': id,
    'manifest-list': `l${id}`,
    summary: { operation: 'append' },
  });
  const meta = (current: number, refs: Record<string, number> = {}) =>
    ({
      'current-snapshot-id': current,
      snapshots: [snap(1, 100), snap(2, 200, 1), snap(3, 300, 2), snap(4, 400, 3)],
      refs: Object.fromEntries(Object.entries({ main: current, ...refs }).map(([k, v]) => [k, { 'snapshot-id': v, type: 'branch' }])),
    }) as unknown as TableMetadata;

  const cases: [string, TableMetadata, number, { maxSnapshotAgeMs: number; minSnapshotsToKeep: number }, number[]][] = [
    [
      'expires everything older than the max age except the current snapshot',
      meta(4),
      1000,
      { maxSnapshotAgeMs: 0, minSnapshotsToKeep: 1 },
      [1, 2, 3],
    ],
    ['keeps the newest ancestors up to the minimum', meta(4), 1000, { maxSnapshotAgeMs: 0, minSnapshotsToKeep: 3 }, [1]],
    ['keeps what is younger than the max age', meta(4), 450, { maxSnapshotAgeMs: 200, minSnapshotsToKeep: 1 }, [1, 2]],
    ['never expires a snapshot a tag points at', meta(4, { audit: 2 }), 1000, { maxSnapshotAgeMs: 0, minSnapshotsToKeep: 1 }, [1, 3]],
  ];
  for (const [name, m, now, policy, expected] of cases)
    it(`expiry ${name}`, () => assert.deepEqual(selectExpired(m, now, policy), expected));

  const file = (path: string, size: number, part: string): { dataFile: DataFile } => ({
    dataFile: {
      filePath: path,
      fileFormat: 'parquet',
      specId: 0,
      partition: [{ fieldId: 1000, name: 'p', value: { kind: { $case: 'stringValue', value: part } } }],
      recordCount: 1,
      fileSizeInBytes: size,
      columnStats: [],
      splitOffsets: [],
    },
  });
  it('compaction picks the partition with the most small files, up to the target size', () => {
    const files = [
      file('a1', 10, 'a'),
      file('a2', 10, 'a'),
      file('b1', 10, 'b'),
      file('b2', 10, 'b'),
      file('b3', 10, 'b'),
      file('b4', 999, 'b'),
    ];
    const picked = pickCompaction(files, { smallFileBytes: 100, minInputFiles: 2, targetFileBytes: 1000 });
    assert.deepEqual(
      picked?.map((f) => f.dataFile.filePath),
      ['b1', 'b2', 'b3'],
    );
    assert.equal(pickCompaction(files, { smallFileBytes: 100, minInputFiles: 4, targetFileBytes: 1000 }), undefined);
    assert.deepEqual(pickCompaction(files, { smallFileBytes: 100, minInputFiles: 2, targetFileBytes: 20 })?.length, 2);
  });

  it('orphans are unreferenced, not pending, and older than the margin', () => {
    const files = [
      { location: '/t/data/live.parquet', modifiedMs: 0 },
      { location: '/t/data/orphan.parquet', modifiedMs: 0 },
      { location: '/t/data/young.parquet', modifiedMs: 900 },
      { location: '/t/data/pending.parquet', modifiedMs: 0 },
    ];
    const result = selectOrphans(files, new Set(['/t/data/live.parquet']), new Set(['/t/data/pending.parquet']), 500);
    assert.deepEqual(result, { orphans: ['/t/data/orphan.parquet'], tooYoung: 1 });
  });
});

describe('manifest merging on append', () => {
  let stack: CommitStack;
  before(async () => {
    stack = await startCommitStack();
  });
  after(() => stack.stop());

  it('keeps the manifest list short: past the threshold, carried manifests are merged into one', async () => {
    const job = `${stack.database}_merge`;
    const ref = await stack.createTable('merged', { job, properties: { 'commit.manifest.min-count-to-merge': '3' } });
    const counts: number[] = [];
    const { epoch } = await stack.catalog.acquireCommitLease({ ref, owner: 'test-coordinator', ttlMs: 600_000 });
    for (let i = 0; i < 6; i++) {
      const file = await writeDataFile(stack, ref, i % 2 ? 'a' : 'b', i * 10, i * 10 + 10);
      await commitAppend({
        catalog: stack.catalog,
        storage: stack.storage,
        ref,
        job,
        flushId: `f${i}`,
        files: [file],
        offsets: [range(0, i * 10, i * 10 + 10)],
        leaseEpoch: epoch,
      });
      const { metadata } = await loadTable(stack.catalog, stack.storage, ref);
      counts.push((await snapshotFiles(stack.storage, currentSnapshot(metadata)!)).manifests.length);
    }
    // 1, 2, 3 manifests; then the 3 carried ones merge into 1 (+ the new one), and so on.
    assert.deepEqual(counts, [1, 2, 3, 2, 3, 2]);
    assert.deepEqual(await tableIds(stack, ref), ids(0, 60));
    const { table } = await stack.catalog.getTable({ ref });
    const fileName = (l: string) => l.slice(l.lastIndexOf('/') + 1);
    const rows = await icebergRead({ tableUrl: table!.location, metadataFileName: fileName(table!.metadataLocation) });
    assert.deepEqual(
      rows.map((r: Record<string, unknown>) => Number(r.id)).sort((x, y) => x - y),
      ids(0, 60),
    );
  });
});

describe('the maintenance timer', () => {
  let stack: CommitStack;
  before(async () => {
    stack = await startCommitStack();
  });
  after(() => stack.stop());

  it('cleans a table this coordinator holds the lease of, and leaves others alone', async () => {
    const held = await stack.createTable('held');
    const other = await stack.createTable('other');
    const coord = await stack.startCoordinator({ maintenanceIntervalMs: 100, orphanMinAgeMs: 0 });
    const stray = async (ref: TableRef) => {
      const { table } = await stack.catalog.getTable({ ref });
      const location = `${table!.location}/data/part=a/stray.parquet`;
      await stack.storage.write(location, new Uint8Array([1, 2, 3]));
      return location;
    };
    const heldStray = await stray(held);
    const otherStray = await stray(other);
    coord.coordinator.table(other); // known, but its lease is not ours
    await coord.coordinator.table(held).leaseEpoch();
    await waitFor("the maintenance timer to remove the held table's orphan", async () => !(await stack.storage.exists(heldStray)));
    assert.equal(await stack.storage.exists(heldStray), false, 'the orphan of the held table was removed by the timer');
    assert.equal(await stack.storage.exists(otherStray), true, 'the timer took no lease to clean the other table');
    await coord.stop();
  });
});

describe('maintenance on a real table', () => {
  let stack: CommitStack;
  let ref: TableRef;
  let job: string;
  let ctx: CoordinatorContext;
  let epoch: number;
  let coord: RunningCoordinator;
  const next = { a: 0, b: 10_000 };

  before(async () => {
    stack = await startCommitStack();
    job = `${stack.database}_maint`;
    ref = await stack.createTable('small', {
      job,
      starts: { 0: 0, 1: 10_000 },
      properties: { 'history.expire.max-snapshot-age-ms': '0', 'history.expire.min-snapshots-to-keep': '1' },
    });
    coord = await stack.startCoordinator({ orphanMinAgeMs: 0 });
    ctx = coord.coordinator.ctx;
    epoch = await coord.coordinator.table(ref).leaseEpoch();
  });
  after(() => stack.stop());

  /** An append of `count` one-or-two-row files to partition a (Kafka partition 0) or b (1). */
  async function append(part: 'a' | 'b', count: number): Promise<void> {
    const files: DataFile[] = [];
    const start = next[part];
    for (let i = 0; i < count; i++) {
      const rows = 1 + (i % 2);
      files.push(await writeDataFile(stack, ref, part, next[part], next[part] + rows));
      next[part] += rows;
    }
    const partition = part === 'a' ? 0 : 1;
    await commitAppend({
      catalog: stack.catalog,
      storage: stack.storage,
      ref,
      job,
      flushId: `f-${part}-${start}`,
      files,
      offsets: [range(partition, start, next[part])],
      leaseEpoch: epoch,
    });
  }

  const expectedIds = () => [...ids(0, next.a), ...ids(10_000, next.b)];
  const liveFiles = async () => {
    const { metadata } = await loadTable(stack.catalog, stack.storage, ref);
    return (await snapshotFiles(stack.storage, currentSnapshot(metadata)!)).dataFiles.map((f) => f.dataFile);
  };

  it('compacts 100 small files of a partition into one with the same rows while appends land', async () => {
    await append('a', 100);
    await append('b', 3);
    const result = await compactTable(
      ctx,
      ref,
      epoch,
      { minInputFiles: 10 },
      {
        // Appends to both partitions land after the rewrite was planned: the replace commit
        // must keep them.
        afterRewrite: async () => {
          await append('a', 2);
          await append('b', 2);
        },
      },
    );
    assert.ok(result);
    assert.equal(result.replaced.length, 100);
    assert.equal(result.records, 150);
    const live = await liveFiles();
    const inA = live.filter((f) => f.filePath.includes('part=a'));
    assert.equal(inA.length, 3, 'the compacted file plus the two appended during compaction');
    assert.ok(inA.some((f) => f.filePath === result.added && f.recordCount === 150));
    assert.equal(live.filter((f) => f.filePath.includes('part=b')).length, 5);
    assert.deepEqual(await tableIds(stack, ref), expectedIds());

    const { snapshots } = await stack.catalog.listSnapshots({ ref });
    const replace = snapshots.find((s) => s.snapshotId === result.snapshotId)!;
    assert.equal(replace.operation, 'replace');
    assert.equal(replace.summary['added-data-files'], '1');
    assert.equal(replace.summary['deleted-data-files'], '100');
    assert.equal(replace.summary['added-records'], '150');
    assert.equal(replace.summary['deleted-records'], '150');
    assert.equal(replace.summary['total-records'], String(expectedIds().length));
    assert.equal(replace.summary['total-data-files'], '8');
  });

  it('a compaction whose files another rewrite replaced first gives up and removes its output', async () => {
    let inner: Awaited<ReturnType<typeof compactTable>>;
    await assert.rejects(
      compactTable(
        ctx,
        ref,
        epoch,
        { minInputFiles: 3 },
        {
          afterRewrite: async () => {
            inner = await compactTable(ctx, ref, epoch, { minInputFiles: 3 });
          },
        },
      ),
      (err: unknown) => err instanceof CommitError && err.kind === 'stale-rewrite' && /no longer live/.test(err.message),
    );
    assert.ok(inner!, 'the inner compaction committed');
    const dataDirFiles = (await stack.storage.list(`${(await loadTable(stack.catalog, stack.storage, ref)).metadata.location}/data`)).map(
      (f) => f.location,
    );
    assert.equal(
      dataDirFiles.filter((l) => l.includes('compacted-')).length,
      2,
      'the first compaction output and the winner; the loser deleted its own',
    );
    assert.deepEqual(await tableIds(stack, ref), expectedIds());
  });

  it('after appends, compactions, expiry and orphan cleanup, icebird reads the same rows and the pruned history', async () => {
    const before = await loadTable(stack.catalog, stack.storage, ref);
    const fileName = (l: string) => l.slice(l.lastIndexOf('/') + 1);
    const history = await icebergMetadata({
      tableUrl: before.metadata.location,
      metadataFileName: fileName(before.table.metadataLocation),
    });
    assert.deepEqual(
      history.snapshots?.map((s) => s.summary?.operation),
      ['append', 'append', 'append', 'append', 'replace', 'replace'],
    );

    const coordTable = coord.coordinator.table(ref);
    const report = await coordTable.maintain();
    assert.equal(report.expiredSnapshots, 5);
    assert.ok(report.orphansDeleted >= 100, `deleted ${report.orphansDeleted} orphans (the 100 small files among them)`);

    const { table, metadata } = await loadTable(stack.catalog, stack.storage, ref);
    assert.equal(metadata.snapshots.length, 1);
    const tableUrl = metadata.location;
    const read = await icebergMetadata({ tableUrl, metadataFileName: fileName(table.metadataLocation) });
    assert.equal(read.snapshots?.length, 1);
    assert.equal(read['current-snapshot-id'], metadata['current-snapshot-id']);
    const rows = await icebergRead({ tableUrl, metadataFileName: fileName(table.metadataLocation) });
    assert.deepEqual(
      rows.map((r: Record<string, unknown>) => Number(r.id)).sort((x, y) => x - y),
      expectedIds(),
    );
    assert.deepEqual(new Set(rows.map((r: Record<string, unknown>) => r.part)), new Set(['a', 'b']));
    // Every file left is referenced: a second pass finds nothing.
    assert.equal((await coordTable.maintain()).orphansDeleted, 0);
  });
});

describe("a keyed table's maintenance: compaction applies position deletes, expiry and orphan cleanup cover delete files", () => {
  let stack: CommitStack;
  let coord: RunningCoordinator;
  let ctx: CoordinatorContext;
  let ref: TableRef;
  let job: string;
  let epoch: number;
  let next = 0;

  before(async () => {
    stack = await startCommitStack();
    job = `${stack.database}_keyed`;
    ref = await stack.createTable('keyed', {
      job,
      starts: { 0: 0 },
      properties: { 'history.expire.max-snapshot-age-ms': '0', 'history.expire.min-snapshots-to-keep': '1' },
    });
    coord = await stack.startCoordinator({ orphanMinAgeMs: 0 });
    ctx = coord.coordinator.ctx;
    epoch = await coord.coordinator.table(ref).leaseEpoch();
  });
  after(() => stack.stop());

  /** Commits rows for the given keys (the row's id is its offset; the key is `[key]`), one file, as a keyed round. */
  async function upsert(keys: number[]): Promise<DataFile> {
    const file = await writeDataFile(stack, ref, 'a', next, next + keys.length);
    await commitAppend({
      catalog: stack.catalog,
      storage: stack.storage,
      ref,
      job,
      flushId: `f-${next}`,
      files: [file],
      offsets: [range(0, next, next + keys.length)],
      leaseEpoch: epoch,
      rows: [
        {
          workerId: 'w1',
          files: [file],
          changes: {
            files: [{ filePath: file.filePath, keys: keys.map((k) => `[${k}]`), positions: [] }],
            deletedKeys: [],
            deletedPositions: [],
          },
        },
      ],
    });
    next += keys.length;
    return file;
  }

  const snapshot = async () => {
    const { metadata } = await loadTable(stack.catalog, stack.storage, ref);
    return snapshotFiles(stack.storage, currentSnapshot(metadata)!);
  };

  it('rewrites without the deleted rows, drops the delete files it applied, and the index follows the rows', async () => {
    const first = await upsert([1, 2, 3, 4, 5]); // ids 0-4
    await upsert([2, 3]); // ids 5-6 replace keys 2 and 3: ids 1 and 2 of the first file are deleted
    const before = await snapshot();
    assert.equal(before.positionDeletes.length, 1);
    const deleteFile = before.positionDeletes[0].dataFile.filePath;
    assert.equal((await removeOrphans(ctx, ref, { nowMs: Date.now() })).deleted.length, 0, 'nothing referenced is an orphan');
    assert.ok(await stack.storage.exists(deleteFile));

    const result = await compactTable(ctx, ref, epoch, { minInputFiles: 2 });
    assert.ok(result, 'compaction ran');
    const after = await snapshot();
    assert.equal(after.positionDeletes.length, 0, 'the applied delete file is gone from the current snapshot');
    assert.deepEqual(await tableIds(stack, ref), [0, 3, 4, 5, 6], 'each key once, with its latest row');
    assert.deepEqual(after.snapshot.summary['removed-delete-files'], '1');

    // Later changes find their rows in the compacted file.
    await upsert([1, 5]); // ids 7-8
    assert.deepEqual((await snapshot()).positionDeletes.length, 1, 'the new delete file points into the compacted file');
    const { rows } = await stack.catalog.lookupRowKeys({ ref, keys: ['[1]', '[2]', '[5]'], filePaths: [] });
    assert.deepEqual(rows.flatMap((r) => r.keys).sort(), ['[1]', '[2]', '[5]']);

    // Expiry forgets the snapshots that named the first files and the applied delete file; orphan cleanup removes them.
    await expireSnapshots(ctx, ref, epoch, Date.now() + 1);
    const cleanup = await removeOrphans(ctx, ref, { nowMs: Date.now() + 1 });
    assert.ok(cleanup.deleted.includes(deleteFile), `the applied delete file was collected (${cleanup.deleted.join(', ')})`);
    assert.ok(cleanup.deleted.includes(first.filePath));
    for (const f of (await snapshot()).positionDeletes)
      assert.ok(await stack.storage.exists(f.dataFile.filePath), 'a live delete file stays');
  });
});
