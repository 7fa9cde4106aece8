/**
 * Three ingestion instances share one job through its consumer group; one is killed
 * (SIGKILL) mid-run. The real transformation, commit and catalog services write the table.
 * Once the commits land, every produced record is a row of the table exactly once: the
 * committed offsets reach the high watermarks, and reading the current snapshot's Parquet
 * files gives each (wave, partition, index) once and nothing else.
 */
import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { defineMappedJob, duck, snapshotDataFiles, spawnIngestion, startIngestionStack, type IngestionStack } from './support/stack.js';
import { waitFor } from '#test-support/wait.js';

const PARTITIONS = 6;
let stack: IngestionStack;
const procs: Awaited<ReturnType<typeof spawnIngestion>>[] = [];

before(async () => {
  stack = await startIngestionStack({ partitions: PARTITIONS });
});
after(async () => {
  for (const p of procs) {
    p.client.close();
    p.child.kill('SIGKILL');
  }
  await stack?.stop();
});

function produceWave(topic: string, perPartition: number, wave: number): number {
  for (let p = 0; p < PARTITIONS; p++) {
    for (let i = 0; i < perPartition; i += 500) {
      const n = Math.min(500, perPartition - i);
      stack.broker.append(
        topic,
        p,
        Array.from({ length: n }, (_, k) => ({ value: Buffer.from(`{"w":${wave},"p":${p},"i":${i + k}}`) })),
      );
    }
  }
  return perPartition * PARTITIONS;
}

it('three processes, one killed mid-run: nothing lost or duplicated once commits land', async () => {
  const topic = 'shared';
  stack.broker.createTopic(topic, PARTITIONS);
  let produced = produceWave(topic, 3000, 1);
  // Parallelism 3: one stream in each process, so the victim reads when it dies (with the default
  // 1, two of the three processes stand by and the victim may be one of them).
  const job = await defineMappedJob(stack.catalog, 'shared_job', topic, { w: 'int', p: 'int', i: 'int' }, { parallelism: 3 });
  const transformation = await stack.startTransformation();
  // The victim is a child process (SIGKILL); the two survivors run in this process as separate
  // service instances (separate consumers in the group), which keeps the test's start-up short.
  const env = { INGESTION_IN_FLIGHT_BYTES: String(256 * 1024), TRANSFORMATION_ADDRESS: transformation };
  const [victim, a, b] = await Promise.all([spawnIngestion(stack.env(env)), stack.startIngestion(env), stack.startIngestion(env)]);
  procs.push(victim);
  const members = [a.client, victim.client, b.client];
  for (const c of members) await c.startJob({ job });

  const t0 = Date.now();
  // Mid-run: some commits landed, more records keep arriving; then one process dies.
  await waitFor('a first commit', async () => (await stack.catalog.getCommittedOffsets({ job })).offsets.length > 0, { timeoutMs: 30_000 });
  await waitFor('the process to kill to read partitions', async () =>
    (await victim.client.getJobStatus({ job })).status!.partitions.some((p) => p.workerId !== ''),
  );
  produced += produceWave(topic, 2000, 2);
  victim.child.kill('SIGKILL');
  await sleep(500);
  produced += produceWave(topic, 2000, 3);

  const high = Array.from({ length: PARTITIONS }, (_, p) => stack.broker.highWatermark(topic, p));
  await waitFor(
    'commits up to the high watermarks',
    async () => {
      const { offsets } = await stack.catalog.getCommittedOffsets({ job });
      return offsets.length === PARTITIONS && offsets.every((o) => o.nextOffset === high[o.partition]);
    },
    { timeoutMs: 60_000 },
  );
  const convergedMs = Date.now() - t0;
  const files = await snapshotDataFiles(stack.catalog, job);
  const [count] = await duck(`SELECT count(*) AS n, count(DISTINCT (w, p, i)) AS d FROM read_parquet(['${files.join("','")}'])`);
  assert.equal(Number(count.n), produced, 'every record landed');
  assert.equal(Number(count.d), produced, 'no record landed twice');
  const waves = await duck(
    `SELECT w, p, max(i) + 1 AS n, count(*) AS c FROM read_parquet(['${files.join("','")}']) GROUP BY w, p ORDER BY w, p`,
  );
  assert.ok(
    waves.every((r) => Number(r.n) === Number(r.c)),
    'each partition of each wave is complete',
  );
  // The survivors' three streams read every partition between them, each once (a process that
  // reads nothing lists every partition without a worker, so only named streams count).
  const statuses = await Promise.all([a.client, b.client].map(async (c) => (await c.getJobStatus({ job })).status!));
  const reading = statuses.flatMap((s) => s.partitions.filter((part) => part.workerId !== ''));
  assert.deepEqual(
    reading.map((part) => part.partition).sort(),
    Array.from({ length: PARTITIONS }, (_, p) => p),
  );
  assert.equal(new Set(reading.map((part) => part.workerId)).size, 3);
  process.stdout.write(`# kill: ${produced} records, ${files.length} data files, all committed ${convergedMs} ms after the start\n`);
});
