/**
 * Issue 14's replica test: two processes of each of the four services (distinct ports; every
 * peer address lists both) serve one 12-partition job at parallelism 4. One process of each
 * service is killed -9, one service at a time, while records keep arriving; the killed ones stay
 * dead, so the survivors carry the job. For the commit service the killed one is the table's
 * lease holder, so the other must take the table over once the lease runs out.
 *
 * Every record lands exactly once, and the table keeps committing after every kill. The longest
 * gap between commits is measured and printed (it should stay within the lease TTL plus one
 * commit interval plus a rebalance), not asserted: these machines are shared and noisy.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { JobState, StartFrom } from '#shared/gen/sluice/v1/catalog.js';
import { CommittedEvent } from '#shared/gen/sluice/v1/events.js';
import { MessageFormat, MessageMode } from '#shared/gen/sluice/v1/types.js';
import { subjects } from '#shared/events.js';
import { connectNats, subscribe } from '#shared/nats.js';
import { field, flattenMapping, job, source, tableRequest } from '#test-support/builders.js';
import { currentSnapshotFiles, duckdbRows, parquetFrom } from '#test-support/lake.js';
import { printLogsOnFailure, startMesh, type ServiceName, type TestMesh } from '#test-support/mesh.js';
import { NATS_URL } from '#test-support/nats.js';
import { waitFor } from '#test-support/wait.js';

const PARTITIONS = 12;
const PARALLELISM = 4;
const RECORDS = Number(process.env.E2E_REPLICA_RECORDS ?? 48_000);
assert.ok(Number.isInteger(RECORDS / PARTITIONS), 'E2E_REPLICA_RECORDS must be a multiple of the partition count');
const WAVES = 120;
const WAVE_GAP_MS = 250;
const LEASE_TTL_MS = 5000;
const COMMIT_INTERVAL_MS = 1000;
const CONVERGE_TIMEOUT_MS = 180_000;
/** The order of the kills: the data path first, then the control plane. */
const KILLS: ServiceName[] = ['transformation', 'commit', 'ingestion', 'catalog'];

const suffix = randomBytes(4).toString('hex');
const ref = { database: `rp_${suffix}`, table: 'events' };
const topic = `rp-${suffix}`;
const jobName = `rp_${suffix}`;

let mesh: TestMesh | undefined;
printLogsOnFailure(() => mesh);

before(async () => {
  mesh = await startMesh({
    partitions: PARTITIONS,
    replicas: 2,
    env: { COMMIT_LEASE_TTL_MS: String(LEASE_TTL_MS), INGESTION_JOB_SYNC_MS: '1000' },
  });
});
after(async () => {
  await mesh?.stop();
});

async function defineJob(m: TestMesh): Promise<void> {
  await m.catalog.createDatabase({ name: ref.database, location: '', properties: {} });
  const columns = [
    field(1, 'topic', 'string'),
    field(2, 'partition', 'int'),
    field(3, 'offset', 'long'),
    field(4, 'p', 'int'),
    field(5, 'i', 'long'),
  ];
  await m.catalog.createTable(tableRequest(ref, columns));
  await m.catalog.createSource({
    source: source(jobName, topic, { format: MessageFormat.MESSAGE_FORMAT_JSON, mode: MessageMode.MESSAGE_MODE_VALUE }),
  });
  await m.catalog.createJob({
    job: job(jobName, jobName, ref, {
      mapping: flattenMapping({ format: MessageFormat.MESSAGE_FORMAT_JSON, includeFixedColumns: true }),
      start: { from: StartFrom.START_FROM_EARLIEST },
      commitIntervalMs: COMMIT_INTERVAL_MS,
      parallelism: PARALLELISM,
      state: JobState.JOB_STATE_CREATED,
    }),
  });
}

/** Appends RECORDS records in WAVES waves over every partition; each record says where it belongs. */
async function produce(m: TestMesh): Promise<void> {
  const perPartition = RECORDS / PARTITIONS;
  const perWave = Math.ceil(perPartition / WAVES);
  for (let first = 0; first < perPartition; first += perWave) {
    const n = Math.min(perWave, perPartition - first);
    for (let p = 0; p < PARTITIONS; p++)
      m.broker.append(
        topic,
        p,
        Array.from({ length: n }, (_, k) => ({ value: Buffer.from(`{"p":${p},"i":${first + k}}`) })),
      );
    await sleep(WAVE_GAP_MS);
  }
}

const highWatermarks = (m: TestMesh) => Array.from({ length: PARTITIONS }, (_, p) => m.broker.highWatermark(topic, p));

async function committedTotal(m: TestMesh): Promise<number> {
  const { offsets } = await m.catalog.getCommittedOffsets({ job: jobName });
  return offsets.reduce((sum, o) => sum + Number(o.nextOffset), 0);
}

/** Which commit process holds the table's lease: its index in the mesh, from the lease's recorded address. */
async function leaseHolder(m: TestMesh): Promise<number> {
  const client = new pg.Client({ connectionString: m.db.url });
  await client.connect();
  try {
    const { rows } = await client.query<{ address: string }>('SELECT address FROM catalog.commit_leases WHERE expires_at_ms > $1', [
      Date.now(),
    ]);
    const held = new Set(rows.map((r) => r.address));
    const index = m.addresses.commit.split(',').findIndex((a) => held.has(a));
    assert.ok(index >= 0, `a commit process holds the lease (leases: ${JSON.stringify(rows)})`);
    return index;
  } finally {
    await client.end();
  }
}

/** Kills one process of each service in turn; after each, the table must commit again. */
async function killOneOfEach(m: TestMesh, t0: number, log: string[]): Promise<void> {
  for (const name of KILLS) {
    await sleep(3000);
    const replica = name === 'commit' ? await leaseHolder(m) : 0;
    const killedAt = Date.now();
    await m.kill(name, replica);
    const mark = await committedTotal(m);
    const total = () => highWatermarks(m).reduce((a, b) => a + b, 0);
    await waitFor(
      `a commit after ${name}#${replica + 1} was killed`,
      async () => {
        const committed = await committedTotal(m);
        return committed > mark || committed === total();
      },
      { timeoutMs: CONVERGE_TIMEOUT_MS, intervalMs: 250 },
    );
    log.push(`${name}#${replica + 1} at ${((killedAt - t0) / 1000).toFixed(1)} s, committing again after ${Date.now() - killedAt} ms`);
  }
}

it(`${RECORDS} records over ${PARTITIONS} partitions land exactly once on two replicas of every service, one of each killed -9`, async () => {
  const m = mesh!;
  m.broker.createTopic(topic, PARTITIONS);
  await defineJob(m);

  // Every commit of the table, as the coordinators announce them.
  const nats = await connectNats(NATS_URL, 'replicas-test');
  const commits: number[] = [];
  const sub = subscribe(
    nats,
    subjects.committed(ref),
    (payload) => {
      if (CommittedEvent.decode(payload).offsets.length > 0) commits.push(Date.now());
    },
    (err) => assert.fail(`bad CommittedEvent: ${(err as Error).message}`),
  );

  try {
    const t0 = Date.now();
    await m.ingestion.startJob({ job: jobName });
    const kills: string[] = [];
    await Promise.all([produce(m), killOneOfEach(m, t0, kills)]);

    const high = highWatermarks(m);
    assert.equal(
      high.reduce((a, b) => a + b, 0),
      RECORDS,
    );
    await waitFor(
      'the committed offsets to reach the high watermarks',
      async () => {
        const { offsets } = await m.catalog.getCommittedOffsets({ job: jobName });
        return offsets.length === PARTITIONS && offsets.every((o) => o.nextOffset === high[o.partition]);
      },
      { timeoutMs: CONVERGE_TIMEOUT_MS, intervalMs: 250 },
    );
    const convergedMs = Date.now() - t0;

    const { files } = await currentSnapshotFiles(m.catalog, ref);
    const from = parquetFrom(files);
    const [totals] = await duckdbRows<{ rows: number; distinct_positions: number; mismatched: number }>(
      `SELECT count(*)::INT AS rows, count(DISTINCT ("partition", "offset"))::INT AS distinct_positions,
              count(*) FILTER (WHERE "partition" <> p OR "offset" <> i)::INT AS mismatched
       FROM ${from}`,
    );
    assert.equal(totals.rows, RECORDS, 'row count');
    assert.equal(totals.distinct_positions, RECORDS, 'no (partition, offset) twice');
    assert.equal(totals.mismatched, 0, 'each row is the record at its (partition, offset)');

    const gaps = commits.slice(1).map((at, i) => at - commits[i]);
    const longestGap = Math.max(0, ...gaps);
    process.stdout.write(
      `# replicas: ${RECORDS} records, ${PARTITIONS} partitions, parallelism ${PARALLELISM}, 2 processes per service; ` +
        `${commits.length} commits, longest gap between commits ${longestGap} ms (lease TTL ${LEASE_TTL_MS} ms + interval ${COMMIT_INTERVAL_MS} ms); ` +
        `all committed ${convergedMs} ms after the start\n# kills: ${kills.join('; ')}\n`,
    );
  } finally {
    sub.unsubscribe();
    await nats.drain();
  }
});
