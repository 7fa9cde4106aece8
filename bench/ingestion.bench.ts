// Ingestion throughput: records from the dev broker through one ingestion job onto the
// Transform stream (a recording worker that acknowledges at once), with the real catalog and
// commit services around it; plus the pure batch planner on its own (window filter + covers).
import { planBatch } from '../services/ingestion/src/coverage.js';
import { defineJob, startIngestionStack } from '../services/ingestion/test/support/stack.js';
import { waitFor } from '#test-support/wait.js';

const RECORDS = Number(process.env.INGESTION_BENCH_RECORDS ?? 200_000);
const PARTITIONS = 4;
const VALUE = Buffer.from(
  JSON.stringify({ id: 1234567, user: 'someone@example.com', page: '/products/42', ms: 1700000000000, ok: true }).padEnd(200, ' '),
);

async function pipeline(): Promise<Record<string, number>> {
  const stack = await startIngestionStack({ partitions: PARTITIONS });
  try {
    stack.broker.createTopic('bench', PARTITIONS);
    for (let sent = 0, p = 0; sent < RECORDS; sent += 1000, p = (p + 1) % PARTITIONS) {
      stack.broker.append(
        'bench',
        p,
        Array.from({ length: Math.min(1000, RECORDS - sent) }, () => ({ value: VALUE })),
      );
    }
    stack.worker.retainRecords = false;
    const { client } = await stack.startIngestion({ INGESTION_IN_FLIGHT_BYTES: String(32 << 20) });
    const job = await defineJob(stack.catalog, 'bench_job', 'bench');
    const started = performance.now();
    await client.startJob({ job });
    await waitFor('every record', () => stack.worker.received >= RECORDS, { timeoutMs: 600_000 });
    const ms = performance.now() - started;
    await client.stopJob({ job });
    return {
      records: RECORDS,
      record_bytes: VALUE.length,
      ms: Math.round(ms),
      records_per_s: Math.round(RECORDS / (ms / 1000)),
      mb_per_s: Number(((RECORDS * VALUE.length) / (1 << 20) / (ms / 1000)).toFixed(1)),
    };
  } finally {
    await stack.stop();
  }
}

function planner(): Record<string, number> {
  const count = 10_000;
  const messages = {
    count,
    offsets: Float64Array.from({ length: count }, (_, i) => i),
    timestamps: Float64Array.from({ length: count }, (_, i) => 1000 + ((i * 7919) % 5000)),
    picked: new Int32Array(count),
  };
  const window = { startTimeMs: 2000, endTimeMs: 5000 };
  const rounds = 200;
  let kept = 0;
  const started = performance.now();
  for (let r = 0; r < rounds; r++) kept += planBatch(0, { endOffset: null, closeAtMs: null, window }, messages, count).send.length;
  const ms = performance.now() - started;
  return {
    planner_records_per_s: Math.round((rounds * count) / (ms / 1000)),
    planner_kept_ratio: Number((kept / (rounds * count)).toFixed(3)),
  };
}

export default async function run(): Promise<Record<string, unknown>> {
  return { ...planner(), ...(await pipeline()) };
}
