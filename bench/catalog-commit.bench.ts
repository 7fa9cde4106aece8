/**
 * CommitTable latency against a real PostgreSQL and local files: sequential commits that
 * each add a snapshot and advance one job's offsets (metadata.json write, pointer swap,
 * offsets upsert in one transaction), and 8 contending committers that rebase on ABORTED.
 */
import { performance } from 'node:perf_hooks';
import { status } from '@grpc/grpc-js';
import { StartFrom, type Table, Job } from '#shared/gen/sluice/v1/catalog.js';
import { MessageFormat } from '#shared/gen/sluice/v1/types.js';
import { newSnapshotId } from '#shared/iceberg/index.js';
import { recordStarts } from '#test-support/builders.js';
import { startTestCatalog, type TestCatalog } from '../services/catalog/test/harness.js';

const COMMITS = 60;

function appendRequest(table: Table, offset: number, job = 'bench_job', leaseEpoch = 0) {
  const snapshotId = newSnapshotId();
  return {
    ref: table.ref,
    expectedSnapshotId: table.currentSnapshotId,
    updates: [
      {
        update: {
          $case: 'addSnapshot' as const,
          value: {
            snapshotId,
            parentSnapshotId: table.currentSnapshotId,
            sequenceNumber: table.lastSequenceNumber + 1,
            timestampMs: Date.now(),
            // The catalog does not open manifest lists; a name under the table is enough here.
            manifestList: `${table.location}/metadata/snap-${snapshotId}.avro`,
            operation: 'append',
            summary: {},
            schemaId: 0,
          },
        },
      },
    ],
    job,
    offsets: [{ topic: 'bench', partition: 0, startOffset: offset, endOffset: offset + 100 }],
    leaseEpoch,
    errorCounts: [],
  };
}

async function setup(cat: TestCatalog): Promise<Table> {
  await cat.client.createDatabase({ name: 'bench', location: '', properties: {} });
  const { table } = await cat.client.createTable({
    ref: { database: 'bench', table: 't' },
    schema: {
      schemaId: 0,
      fields: [{ id: 0, name: 'id', required: false, doc: '', type: { kind: { $case: 'primitive', value: 'long' } } }],
      identifierFieldIds: [],
    },
    location: '',
    properties: {},
    ifNotExists: false,
  });
  await cat.client.createSource({
    source: {
      name: 'bench_src',
      brokers: [],
      topic: 'bench',
      format: MessageFormat.MESSAGE_FORMAT_JSON,
      mode: 0 as never,
      properties: {},
      createdAtMs: 0,
    },
  });
  await cat.client.createJob({
    job: Job.fromPartial({
      name: 'bench_job',
      source: 'bench_src',
      table: { database: 'bench', table: 't' },
      start: { from: StartFrom.START_FROM_EARLIEST },
      commitIntervalMs: 1000,
    }),
  });
  await recordStarts(cat.client, 'bench_job', 'bench', { 0: 0 });
  return table!;
}

export default async function run(): Promise<Record<string, unknown>> {
  const cat = await startTestCatalog();
  try {
    let table = await setup(cat);
    // Offsets move only under the table's commit lease, as the coordinator holds it.
    const { epoch } = await cat.client.acquireCommitLease({ ref: table.ref, owner: 'bench', ttlMs: 600_000 });
    const latencies: number[] = [];
    let offset = 0;
    for (let i = 0; i < COMMITS; i++) {
      const t0 = performance.now();
      table = (await cat.client.commitTable(appendRequest(table, offset, 'bench_job', epoch))).table!;
      latencies.push(performance.now() - t0);
      offset += 100;
    }
    latencies.sort((a, b) => a - b);

    // Contention: 8 committers, each rebasing on ABORTED until it lands 5 commits.
    let aborted = 0;
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        for (let landed = 0; landed < 5; ) {
          const current = (await cat.client.getTable({ ref: table.ref })).table!;
          try {
            const req = appendRequest(current, 0, '');
            await cat.client.commitTable({ ...req, job: '', offsets: [] });
            landed++;
          } catch (err) {
            if ((err as { code: number }).code !== status.ABORTED) throw err;
            aborted++;
          }
        }
      }),
    );
    const contendedMs = performance.now() - t0;
    return {
      sequential_commits: COMMITS,
      commit_p50_ms: Number(latencies[Math.floor(COMMITS / 2)].toFixed(2)),
      commit_p95_ms: Number(latencies[Math.floor(COMMITS * 0.95)].toFixed(2)),
      contended_commits: 40,
      contended_commits_per_s: Number((40 / (contendedMs / 1000)).toFixed(1)),
      contended_aborted_attempts: aborted,
    };
  } finally {
    await cat.stop();
  }
}
