/**
 * Backpressure: a transformation that stops acknowledging must not make ingestion buffer the
 * backlog. One million records wait in the broker; the ingestion process (a child, so its RSS
 * is its own) pauses its partitions at the in-flight budget and stays under a fixed bound.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { JobState } from '#shared/gen/sluice/v1/catalog.js';
import { defineJob, spawnIngestion, startIngestionStack, type IngestionStack } from './support/stack.js';
import { waitFor } from '#test-support/wait.js';

const RECORDS = 1_000_000;
const BUDGET = 4 * 1024 * 1024;
/** The stated bound: the process's resident set while the whole backlog waits in Kafka. */
const RSS_BOUND_MB = 300;
/** …and its growth over the same process before the job started. */
const GROWTH_BOUND_MB = 128;

let stack: IngestionStack;
let proc: Awaited<ReturnType<typeof spawnIngestion>> | undefined;

before(async () => {
  stack = await startIngestionStack({ partitions: 2 });
});
after(async () => {
  proc?.client.close();
  proc?.child.kill('SIGKILL');
  await stack?.stop();
});

function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

it(`a 1M-record backlog behind a stalled transformation keeps ingestion under ${RSS_BOUND_MB} MB RSS`, async () => {
  const topic = 'backlog';
  stack.broker.createTopic(topic, 2);
  const value = Buffer.from(JSON.stringify({ id: 123456, name: 'a record of about a hundred bytes', tags: ['x', 'y', 'z'], ok: true }));
  for (let done = 0; done < RECORDS; done += 10_000) {
    const chunk = Array.from({ length: 10_000 }, () => ({ value }));
    stack.broker.append(topic, (done / 10_000) % 2, chunk);
  }
  stack.worker.retainRecords = false;
  stack.worker.holdAcks = true;
  const job = await defineJob(stack.catalog, 'backlog_job', topic);
  proc = await spawnIngestion(stack.env({ INGESTION_IN_FLIGHT_BYTES: String(BUDGET) }));
  const pid = proc.child.pid!;
  await sleep(300);
  const baseline = rssMb(pid);
  await proc.client.startJob({ job });

  // Reading stops on its own: the partitions pause at the budget.
  await waitFor('the first batches', () => stack.worker.received > 0);
  let last = -1;
  await waitFor('reading to stop', async () => {
    const now = stack.worker.received;
    const still = now === last;
    last = now;
    await sleep(500);
    return still;
  });
  let peak = 0;
  for (let i = 0; i < 5; i++) {
    peak = Math.max(peak, rssMb(pid));
    await sleep(200);
  }
  const stalledAt = stack.worker.received;
  assert.ok(stalledAt < RECORDS / 10, `only a budget's worth was read while stalled (${stalledAt} records)`);
  assert.ok(peak < RSS_BOUND_MB, `RSS ${peak.toFixed(0)} MB stays under ${RSS_BOUND_MB} MB`);
  assert.ok(
    peak - baseline < GROWTH_BOUND_MB,
    `RSS grew ${(peak - baseline).toFixed(0)} MB over the idle process, under ${GROWTH_BOUND_MB} MB`,
  );
  const { status } = await proc.client.getJobStatus({ job });
  assert.equal(status!.state, JobState.JOB_STATE_RUNNING);
  assert.ok(status!.partitions.reduce((n, p) => n + p.lag, 0) > RECORDS - stalledAt - 1, 'the backlog shows as lag');

  // Acknowledgements drain the budget and reading resumes.
  stack.worker.releaseAcks();
  await waitFor('reading to resume', () => stack.worker.received > stalledAt);
  process.stdout.write(
    `# memory: stalled at ${stalledAt} records, peak RSS ${peak.toFixed(1)} MB, idle ${baseline.toFixed(1)} MB (bound ${RSS_BOUND_MB} MB, budget ${BUDGET} B)\n`,
  );
});
