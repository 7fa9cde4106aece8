/**
 * Issue 13: Sluice end to end against real Apache Kafka. The four services run as processes
 * (test/support/mesh.ts with kafkaBrokers: no dev broker anywhere), jobs are created from job
 * specs with the `sluice` CLI as a user would, records are produced with kafkajs (plain and
 * transactional), and every scenario ends with the table holding exactly the expected records,
 * each once, and the catalog's committed offsets at the end of the partition.
 *
 * One Kafka and one mesh for the file; each scenario has its own topic, table and job.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { CompressionTypes, type Producer } from 'kafkajs';
import { JobState } from '#shared/gen/sluice/v1/catalog.js';
import { IngestionServiceService } from '#shared/gen/sluice/v1/ingestion.js';
import { createClient } from '#shared/grpc/client.js';
import { type RealKafka, startKafka } from '#test-support/kafka.js';
import { printLogsOnFailure, SERVICE_NAMES, type ServiceName, startMesh, type TestMesh } from '#test-support/mesh.js';
import { waitFor } from '#test-support/wait.js';
import { COMPACT_NOW, consumeCount, kcat, readAll, SEGMENT_ROLL_WAIT_MS, stableAt } from './helpers.js';
import { runSluiceJson } from '#test-support/cli.js';

const run = randomBytes(3).toString('hex');
/** Record timestamps an hour back, whole seconds: exact expectations, and retention keeps them. */
const T = Math.floor(Date.now() / 1000) * 1000 - 3_600_000;
const COMMIT_TIMEOUT_MS = 90_000;

let kafka: RealKafka | undefined;
let mesh: TestMesh<undefined> | undefined;
let producer: Producer;
printLogsOnFailure(() => mesh as TestMesh | undefined);

before(async () => {
  kafka = await startKafka();
  process.stdout.write(`# Apache Kafka started in ${kafka.startMs} ms, RSS ${(kafka.rssBytes() / 2 ** 20).toFixed(0)} MiB\n`);
  mesh = await startMesh({ kafkaBrokers: kafka.brokers });
  producer = kafka.client('interop-producer').producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
});
after(async () => {
  try {
    await producer?.disconnect().catch(() => {});
    await mesh?.stop();
  } finally {
    if (kafka) process.stdout.write(`# Apache Kafka RSS at the end: ${(kafka.rssBytes() / 2 ** 20).toFixed(0)} MiB\n`);
    await kafka?.remove();
  }
});

// ------------------------------------------------------------------ helpers

interface Row {
  id: number;
  v: string | null;
  partition: number;
  offset: number;
}

/** One `sluice … --json` process against the mesh; its parsed output. */
const sluice = <T = unknown>(...args: string[]): Promise<T> => runSluiceJson<T>(mesh!.clientEnv, ...args);

interface SpecOptions {
  /** YAML of source.startFrom (default earliest). */
  startFrom?: string;
  /** source.offsetReset: fail (default) | earliest. */
  offsetReset?: string;
  /** YAML of the window block, indented by two. */
  window?: string;
  /** YAML of the errors block, indented by two. */
  errors?: string;
  /** The job's parallelism (default 1). */
  parallelism?: number;
}

/** A job spec as a user writes it: the record's id and v, plus the topic/partition/offset columns. */
function jobSpec(name: string, topic: string, o: SpecOptions = {}): string {
  return `name: ${name}
source:
  name: ${name}
  topic: ${topic}
  format: JSON
${o.window ? '' : `  startFrom: ${o.startFrom ?? 'earliest'}\n`}${o.offsetReset ? `  offsetReset: ${o.offsetReset}\n` : ''}table:
  database: ${name.replace(/-/g, '_')}
  name: events
  columns:
    - { name: id, type: long, required: true }
    - { name: v, type: string }
    - { name: topic, type: string }
    - { name: partition, type: int }
    - { name: offset, type: long }
mapping:
  flattenLevel: 1
  includeFixedColumns: true
commit:
  intervalMs: 1000
${o.window ? `window:\n${o.window}\n` : ''}${o.errors ? `errors:\n${o.errors}\n` : ''}${o.parallelism ? `parallelism: ${o.parallelism}\n` : ''}`;
}

/** Creates and starts a job from its spec with `sluice job create -f … --start`. */
async function startJob(name: string, topic: string, o: SpecOptions = {}): Promise<string> {
  const file = join(mesh!.dir, `${name}.yaml`);
  await writeFile(file, jobSpec(name, topic, o));
  const status = await sluice<{ state: string }>('job', 'create', '-f', file, '--start');
  assert.equal(status.state, 'JOB_STATE_RUNNING');
  return name;
}

/** The job's table, by id, through `sluice query`. */
async function rows(job: string): Promise<Row[]> {
  const db = job.replace(/-/g, '_');
  const res = await sluice<{ rows: Row[] }>(
    'query',
    `SELECT id, v, "partition", "offset" FROM ${db}.events ORDER BY id, "partition", "offset"`,
  );
  return res.rows;
}

const ids = (rs: Row[]) => rs.map((r) => r.id);

/** Waits until the catalog's committed next offsets of the job are exactly `expected` (partition → offset). */
async function committed(job: string, expected: Record<number, number>): Promise<void> {
  let last = '';
  try {
    await waitFor(
      `job ${job} to commit up to ${JSON.stringify(expected)}`,
      async () => {
        mesh!.assertNoCrash();
        const { offsets } = await mesh!.catalog.getCommittedOffsets({ job });
        const got = Object.fromEntries(offsets.map((o) => [o.partition, o.nextOffset]));
        last = JSON.stringify(got);
        return Object.entries(expected).every(([p, n]) => got[Number(p)] === n);
      },
      { timeoutMs: COMMIT_TIMEOUT_MS, intervalMs: 250 },
    );
  } catch (err) {
    const { status } = await mesh!.ingestion.getJobStatus({ job }).catch(() => ({ status: undefined }));
    throw new Error(`${(err as Error).message}; committed ${last}; status ${JSON.stringify(status)}`, { cause: err });
  }
}

async function jobState(job: string): Promise<JobState> {
  return (await mesh!.catalog.getJob({ name: job })).job!.state;
}

/** Waits until the catalog shows the job in `state` (FINISHED, FAILED). */
async function untilState(job: string, state: JobState, timeoutMs = COMMIT_TIMEOUT_MS): Promise<void> {
  await waitFor(`job ${job} to be ${state}`, async () => (await jobState(job)) === state, { timeoutMs, intervalMs: 250 });
}

const record = (partition: number, id: number, timestamp?: number, v = `v${id}`) => ({
  partition,
  value: JSON.stringify({ id, v }),
  ...(timestamp === undefined ? {} : { timestamp: String(timestamp) }),
});

/** "YYYY-MM-DD HH:MM:SS" of an instant on a zone's wall clock. */
function wallClock(ms: number, timeZone: string): string {
  return new Intl.DateTimeFormat('sv-SE', { timeZone, dateStyle: 'short', timeStyle: 'medium' }).format(new Date(ms));
}

// ------------------------------------------------------------------ scenarios

describe('start positions', () => {
  it('earliest, latest, a timestamp in a time zone, and explicit offsets each land exactly their records', async () => {
    const topic = `starts-${run}`;
    await kafka!.createTopic(topic, { partitions: 2 });
    // id = partition * 100 + i, timestamps T + i s.
    for (const p of [0, 1])
      await producer.send({ topic, acks: -1, messages: Array.from({ length: 10 }, (_, i) => record(p, p * 100 + i, T + i * 1000)) });

    const earliest = await startJob(`earliest-${run}`, topic);
    const latest = await startJob(`latest-${run}`, topic, { startFrom: 'latest' });
    // T + 5 s on Shanghai's wall clock (UTC+8): records 5..9 of each partition.
    const at = wallClock(T + 5000, 'Asia/Shanghai');
    const byTime = await startJob(`bytime-${run}`, topic, { startFrom: `{ timestamp: "${at}", timeZone: Asia/Shanghai }` });
    const byOffsets = await startJob(`offsets-${run}`, topic, { startFrom: '{ offsets: { 0: 7, 1: 2 } }' });

    // "latest" means the end when the job resolved its start: wait for that before producing more.
    await waitFor(
      'the latest job to resolve its start at offset 10 on both partitions',
      async () => {
        const { status } = await mesh!.ingestion.getJobStatus({ job: latest });
        return status?.partitions.length === 2 && status.partitions.every((p) => p.position === 10);
      },
      { timeoutMs: 60_000, intervalMs: 100 },
    );
    for (const p of [0, 1])
      await producer.send({ topic, acks: -1, messages: [10, 11, 12].map((i) => record(p, p * 100 + i, T + i * 1000)) });

    for (const job of [earliest, latest, byTime, byOffsets]) await committed(job, { 0: 13, 1: 13 });
    const all = (from: number, p: number) => Array.from({ length: 13 - from }, (_, k) => p * 100 + from + k);
    assert.deepEqual(ids(await rows(earliest)), [...all(0, 0), ...all(0, 1)]);
    assert.deepEqual(ids(await rows(latest)), [...all(10, 0), ...all(10, 1)]);
    assert.deepEqual(ids(await rows(byTime)), [...all(5, 0), ...all(5, 1)]);
    assert.deepEqual(ids(await rows(byOffsets)), [...all(7, 0), ...all(2, 1)]);
    // Each row is the record at its (partition, offset).
    for (const r of await rows(earliest)) assert.deepEqual([r.partition, r.offset], [Math.floor(r.id / 100), r.id % 100]);
    // Kafka's own lag tool sees the job's group at the committed offsets (written after each commit).
    await waitFor(
      'kafka-consumer-groups to show the earliest job at offset 13 with no lag on both partitions',
      async () => {
        const out = await kafka!.tool('org.apache.kafka.tools.consumer.group.ConsumerGroupCommand', [
          '--bootstrap-server',
          kafka!.brokers,
          '--describe',
          '--group',
          `sluice-${earliest}`,
        ]);
        const lines = out.split('\n').map((l) => l.trim().split(/\s+/));
        const byPartition = lines.filter((f) => f[1] === topic).map(([, , p, current, end, lag]) => `${p}:${current}/${end} lag ${lag}`);
        return byPartition.sort().join(', ') === '0:13/13 lag 0, 1:13/13 lag 0';
      },
      { timeoutMs: 60_000, intervalMs: 500 },
    );
  });
});

describe('bounded window', () => {
  /**
   * Out-of-order timestamps on two partitions (delays after T in ms; id = partition * 100 +
   * offset) read by a job with the window [T + 10 s, T + 20 s) in Europe/Paris plus `completion`
   * (YAML lines of the window block); resolves with the job once it is FINISHED.
   */
  async function finishedWindowJob(name: string, completion: string[] = []): Promise<string> {
    const topic = `${name}-${run}`;
    await kafka!.createTopic(topic, { partitions: 2 });
    const p0 = [5000, 9000, 12000, 8000, 15000, 19999, 10000, 21000, 13000, 30000];
    const p1 = [10000, 20000, 11000];
    await producer.send({ topic, acks: -1, messages: p0.map((d, i) => record(0, i, T + d)) });
    await producer.send({ topic, acks: -1, messages: p1.map((d, i) => record(1, 100 + i, T + d)) });
    const zone = 'Europe/Paris';
    const job = await startJob(`${name}-${run}`, topic, {
      window: [
        `  start: "${wallClock(T + 10_000, zone)}"`,
        `  end: "${wallClock(T + 20_000, zone)}"`,
        `  timeZone: ${zone}`,
        ...completion.map((line) => `  ${line}`),
      ].join('\n'),
    });
    await untilState(job, JobState.JOB_STATE_FINISHED);
    return job;
  }

  it('out-of-order timestamps: exactly the records between the resolved offsets inside the window, then FINISHED', async () => {
    const job = await finishedWindowJob('window');
    // p0: start at offset 2 (first >= 10 s), end at offset 7 (first >= 20 s); offset 3 (8 s) is outside.
    assert.deepEqual(ids(await rows(job)), [2, 4, 5, 6, 100]);
    const { status } = await mesh!.ingestion.getJobStatus({ job });
    assert.equal(status?.rowsOut, 5);
    assert.equal(status?.recordsExcluded, 1);
  });

  it('the same under completion idle: every in-window record, wherever it sits, then FINISHED once the topic is idle', async () => {
    const job = await finishedWindowJob('window-idle', ['completion: idle', 'idleTimeoutMs: 3000']);
    // Reading runs past the first record at or after the end: offset 8 (13 s) after offset 7 (21 s) lands too.
    assert.deepEqual(ids(await rows(job)), [2, 4, 5, 6, 8, 100, 102]);
    const { status } = await mesh!.ingestion.getJobStatus({ job });
    assert.equal(status?.rowsOut, 7);
  });
});

describe('transactional producer', () => {
  let txProducer: Producer;
  before(async () => {
    txProducer = kafka!
      .client('interop-tx')
      .producer({ transactionalId: `sluice-interop-${run}`, idempotent: true, maxInFlightRequests: 1 });
    await txProducer.connect();
  });
  after(async () => {
    await txProducer?.disconnect();
  });
  const inTransaction = async (topic: string, messages: ReturnType<typeof record>[], end: 'commit' | 'abort' | 'open') => {
    const tx = await txProducer.transaction();
    await tx.send({ topic, messages });
    if (end === 'commit') await tx.commit();
    if (end === 'abort') await tx.abort();
    return tx;
  };

  it('a continuous job: aborted records never land, committed ones do once, and commits reach the end past the markers', async () => {
    const topic = `txn-${run}`;
    await kafka!.createTopic(topic, { partitions: 1 });
    await inTransaction(topic, [record(0, 1), record(0, 2)], 'commit'); // 0, 1, marker 2
    await inTransaction(topic, [record(0, 3), record(0, 4)], 'abort'); // 3, 4, marker 5
    await inTransaction(topic, [record(0, 5)], 'commit'); // 6, marker 7
    const job = await startJob(`txn-${run}`, topic);
    await stableAt(await kafka!.admin(), topic, 8);
    await committed(job, { 0: 8 });
    assert.deepEqual(ids(await rows(job)), [1, 2, 5]);

    // A transaction left open holds the last stable offset; the job waits at it, then takes
    // its records once it commits.
    const open = await inTransaction(topic, [record(0, 6)], 'open'); // 8
    await producer.send({ topic, acks: -1, messages: [record(0, 7)] }); // 9
    await open.commit(); // marker 10
    await producer.send({ topic, acks: -1, messages: [record(0, 8)] }); // 11
    await stableAt(await kafka!.admin(), topic, 12);
    await committed(job, { 0: 12 });
    assert.deepEqual(ids(await rows(job)), [1, 2, 5, 6, 7, 8]);
  });

  it('a bounded job over transactions (records stamped as produced) FINISHES with the committed records only', async () => {
    const topic = `txn-bounded-${run}`;
    await kafka!.createTopic(topic, { partitions: 1 });
    const from = Date.now() - 60_000;
    await inTransaction(topic, [record(0, 1), record(0, 2)], 'commit'); // 0, 1, marker 2
    await inTransaction(topic, [record(0, 3)], 'abort'); // 3, marker 4
    await inTransaction(topic, [record(0, 4)], 'commit'); // 5, marker 6: the topic ends with a marker
    await stableAt(await kafka!.admin(), topic, 7);
    // The window ends after every record and marker, and has passed: no record lies past its end,
    // so the partition ends at the high watermark it was read to, past the last marker.
    const job = await startJob(`txn-bounded-${run}`, topic, { window: `  start: ${from}\n  end: ${Date.now() + 1}` });
    await untilState(job, JobState.JOB_STATE_FINISHED);
    assert.deepEqual(ids(await rows(job)), [1, 2, 4]);
    await committed(job, { 0: 7 });
  });

  // Kafka's ListOffsets(window end) would answer marker 2 (markers are stamped with the broker's clock,
  // long after the records): the end is found by reading records, which never include markers.
  it('a bounded job whose window ends before the transaction markers keeps the committed records after the first marker', async () => {
    const topic = `txn-window-${run}`;
    await kafka!.createTopic(topic, { partitions: 1 });
    await inTransaction(topic, [record(0, 1, T + 1000), record(0, 2, T + 2000)], 'commit'); // 0, 1, marker 2 (stamped now)
    await inTransaction(topic, [record(0, 3, T + 3000)], 'abort'); // 3, marker 4
    await inTransaction(topic, [record(0, 4, T + 4000)], 'commit'); // 5, marker 6
    await stableAt(await kafka!.admin(), topic, 7);
    const job = await startJob(`txn-window-${run}`, topic, { window: `  start: ${T}\n  end: ${T + 60_000}` });
    await untilState(job, JobState.JOB_STATE_FINISHED);
    assert.deepEqual(ids(await rows(job)), [1, 2, 4]);
    await committed(job, { 0: 7 });
  });

  it('a continuous job starting from a timestamp starts at the first record at or after it, whatever the markers say', async () => {
    const topic = `txn-start-${run}`;
    await kafka!.createTopic(topic, { partitions: 1 });
    await inTransaction(topic, [record(0, 1, T + 1000), record(0, 2, T + 2000)], 'commit'); // 0, 1, marker 2 (stamped now)
    await inTransaction(topic, [record(0, 3, T + 3000)], 'commit'); // 3, marker 4
    await stableAt(await kafka!.admin(), topic, 5);
    // No record is stamped at or after T + 5 s yet: the job starts at the end, and takes what comes next.
    const job = await startJob(`txn-start-${run}`, topic, { startFrom: `{ timestamp: ${T + 5000} }` });
    await waitFor(
      'the job to resolve its start',
      async () => (await mesh!.ingestion.getJobStatus({ job })).status?.partitions.length === 1,
      { timeoutMs: 60_000, intervalMs: 100 },
    );
    await producer.send({ topic, acks: -1, messages: [record(0, 4, T + 6000)] }); // 5
    await committed(job, { 0: 6 });
    assert.deepEqual(ids(await rows(job)), [4]);
  });
});

describe('compressed topics', () => {
  // kcat's librdkafka (2.0.2 here) compresses with gzip, snappy or lz4 only where the broker
  // still speaks Produce v0-v2, which Kafka 4 dropped: it would send those plain. So gzip comes
  // from kafkajs and zstd from kcat; snappy and lz4 are read in the fetch path's own tests.
  it('gzip (kafkajs) and zstd (librdkafka) batches land once each, in offset order, between plain ones', async () => {
    const topic = `codecs-${run}`;
    await kafka!.createTopic(topic, { partitions: 1 });
    const PER_BATCH = 200;
    const parts = ['none', 'gzip', 'zstd', 'none'];
    const value = (id: number) => `${parts[Math.floor(id / PER_BATCH)]} ✓ ${id % PER_BATCH}`;
    for (const [c, codec] of parts.entries()) {
      const ids = Array.from({ length: PER_BATCH }, (_, i) => c * PER_BATCH + i);
      if (codec === 'gzip') {
        await producer.send({
          topic,
          acks: -1,
          compression: CompressionTypes.GZIP,
          messages: ids.map((id) => ({ partition: 0, value: JSON.stringify({ id, v: value(id) }) })),
        });
        continue;
      }
      const lines = ids.map((id) => JSON.stringify({ id, v: value(id) }));
      const res = await kcat(kafka!.brokers, ['-P', '-t', topic, '-p', '0', '-z', codec], `${lines.join('\n')}\n`);
      assert.equal(res.code, 0, res.stderr);
    }
    const job = await startJob(`codecs-${run}`, topic);
    await committed(job, { 0: parts.length * PER_BATCH });
    const landed = await rows(job);
    assert.deepEqual(
      landed.map((r) => [r.id, r.offset, r.v]),
      Array.from({ length: parts.length * PER_BATCH }, (_, id) => [id, id, value(id)]),
    );
  });
});

describe('compacted topic', () => {
  it('a job over offset gaps lands exactly the records compaction kept and commits to the end', async () => {
    const topic = `compact-${run}`;
    await kafka!.createTopic(topic, { partitions: 1, config: COMPACT_NOW });
    // Keys repeat: compaction keeps offsets 2 (a), 3 (c), 4 (b) of the first five.
    const keyed = (key: string, id: number) => ({ partition: 0, key, value: JSON.stringify({ id, v: key }) });
    await producer.send({ topic, acks: -1, messages: [keyed('a', 1), keyed('b', 2), keyed('a', 3), keyed('c', 4), keyed('b', 5)] });
    await sleep(SEGMENT_ROLL_WAIT_MS);
    await producer.send({ topic, acks: -1, messages: [keyed('z', 6)] }); // rolls the segment: 0..4 become cleanable
    await waitFor(
      "Kafka's cleaner to compact offsets 0..4 to three records",
      async () => (await readAll(kafka!.brokers, topic, 0, '%o\n')).length === 4,
      { timeoutMs: 60_000, intervalMs: 250 },
    );
    const job = await startJob(`compact-${run}`, topic);
    await committed(job, { 0: 6 });
    const landed = await rows(job);
    assert.deepEqual(
      landed.map((r) => [r.id, r.offset]),
      [
        [3, 2],
        [4, 3],
        [5, 4],
        [6, 5],
      ],
    );
  });
});

describe('retention', () => {
  it('offsets deleted before they were committed: offsetReset fail stops the job and says so; earliest continues and counts them', async () => {
    const topic = `expired-${run}`;
    await kafka!.createTopic(topic, { partitions: 1 });
    await producer.send({ topic, acks: -1, messages: Array.from({ length: 10 }, (_, i) => record(0, i)) });
    await (await kafka!.admin()).deleteTopicRecords({ topic, partitions: [{ partition: 0, offset: '4' }] });

    const failing = await startJob(`expired-fail-${run}`, topic, { startFrom: '{ offsets: { 0: 0 } }', offsetReset: 'fail' });
    const skipping = await startJob(`expired-skip-${run}`, topic, { startFrom: '{ offsets: { 0: 0 } }', offsetReset: 'earliest' });
    await untilState(failing, JobState.JOB_STATE_FAILED);
    const { job } = await mesh!.catalog.getJob({ name: failing });
    assert.match(job!.stateReason, /OFFSET_OUT_OF_RANGE: offsets 0\.\.3 of expired-\w+\/0 expired/);

    await committed(skipping, { 0: 10 });
    assert.deepEqual(ids(await rows(skipping)), [4, 5, 6, 7, 8, 9]);
    const { status } = await mesh!.ingestion.getJobStatus({ job: skipping });
    assert.deepEqual(status?.errors, [{ reason: 'offset_out_of_range', count: 4 }]);
  });
});

describe('error topic', () => {
  it('refused records are written to an error topic on Kafka with their origin in headers; good rows land', async () => {
    const topic = `dirty-${run}`;
    const errors = `dirty-errors-${run}`;
    await kafka!.createTopic(topic, { partitions: 1 });
    await kafka!.createTopic(errors, { partitions: 1 });
    await producer.send({
      topic,
      acks: -1,
      messages: [
        record(0, 1),
        { partition: 0, value: 'not json {', timestamp: String(T + 1) },
        { partition: 0, value: JSON.stringify({ id: 'not a number', v: 'x' }), headers: { origin: 'test' }, timestamp: String(T + 2) },
        record(0, 2),
      ],
    });
    const job = await startJob(`dirty-${run}`, topic, { errors: `  policy: errorTopic\n  topic: ${errors}` });
    await committed(job, { 0: 4 });
    assert.deepEqual(ids(await rows(job)), [1, 2]);

    // At least once: keep one per origin (topic, partition, offset).
    const routed = await consumeCount(kafka!.client('interop-errors'), errors, 2, { groupId: `read-${errors}` });
    const byOrigin = new Map(routed.map((r) => [r.headers?.['sluice.source.offset'], r]));
    assert.deepEqual([...byOrigin.keys()].sort(), ['1', '2']);
    for (const [offset, r] of byOrigin) {
      assert.equal(r.headers?.['sluice.source.topic'], topic);
      assert.equal(r.headers?.['sluice.source.partition'], '0');
      assert.ok(r.headers?.['sluice.error.reason'], `record from offset ${offset} names its reason`);
      assert.ok(r.headers?.['sluice.error.message'], `record from offset ${offset} has a message`);
    }
    assert.equal(byOrigin.get('1')?.value, 'not json {');
    assert.equal(byOrigin.get('2')?.value, JSON.stringify({ id: 'not a number', v: 'x' }));
    assert.equal(byOrigin.get('2')?.headers?.origin, 'test', 'the original headers travel with the record');
    assert.deepEqual(
      [byOrigin.get('1')?.timestamp, byOrigin.get('2')?.timestamp],
      [T + 1, T + 2],
      "each routed record keeps its source record's timestamp",
    );
  });
});

describe('error topic limits', () => {
  it('a refused record the error topic cannot take (over message.max.bytes with the error headers) fails the job instead of stalling it', async () => {
    const topic = `big-${run}`;
    const errors = `big-errors-${run}`;
    await kafka!.createTopic(topic, { partitions: 1 });
    await kafka!.createTopic(errors, { partitions: 1 });
    // Under the limit as a source record; over it once the sluice.error.* and sluice.source.* headers are added.
    await producer.send({ topic, acks: -1, messages: [record(0, 1), { partition: 0, value: 'x'.repeat(1_048_400) }, record(0, 2)] });
    const job = await startJob(`big-${run}`, topic, { errors: `  policy: errorTopic\n  topic: ${errors}` });
    try {
      await untilState(job, JobState.JOB_STATE_FAILED, 20_000);
      const { job: failed } = await mesh!.catalog.getJob({ name: job });
      assert.match(failed!.stateReason, new RegExp(`${errors}.*offset 1|offset 1.*${errors}`));
    } finally {
      // Should the job not fail, it would re-read a megabyte every second: keep it from slowing the tests after it.
      await mesh!.ingestion.stopJob({ job }).catch(() => {});
    }
  });
});

describe('exactly once', () => {
  const PARTITIONS = 4;
  const PER_PARTITION = Number(process.env.INTEROP_EO_RECORDS ?? 20_000) / PARTITIONS;

  it(`${PARTITIONS * PER_PARTITION} records land exactly once while every service is killed -9 and restarted`, async () => {
    const topic = `eo-${run}`;
    await kafka!.createTopic(topic, { partitions: PARTITIONS });
    const job = await startJob(`eo-${run}`, topic);
    const waves = 40;
    const perWave = Math.ceil(PER_PARTITION / waves);
    const produce = async () => {
      for (let first = 0; first < PER_PARTITION; first += perWave) {
        const n = Math.min(perWave, PER_PARTITION - first);
        await producer.send({
          topic,
          acks: -1,
          messages: Array.from({ length: PARTITIONS * n }, (_, k) => {
            const p = k % PARTITIONS;
            const i = first + Math.floor(k / PARTITIONS);
            return record(p, p * 1_000_000 + i);
          }),
        });
        await sleep(200);
      }
    };
    const committedTotal = async () =>
      (await mesh!.catalog.getCommittedOffsets({ job })).offsets.reduce((sum, o) => sum + Number(o.nextOffset), 0);
    const chaos = async () => {
      const order = [...SERVICE_NAMES].sort(() => Math.random() - 0.5) as ServiceName[];
      for (const name of order) {
        await sleep(500 + Math.floor(Math.random() * 1500));
        await mesh!.kill(name);
        await mesh!.restart(name);
        const mark = await committedTotal();
        await waitFor(
          `a commit after ${name} was killed and restarted`,
          async () => {
            mesh!.assertNoCrash();
            const total = await committedTotal();
            return total > mark || total === PARTITIONS * PER_PARTITION;
          },
          { timeoutMs: COMMIT_TIMEOUT_MS, intervalMs: 250 },
        );
      }
    };
    await Promise.all([produce(), chaos()]);
    await committed(job, Object.fromEntries(Array.from({ length: PARTITIONS }, (_, p) => [p, PER_PARTITION])));

    const db = job.replace(/-/g, '_');
    const [totals] = (
      await sluice<{ rows: { n: number; positions: number; mismatched: number }[] }>(
        'query',
        `SELECT count(*)::INT AS n, count(DISTINCT ("partition", "offset"))::INT AS positions,
                count(*) FILTER (WHERE id <> "partition" * 1000000 + "offset")::INT AS mismatched FROM ${db}.events`,
      )
    ).rows;
    const expected = { n: PARTITIONS * PER_PARTITION, positions: PARTITIONS * PER_PARTITION, mismatched: 0 };
    if (totals.n !== expected.n || totals.positions !== expected.positions) {
      // Which offsets are missing or doubled, and the snapshot chain that says how: for the report.
      const ranges = await sluice<{ rows: unknown[] }>(
        'query',
        `SELECT "partition", count(*)::INT AS n, min("offset")::INT AS lo, max("offset")::INT AS hi FROM ${db}.events GROUP BY 1 ORDER BY 1`,
      );
      const history = await sluice('table', 'history', `${db}.events`);
      const { offsets } = await mesh!.catalog.getCommittedOffsets({ job });
      assert.fail(
        `the table holds ${JSON.stringify(totals)}, expected ${JSON.stringify(expected)}; per partition ${JSON.stringify(ranges.rows)}; ` +
          `committed ${JSON.stringify(offsets)}; history ${JSON.stringify(history)}`,
      );
    }
    assert.deepEqual(totals, expected);
  });
});

describe('consumer group', () => {
  it('three ingestion processes share a job on 6 partitions; one killed -9 mid-stream, the other two take its partitions and every record lands once', async () => {
    const PARTITIONS = 6;
    const topic = `group-${run}`;
    await kafka!.createTopic(topic, { partitions: PARTITIONS });
    const job = await startJob(`group-${run}`, topic, { parallelism: 3 }); // one active member per process
    // Two more ingestion processes: each resumes the RUNNING job from the catalog and joins its group.
    const replicas = [await mesh!.addReplica('ingestion'), await mesh!.addReplica('ingestion')];
    const clients = replicas.map((r) => createClient(IngestionServiceService, r.address, { deadlineMs: 15_000, retries: 20 }));
    try {
      const [victim, survivor] = [clients[0], clients[1]];
      /** Partitions each process owns (status lists every partition when a process owns none). */
      const owned = async (members: (typeof clients)[number][]) =>
        Promise.all(members.map(async (c) => ((await c.getJobStatus({ job })).status?.partitions ?? []).map((p) => p.partition)));
      await waitFor(
        'the three processes to share the 6 partitions',
        async () => {
          mesh!.assertNoCrash();
          const each = await owned([mesh!.ingestion, ...clients]);
          return each.every((ps) => ps.length > 0) && new Set(each.flat()).size === PARTITIONS && each.flat().length === PARTITIONS;
        },
        { timeoutMs: COMMIT_TIMEOUT_MS, intervalMs: 250 },
      );

      const killOne = async () => {
        // Mid-stream: once something was committed, while records keep coming.
        await waitFor(
          'a first commit of the shared job',
          async () => (await mesh!.catalog.getCommittedOffsets({ job })).offsets.length > 0,
          {
            timeoutMs: COMMIT_TIMEOUT_MS,
            intervalMs: 100,
          },
        );
        assert.ok((await owned([victim]))[0].length > 0, 'the process to kill owns partitions');
        await replicas[0].kill();
      };
      const killed = killOne();
      // id = partition * 1_000_000 + offset: waves of 50 per partition, continuously; the second
      // half only once the kill happened, so there are records before and after it.
      const WAVES = 40;
      const PER_WAVE = 50;
      for (let w = 0; w < WAVES; w++) {
        if (w === WAVES / 2) await killed;
        await producer.send({
          topic,
          acks: -1,
          messages: Array.from({ length: PARTITIONS * PER_WAVE }, (_, k) => {
            const p = k % PARTITIONS;
            return record(p, p * 1_000_000 + w * PER_WAVE + Math.floor(k / PARTITIONS));
          }),
        });
        await sleep(100);
      }
      await killed;

      const ends = await (await kafka!.admin()).fetchTopicOffsets(topic);
      assert.deepEqual(
        ends.map((e) => Number(e.high)),
        Array(PARTITIONS).fill(WAVES * PER_WAVE),
      );
      await committed(job, Object.fromEntries(ends.map((e) => [e.partition, Number(e.high)])));
      // The group rebalanced onto the two survivors: between them they own every partition.
      await waitFor(
        'the two surviving processes to own the 6 partitions between them',
        async () => {
          const each = await owned([mesh!.ingestion, survivor]);
          return new Set(each.flat()).size === PARTITIONS && each.flat().length === PARTITIONS;
        },
        { timeoutMs: COMMIT_TIMEOUT_MS, intervalMs: 250 },
      );

      const db = job.replace(/-/g, '_');
      const [totals] = (
        await sluice<{ rows: { n: number; ids: number; mismatched: number }[] }>(
          'query',
          `SELECT count(*)::INT AS n, count(DISTINCT id)::INT AS ids,
                  count(*) FILTER (WHERE id <> "partition" * 1000000 + "offset")::INT AS mismatched FROM ${db}.events`,
        )
      ).rows;
      const produced = PARTITIONS * WAVES * PER_WAVE;
      assert.deepEqual(totals, { n: produced, ids: produced, mismatched: 0 });
    } finally {
      for (const c of clients) c.close();
    }
  });
});

describe('topic deleted and recreated', () => {
  /** A job on a fresh 2-partition topic with 10 records a partition (id = partition * 100 + i), committed to the end. */
  async function committedJob(name: string): Promise<{ topic: string; job: string }> {
    const topic = `${name}-${run}`;
    await kafka!.createTopic(topic, { partitions: 2 });
    for (const p of [0, 1])
      await producer.send({ topic, acks: -1, messages: Array.from({ length: 10 }, (_, i) => record(p, p * 100 + i)) });
    const job = await startJob(topic, topic);
    await committed(job, { 0: 10, 1: 10 });
    return { topic, job };
  }

  /** Deletes the topic and waits until Kafka no longer lists it. */
  async function deleteTopic(topic: string): Promise<void> {
    const admin = await kafka!.admin();
    await admin.deleteTopics({ topics: [topic], timeout: 30_000 });
    await waitFor(`Kafka to stop listing ${topic}`, async () => !(await admin.listTopics()).includes(topic), {
      timeoutMs: 30_000,
      intervalMs: 100,
    });
  }

  /** The job FAILED naming the recreated topic; the table and the committed offsets are what they were before. */
  async function failedUntouched(job: string, topic: string): Promise<void> {
    await untilState(job, JobState.JOB_STATE_FAILED);
    const { job: failed } = await mesh!.catalog.getJob({ name: job });
    assert.match(failed!.stateReason, new RegExp(`topic "${topic}" was deleted and recreated`));
    assert.deepEqual(ids(await rows(job)), [...Array.from({ length: 10 }, (_, i) => i), ...Array.from({ length: 10 }, (_, i) => 100 + i)]);
    const { offsets } = await mesh!.catalog.getCommittedOffsets({ job });
    assert.deepEqual(Object.fromEntries(offsets.map((o) => [o.partition, o.nextOffset])), { 0: 10, 1: 10 });
  }

  it('deleted: the job says the topic is missing instead of going quiet; recreated with fewer records: FAILED naming it, nothing re-landed', async () => {
    const { topic, job } = await committedJob('deleted');
    await deleteTopic(topic);
    await waitFor(
      `job status to name the missing topic ${topic}`,
      async () => {
        const { status } = await mesh!.ingestion.getJobStatus({ job });
        return status?.state === JobState.JOB_STATE_RUNNING && status.reason.includes(`topic "${topic}" does not exist`);
      },
      { timeoutMs: COMMIT_TIMEOUT_MS, intervalMs: 250 },
    );
    // Recreated with three partitions and fewer records than were committed on each.
    await kafka!.createTopic(topic, { partitions: 3 });
    for (const p of [0, 1, 2])
      await producer.send({ topic, acks: -1, messages: Array.from({ length: 3 }, (_, i) => record(p, 1000 + p * 100 + i)) });
    await failedUntouched(job, topic);
  });

  it('recreated with more records than were committed while the job is paused: FAILED naming it, never read from the old offsets', async () => {
    const { topic, job } = await committedJob('recreated');
    // Paused, the job fetches nothing, so it sees no error while the topic is gone; its offsets
    // then fit the new topic, and only the topic id tells the two apart.
    await mesh!.ingestion.pauseJob({ job });
    await deleteTopic(topic);
    await kafka!.createTopic(topic, { partitions: 2 });
    for (const p of [0, 1])
      await producer.send({ topic, acks: -1, messages: Array.from({ length: 15 }, (_, i) => record(p, 1000 + p * 100 + i)) });
    await mesh!.ingestion.resumeJob({ job }).catch(() => {}); // it may have failed already
    await failedUntouched(job, topic);
  });
});

describe('broker outage', () => {
  it('Kafka stopped for 10 s mid-job, later killed -9: the job resumes by itself and every record lands once', async () => {
    const topic = `outage-${run}`;
    await kafka!.createTopic(topic, { partitions: 2 });
    const job = await startJob(`outage-${run}`, topic);
    for (const p of [0, 1])
      await producer.send({ topic, acks: -1, messages: Array.from({ length: 50 }, (_, i) => record(p, p * 1000 + i)) });
    await committed(job, { 0: 50, 1: 50 });

    await kafka!.stop();
    await sleep(10_000);
    await kafka!.restart();
    for (const p of [0, 1])
      await producer.send({ topic, acks: -1, messages: Array.from({ length: 50 }, (_, i) => record(p, p * 1000 + 50 + i)) });
    await committed(job, { 0: 100, 1: 100 });

    // A crash this time (kill -9: Kafka recovers its log at start), right after more records.
    for (const p of [0, 1])
      await producer.send({ topic, acks: -1, messages: Array.from({ length: 50 }, (_, i) => record(p, p * 1000 + 100 + i)) });
    await kafka!.kill();
    await kafka!.restart();
    await committed(job, { 0: 150, 1: 150 });
    const landed = ids(await rows(job));
    assert.deepEqual(landed, [...Array.from({ length: 150 }, (_, i) => i), ...Array.from({ length: 150 }, (_, i) => 1000 + i)]);
    const { status } = await mesh!.ingestion.getJobStatus({ job });
    assert.equal(status?.state, JobState.JOB_STATE_RUNNING);
  });
});
