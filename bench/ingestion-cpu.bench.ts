/**
 * Ingestion's CPU per record, the service on its own: the compiled ingestion service as its own
 * process (as the pipeline runs it, with its heap flags) reads a topic of the pipeline bench's
 * narrow or wide records (bench/pipeline/records.ts) from the dev broker and sends them to the
 * recording transformation worker, which acknowledges at once; the catalog and commit services
 * run around it. The broker, the worker and the other services run in this process, so what is
 * measured is ingestion's alone: the fetch path, the batch encoder, gRPC and the collector.
 *
 * Per shape, best of BENCH_INGESTION_CPU_RUNS jobs (each in a fresh ingestion process, the
 * shapes interleaved), from the job's start until the worker has every record:
 * - cpu_us_per_record: the ingestion process's CPU, all threads (the collector's helpers too),
 *   from /proc, per record;
 * - main_us_per_record: its main thread's alone.
 *
 * Run alone: `npm run build && npm run bench -- ingestion-cpu` (BENCH_INGESTION_CPU_RECORDS,
 * BENCH_INGESTION_CPU_RUNS to change them). Needs PostgreSQL and NATS, as the tests do.
 */
import { IngestionServiceService } from '#shared/gen/sluice/v1/ingestion.js';
import { createClient } from '#shared/grpc/client.js';
import { waitFor } from '#test-support/wait.js';
import { defineJob, type IngestionStack, spawnIngestion, startIngestionStack } from '../services/ingestion/test/support/stack.js';
import { mainThreadCpuSeconds, sampleProc } from './pipeline/procfs.js';
import { SHAPES } from './pipeline/records.js';

const RECORDS = Number(process.env.BENCH_INGESTION_CPU_RECORDS ?? 300_000);
const RUNS = Number(process.env.BENCH_INGESTION_CPU_RUNS ?? 3);
const PARTITIONS = 3; // as the pipeline bench
const SHAPE_NAMES = ['narrow', 'wide'] as const;

interface Run {
  cpuSeconds: number;
  mainSeconds: number;
}

let jobs = 0;

/** One job over `topic` in a fresh ingestion process: its CPU from the job's start to the last record. */
async function runJob(stack: IngestionStack, topic: string): Promise<Run> {
  const { child, address } = await spawnIngestion(stack.env());
  try {
    const client = createClient(IngestionServiceService, address, { deadlineMs: 30_000 });
    const job = await defineJob(stack.catalog, `cpu_${++jobs}`, topic);
    const received = stack.worker.received;
    const cpu = sampleProc(child.pid!)!.cpuSeconds;
    const main = mainThreadCpuSeconds(child.pid!)!;
    await client.startJob({ job });
    await waitFor('every record', () => stack.worker.received - received >= RECORDS, { timeoutMs: 600_000, intervalMs: 20 });
    const run = { cpuSeconds: sampleProc(child.pid!)!.cpuSeconds - cpu, mainSeconds: mainThreadCpuSeconds(child.pid!)! - main };
    await client.stopJob({ job }).catch(() => {});
    return run;
  } finally {
    child.kill('SIGTERM');
    if (child.exitCode === null) await new Promise((resolve) => child.once('exit', resolve));
  }
}

export default async function run(): Promise<Record<string, unknown>> {
  const stack = await startIngestionStack({ partitions: PARTITIONS });
  try {
    stack.worker.retainRecords = false;
    for (const name of SHAPE_NAMES) {
      stack.broker.createTopic(name, PARTITIONS);
      for (let sent = 0, p = 0; sent < RECORDS; sent += 2000, p = (p + 1) % PARTITIONS) {
        const values = Array.from({ length: Math.min(2000, RECORDS - sent) }, (_, i) => ({ value: SHAPES[name].record(sent + i) }));
        stack.broker.append(name, p, values);
      }
    }
    const best = new Map<string, Run>();
    for (let r = 0; r < RUNS; r++)
      for (const name of SHAPE_NAMES) {
        const run = await runJob(stack, name);
        if (!best.has(name) || run.cpuSeconds < best.get(name)!.cpuSeconds) best.set(name, run);
      }
    const perRecord = (seconds: number) => Number(((seconds * 1e6) / RECORDS).toFixed(2));
    return Object.fromEntries(
      [...best].map(([name, b]) => [
        name,
        { records: RECORDS, cpu_us_per_record: perRecord(b.cpuSeconds), main_us_per_record: perRecord(b.mainSeconds) },
      ]),
    );
  } finally {
    await stack.stop();
  }
}
