/**
 * Upserts against appends (issue 16), in one run on the test mesh (the four services as
 * processes, the dev broker in this process, a fresh PostgreSQL database, local files):
 *
 *  (a) 1M keyed changes over 100k keys (60 % updates and 10 % deletes of live keys, 30 % rows of
 *      any key) in one topic; a job appends them all to a plain table: rows/s from StartJob until the
 *      committed offsets reach the end;
 *  (b) a job with `mapping.changes: keyed` applies the same records to a keyed table: changes/s
 *      the same way, and the ratio to (a);
 *  (c) `sluice query` time of an aggregate over the keyed table with its position delete files,
 *      then again after compaction (run from here as maintenance runs it) has applied them, and over
 *      the appended table for reference. The keyed table's row count is checked against the
 *      model of the changes.
 *  (d) the lookup the commit coordinator does each round, measured both ways for 10k random
 *      keys of the finished keyed table: the catalog's row index (LookupRowKeys, what Sluice
 *      uses) against DuckDB scanning the key column of every live data file for them (the
 *      alternative; without even applying the deletes, so a lower bound).
 *
 * UPSERT_BENCH_CHANGES and UPSERT_BENCH_KEYS shrink it for a quick look.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { DuckDBInstance } from '@duckdb/node-api';
import { currentSnapshot, parseMetadata } from '#shared/iceberg/metadata.js';
import { snapshotFiles } from '#shared/iceberg/scan.js';
import { createStorage } from '#shared/storage/index.js';
import { runSluiceJson } from '#test-support/cli.js';
import type { CoordinatorContext } from '../services/commit/src/context.js';
import { compactTable } from '../services/commit/src/maintenance/index.js';
import { startMesh, type TestMesh } from '#test-support/mesh.js';
import { seededRandom } from '#test-support/random.js';
import { waitFor } from '#test-support/wait.js';

const CHANGES = Number(process.env.UPSERT_BENCH_CHANGES ?? 1_000_000);
const KEYS = Number(process.env.UPSERT_BENCH_KEYS ?? 100_000);
const PARTITIONS = 2;
const TOPIC = 'changes';

/**
 * The change stream and the number of live keys at its end: 60 % updates of a live key, 10 %
 * deletes of a live key (tombstones), 30 % rows of any key (an insert when the key is absent, an
 * update when it is live), each key on its own Kafka partition.
 */
function changes(): { byPartition: { key: string; value: string | null }[][]; live: number; counts: Record<string, number> } {
  const random = seededRandom(1016);
  const live: number[] = [];
  const slot = new Map<number, number>(); // key → its index in live
  const byPartition: { key: string; value: string | null }[][] = Array.from({ length: PARTITIONS }, () => []);
  const counts = { inserts: 0, updates: 0, deletes: 0 };
  const add = (id: number) => {
    slot.set(id, live.length);
    live.push(id);
  };
  const remove = (id: number) => {
    const at = slot.get(id)!;
    const moved = live.pop()!;
    if (moved !== id) {
      live[at] = moved;
      slot.set(moved, at);
    }
    slot.delete(id);
  };
  for (let i = 0; i < CHANGES; i++) {
    const p = random();
    let id: number;
    let value: string | null = null;
    if (p < 0.7 && live.length > 0) id = live[Math.floor(random() * live.length)];
    else id = Math.floor(random() * KEYS);
    if (p >= 0.6 && p < 0.7 && slot.has(id)) {
      remove(id);
      counts.deletes++;
    } else {
      value = JSON.stringify({ id, name: `n${i}`, v: i });
      if (slot.has(id)) counts.updates++;
      else {
        add(id);
        counts.inserts++;
      }
    }
    byPartition[id % PARTITIONS].push({ key: JSON.stringify({ id }), value });
  }
  return { byPartition, live: live.length, counts };
}

function spec(name: string, table: string, keyed: boolean): string {
  return `name: ${name}
source:
  name: ${name}
  topic: ${TOPIC}
  format: JSON
table:
  database: bench
  name: ${table}
  columns:
    - { name: id, type: long, required: true }
    - { name: name, type: string }
    - { name: v, type: long }
${keyed ? '  key: [id]\nmapping:\n  changes: keyed\n' : ''}errors:
  policy: skip
commit:
  intervalMs: 1000
`;
}

/** Seconds from starting the job until its committed offsets reach the end of every partition. */
async function runJob(mesh: TestMesh, name: string, table: string, keyed: boolean, ends: number[]): Promise<number> {
  const path = join(mesh.dir, `${name}.yaml`);
  await writeFile(path, spec(name, table, keyed));
  const started = performance.now();
  await runSluiceJson(mesh.clientEnv, 'job', 'create', '-f', path, '--start');
  await waitFor(
    `${name} to commit every record`,
    async () => {
      mesh.assertNoCrash();
      const { offsets } = await mesh.catalog.getCommittedOffsets({ job: name });
      return ends.every((end, p) => (offsets.find((o) => o.partition === p)?.nextOffset ?? 0) >= end) || undefined;
    },
    { timeoutMs: 900_000, intervalMs: 200 },
  );
  return (performance.now() - started) / 1000;
}

async function timedQuery(mesh: TestMesh, sql: string): Promise<{ ms: number; rows: Record<string, unknown>[] }> {
  const started = performance.now();
  const { rows } = await runSluiceJson<{ rows: Record<string, unknown>[] }>(mesh.clientEnv, 'query', sql);
  return { ms: Math.round(performance.now() - started), rows };
}

async function currentSummary(mesh: TestMesh, table: string): Promise<Record<string, string>> {
  const { snapshots, currentSnapshotId } = await runSluiceJson<{
    snapshots: { snapshotId: number; summary: Record<string, string> }[];
    currentSnapshotId: number;
  }>(mesh.clientEnv, 'table', 'history', `bench.${table}`);
  return snapshots.find((s) => s.snapshotId === currentSnapshotId)?.summary ?? {};
}

/** Milliseconds of the row index lookup and of a DuckDB scan of the live files' key column, for the same keys. */
async function lookups(mesh: TestMesh, table: string, keys: number): Promise<{ rowIndexMs: number; duckdbScanMs: number; found: number }> {
  const random = seededRandom(7);
  const ids = Array.from({ length: keys }, () => Math.floor(random() * KEYS));
  const ref = { database: 'bench', table };
  // Each way three times, the best kept: the first call of either pays for cold caches.
  let rowIndexMs = Number.POSITIVE_INFINITY;
  let found = 0;
  for (let i = 0; i < 3; i++) {
    const started = performance.now();
    const { rows } = await mesh.catalog.lookupRowKeys({ ref, keys: ids.map((id) => `[${id}]`), filePaths: [] });
    rowIndexMs = Math.min(rowIndexMs, performance.now() - started);
    found = rows.reduce((n, f) => n + f.keys.length, 0);
  }

  const { table: t } = await mesh.catalog.getTable({ ref });
  const storage = createStorage();
  const files = (await snapshotFiles(storage, currentSnapshot(parseMetadata(await storage.read(t!.metadataLocation)))!)).dataFiles;
  const duck = await (await DuckDBInstance.create(':memory:')).connect();
  const list = files.map((f) => `'${f.dataFile.filePath}'`).join(', ');
  let duckdbScanMs = Number.POSITIVE_INFINITY;
  for (let i = 0; i < 3; i++) {
    const started = performance.now();
    await duck.runAndReadAll(
      `SELECT id, filename, file_row_number FROM read_parquet([${list}], filename = true, file_row_number = true) WHERE id IN (${ids.join(', ')})`,
    );
    duckdbScanMs = Math.min(duckdbScanMs, performance.now() - started);
  }
  duck.closeSync();
  return { rowIndexMs: Math.round(rowIndexMs), duckdbScanMs: Math.round(duckdbScanMs), found };
}

export default async function run(): Promise<Record<string, unknown>> {
  const { byPartition, live, counts } = changes();
  // No maintenance while the jobs run: the query with delete files is measured before compaction.
  const mesh = await startMesh({ partitions: PARTITIONS, env: { COMMIT_MAINTENANCE_INTERVAL_MS: '0' } });
  try {
    mesh.broker.createTopic(TOPIC, PARTITIONS);
    const ends = byPartition.map((records, p) => {
      for (let i = 0; i < records.length; i += 10_000) mesh.broker.append(TOPIC, p, records.slice(i, i + 10_000));
      return records.length;
    });
    const appendSeconds = await runJob(mesh, 'bench-append', 'appended', false, ends);
    const upsertSeconds = await runJob(mesh, 'bench-upsert', 'keyed', true, ends);

    const lookup = await lookups(mesh, 'keyed', 10_000);
    const aggregate = (table: string) => `SELECT count(*) AS n, sum(v) AS s FROM bench.${table}`;
    const before = await currentSummary(mesh, 'keyed');
    const withDeletes = await timedQuery(mesh, aggregate('keyed'));
    if (Number(withDeletes.rows[0].n) !== live)
      throw new Error(`the keyed table has ${withDeletes.rows[0].n} rows, the changes leave ${live}`);
    // Compaction as maintenance runs it, from here (no offsets, so no lease epoch is needed).
    const started = performance.now();
    const ctx = { catalog: mesh.catalog, storage: createStorage() } as unknown as CoordinatorContext;
    while (Number((await currentSummary(mesh, 'keyed'))['total-delete-files'] ?? 0) > 0) {
      if (!(await compactTable(ctx, { database: 'bench', table: 'keyed' }, 0))) throw new Error('compaction left delete files');
    }
    const compactionSeconds = (performance.now() - started) / 1000;
    const compacted = await timedQuery(mesh, aggregate('keyed'));
    if (compacted.rows[0].s !== withDeletes.rows[0].s) throw new Error('compaction changed the table');
    const appended = await timedQuery(mesh, aggregate('appended'));
    return {
      changes: CHANGES,
      keys: KEYS,
      mix: counts,
      liveRows: live,
      appendRowsPerSecond: Math.round(CHANGES / appendSeconds),
      upsertChangesPerSecond: Math.round(CHANGES / upsertSeconds),
      upsertToAppend: Number((appendSeconds / upsertSeconds).toFixed(2)),
      deleteFilesBeforeCompaction: Number(before['total-delete-files'] ?? 0),
      positionDeletesBeforeCompaction: Number(before['total-position-deletes'] ?? 0),
      lookup10kKeysMs: lookup,
      compactionSeconds: Number(compactionSeconds.toFixed(1)),
      queryMs: { keyedWithDeletes: withDeletes.ms, keyedCompacted: compacted.ms, appended: appended.ms },
    };
  } finally {
    await mesh.stop();
  }
}
