/**
 * Commit coordinator: the cost of admission and round readiness under backlog (pure), and
 * whole flush rounds against the real catalog, PostgreSQL and NATS (FlushEvent → reports
 * over gRPC → manifests, manifest list, CommitTable → CommittedEvent).
 */
import { performance } from 'node:perf_hooks';
import type { DataFile } from '#shared/gen/sluice/v1/types.js';
import { admitReports, OffsetLedger } from '../services/commit/src/offsets.js';
import { FlushRound } from '../services/commit/src/round.js';
import { events, heartbeat, range, startCommitStack, waitForWorkers } from '../services/commit/test/harness.js';

function admissionBench(reports: number, partitions: number) {
  const list = Array.from({ length: reports }, (_, i) => {
    const p = i % partitions;
    const k = Math.floor(i / partitions);
    return { offsets: [range(p, k * 100, (k + 1) * 100)] };
  });
  const t0 = performance.now();
  const result = admitReports(OffsetLedger.empty(), list);
  const ms = performance.now() - t0;
  if (result.admitted.length !== reports) throw new Error('admission bench: not all admitted');
  return { reports, partitions, ms: Math.round(ms), reportsPerSec: Math.round(reports / (ms / 1000)) };
}

function readinessBench(workers: number) {
  const ids = Array.from({ length: workers }, (_, i) => `w${i}`);
  const round = new FlushRound('f', 0, ids, 'bench');
  const t0 = performance.now();
  for (const id of ids) {
    round.reported(id);
    if (round.complete !== (id === ids[ids.length - 1])) throw new Error('readiness bench: wrong completion');
  }
  const ms = performance.now() - t0;
  return { workers, ms: Number(ms.toFixed(2)), nsPerReport: Math.round((ms * 1e6) / workers) };
}

async function roundsBench(rounds: number, workers: number, filesPerReport: number) {
  const mesh = await startCommitStack();
  try {
    const job = `${mesh.database}_bench`;
    const ref = await mesh.createTable('bench', { job });
    const coord = await mesh.startCoordinator({ flushTimeoutMs: 10_000 });
    const { table } = await mesh.catalog.getTable({ ref });
    const committed = events.committed(mesh, ref);
    await new Promise((r) => setTimeout(r, 50));
    for (let w = 0; w < workers; w++) heartbeat(mesh, ref, job, `w${w}`);
    await waitForWorkers(coord, ref, job, workers);
    // Metadata-only files: the commit path never opens data files, so their bytes do not matter here.
    const file = (w: number, r: number, i: number): DataFile => ({
      filePath: `${table!.location}/data/part=p${w}/${r}-${i}.parquet`,
      fileFormat: 'parquet',
      specId: 0,
      partition: [{ fieldId: 1000, name: 'part', value: { kind: { $case: 'stringValue', value: `p${w}` } } }],
      recordCount: 1000,
      fileSizeInBytes: 50_000,
      columnStats: [],
      splitOffsets: [],
    });
    const latencies: number[] = [];
    const t0 = performance.now();
    for (let r = 0; r < rounds; r++) {
      const start = performance.now();
      const { flushId } = await coord.client.triggerFlush({ table: ref, job });
      await Promise.all(
        Array.from({ length: workers }, (_, w) =>
          coord.client.reportDataFiles({
            flushId,
            table: ref,
            job,
            workerId: `w${w}`,
            files: Array.from({ length: filesPerReport }, (_, i) => file(w, r, i)),
            offsets: [range(w, r * 1000, (r + 1) * 1000)],
            recordCount: 1000 * filesPerReport,
            errorCounts: [],
          }),
        ),
      );
      await committed.next((e) => e.flushId === flushId, 30_000);
      latencies.push(performance.now() - start);
    }
    const totalMs = performance.now() - t0;
    committed.stop();
    const sorted = [...latencies].sort((a, b) => a - b);
    const pct = (p: number) => Math.round(sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]);
    return {
      rounds,
      workers,
      filesPerReport,
      roundsPerSec: Number((rounds / (totalMs / 1000)).toFixed(1)),
      p50Ms: pct(0.5),
      p95Ms: pct(0.95),
      firstMs: Math.round(latencies[0]),
      lastMs: Math.round(latencies[latencies.length - 1]),
    };
  } finally {
    await mesh.stop();
  }
}

export default async function run(): Promise<Record<string, unknown>> {
  return {
    admission: admissionBench(200_000, 64),
    readiness: readinessBench(100_000),
    rounds: await roundsBench(100, 4, 5),
  };
}
