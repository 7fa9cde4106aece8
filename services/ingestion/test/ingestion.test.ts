/**
 * Ingestion over the real things: dev broker over TCP, catalog and commit services on a fresh
 * PostgreSQL database, NATS; the recording transformation worker checks ordering and covers.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { status as grpcStatus } from '@grpc/grpc-js';
import { Kafka, logLevel } from 'kafkajs';
import { CompletionPolicy, JobState, OffsetResetPolicy, StartFrom } from '#shared/gen/sluice/v1/catalog.js';
import { CommittedEvent, RewindEvent } from '#shared/gen/sluice/v1/events.js';
import type { KafkaRecord } from '#shared/gen/sluice/v1/types.js';
import { subjects } from '#shared/events.js';
import { publish, subscribe } from '#shared/nats.js';
import { defineJob, startIngestionStack, type IngestionClient, type IngestionStack } from './support/stack.js';
import { job as jobSpec, source } from '#test-support/builders.js';
import { waitFor } from '#test-support/wait.js';

let stack: IngestionStack;
let ingestion: IngestionClient;

before(async () => {
  stack = await startIngestionStack({ partitions: 2 });
  ingestion = (await stack.startIngestion()).client;
});
after(async () => {
  await stack?.stop();
});

const byPartition = (records: KafkaRecord[]) => {
  const out: Record<number, number[]> = {};
  for (const r of records) (out[r.partition] ??= []).push(r.offset);
  return out;
};

function produce(topic: string, partition: number, timestamps: number[]): void {
  stack.broker.append(
    topic,
    partition,
    timestamps.map((t, i) => ({ value: Buffer.from(JSON.stringify({ v: `${partition}-${i}` })), timestamp: t })),
  );
}

async function catalogState(job: string): Promise<JobState> {
  return (await stack.catalog.getJob({ name: job })).job!.state;
}

async function committed(job: string): Promise<Record<number, number>> {
  const { offsets } = await stack.catalog.getCommittedOffsets({ job });
  return Object.fromEntries(offsets.map((o) => [o.partition, o.nextOffset]));
}

function assertCoversContiguous(job: string): void {
  for (const s of stack.worker.streams.filter((x) => x.open.job === job)) assert.deepEqual(s.violations, [], `stream ${s.open.workerId}`);
}

describe('parallelism', () => {
  /** The partitions each open stream of the job has read (from its batches' covers), by worker id. */
  const openStreams = (job: string) =>
    new Map(
      stack.worker.streams
        .filter((x) => x.open.job === job && !x.ended)
        .map((x) => [x.open.workerId, [...new Set(x.batches.flatMap((b) => b.covers.map((c) => c.partition)))].sort((a, b) => a - b)]),
    );
  /** The partitions each stream reads, by worker id, as the job statuses of these processes say. */
  const statusStreams = async (job: string, processes: IngestionClient[]) => {
    const out = new Map<string, number[]>();
    for (const c of processes)
      for (const p of (await c.getJobStatus({ job })).status!.partitions)
        if (p.workerId) out.set(p.workerId, [...(out.get(p.workerId) ?? []), p.partition]);
    return out;
  };
  const sameStreams = (a: Map<string, number[]>, b: Map<string, number[]>) =>
    JSON.stringify([...a].sort()) === JSON.stringify([...b].sort());
  const nextOffsets = (topic: string) => Object.fromEntries([0, 1, 2, 3, 4, 5].map((p) => [p, stack.broker.highWatermark(topic, p)]));

  // Before: parallelism was stored and ignored; one stream read all six partitions.
  it('N members, each with its own stream and a share of the partitions, spread over the ingestion processes; every record once', async (t) => {
    const topic = 'parallel6';
    stack.broker.createTopic(topic, 6);
    const job = await defineJob(stack.catalog, 'p3', topic, { parallelism: 3 });
    await ingestion.startJob({ job });
    const round = (n: number) => {
      for (let p = 0; p < 6; p++) produce(topic, p, [n]);
    };
    const everyPartitionRead = (n: number) => () => {
      const open = openStreams(job);
      const read = [...open.values()].flat().sort((a, b) => a - b);
      return (
        open.size === 3 &&
        [...open.values()].every((ps) => ps.length === 2) &&
        read.join() === '0,1,2,3,4,5' &&
        stack.worker.records(job).filter((r) => r.timestampMs === n).length >= 6
      );
    };
    round(1000);
    await waitFor('three streams of two partitions each', everyPartitionRead(1000), { timeoutMs: 60_000 });
    // Job status names the stream reading each partition: the same three.
    await waitFor('job status to name the three streams', async () => sameStreams(await statusStreams(job, [ingestion]), openStreams(job)));
    const instances = (ids: Iterable<string>) => new Set([...ids].map((id) => id.split('-').at(-2)));
    assert.equal(instances(openStreams(job).keys()).size, 1, 'one process so far');

    // A second process joins: still three streams, now over both processes.
    // Every ingestion process runs every running job (job-sync.ts): this one leaves with the test.
    const secondProcess = await stack.startIngestion();
    t.after(() => secondProcess.stop());
    const second = secondProcess.client;
    await second.startJob({ job });
    // A stream of the second process means the group's new generation is assigned: the first
    // process's members rejoined for it, which ended their old streams, so the next round is
    // read by the new streams only (produced earlier, an old stream could still take it).
    await waitFor('both processes in the group, the second reading', async () => (await statusStreams(job, [second])).size > 0, {
      timeoutMs: 60_000,
    });
    for (const stream of stack.worker.streams) if (stream.open.job === job && !stream.ended) stream.batches.length = 0;
    round(2000);
    await waitFor(
      'three streams again, over both processes',
      () => everyPartitionRead(2000)() && instances(openStreams(job).keys()).size === 2,
      {
        timeoutMs: 60_000,
      },
    );
    await waitFor("the two processes' job statuses to name the three streams", async () => {
      const named = await statusStreams(job, [ingestion, second]);
      return sameStreams(named, openStreams(job)) && (await statusStreams(job, [second])).size > 0 && named.size === 3;
    });
    await waitFor('everything committed', async () => JSON.stringify(await committed(job)) === JSON.stringify(nextOffsets(topic)), {
      timeoutMs: 60_000,
    });
    assertCoversContiguous(job);
    await second.stopJob({ job });
    await ingestion.stopJob({ job });
  });

  it('more members than partitions fails the job at start, naming both numbers', async () => {
    const topic = 'parallel_over';
    stack.broker.createTopic(topic, 6);
    const job = await defineJob(stack.catalog, 'p8', topic, { parallelism: 8 });
    await ingestion.startJob({ job });
    await waitFor('FAILED in the catalog', async () => (await catalogState(job)) === JobState.JOB_STATE_FAILED, { timeoutMs: 30_000 });
    assert.equal(
      (await stack.catalog.getJob({ name: job })).job!.stateReason,
      'parallelism 8 is more than the 6 partitions of topic parallel_over; set parallelism to 6 or fewer',
    );
  });
});

describe('start positions', () => {
  it('earliest, latest, timestamp and explicit offsets; then a graceful stop commits what was read', async () => {
    const topic = 'starts';
    stack.broker.createTopic(topic, 2);
    produce(topic, 0, [0, 1000, 2000, 3000, 4000, 5000, 6000, 7000, 8000, 9000]);
    produce(topic, 1, [0, 1000, 2000, 3000, 4000]);
    const jobs = {
      s_earliest: { from: StartFrom.START_FROM_EARLIEST, timestampMs: 0, offsets: [] },
      s_latest: { from: StartFrom.START_FROM_LATEST, timestampMs: 0, offsets: [] },
      s_time: { from: StartFrom.START_FROM_TIMESTAMP, timestampMs: 3500, offsets: [] },
      s_offsets: {
        from: StartFrom.START_FROM_OFFSETS,
        timestampMs: 0,
        offsets: [
          { partition: 0, offset: 7 },
          { partition: 1, offset: 2 },
        ],
      },
    };
    for (const [name, start] of Object.entries(jobs)) {
      await defineJob(stack.catalog, name, topic, { start });
      const res = await ingestion.startJob({ job: name });
      assert.equal(res.status?.state, JobState.JOB_STATE_RUNNING);
    }
    // Wait until the latest job has joined its group, then add one record per partition.
    await waitFor(
      'the latest job to own its partitions',
      async () =>
        (await ingestion.getJobStatus({ job: 's_latest' })).status!.partitions.length === 2 &&
        stack.worker.streams.some((s) => s.open.job === 's_latest'),
    );
    await new Promise((r) => setTimeout(r, 500));
    produce(topic, 0, [10_000]);
    produce(topic, 1, [10_000]);
    const expected: Record<string, Record<number, number[]>> = {
      s_earliest: { 0: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 1: [0, 1, 2, 3, 4, 5] },
      s_latest: { 0: [10], 1: [5] },
      s_time: { 0: [4, 5, 6, 7, 8, 9, 10], 1: [4, 5] },
      s_offsets: { 0: [7, 8, 9, 10], 1: [2, 3, 4, 5] },
    };
    for (const [job, want] of Object.entries(expected)) {
      await waitFor(`${job} to deliver its records`, () => {
        const got = byPartition(stack.worker.records(job));
        return (got[0]?.length ?? 0) >= want[0].length && (got[1]?.length ?? 0) >= want[1].length;
      });
      assert.deepEqual(byPartition(stack.worker.records(job)), want, job);
      assertCoversContiguous(job);
    }
    // Graceful stop: flushed and committed before STOPPED.
    const stopped = await ingestion.stopJob({ job: 's_time' });
    assert.equal(stopped.status?.state, JobState.JOB_STATE_STOPPED);
    assert.deepEqual(await committed('s_time'), { 0: 11, 1: 6 });
    assert.equal(await catalogState('s_time'), JobState.JOB_STATE_STOPPED);
    // The group offsets follow the commit (for lag tools only).
    await waitFor('group offsets', () => stack.broker.committedOffset('sluice-s_time', topic, 0) === 11);
    for (const job of ['s_earliest', 's_latest', 's_offsets']) await ingestion.stopJob({ job });
  });

  // Issue 14 #3: before, a restart resolved `latest` again and skipped what arrived while the job was stopped.
  it('a job started at latest that committed nothing restarts at its recorded start, not at the new latest', async () => {
    const topic = 'latest_restart';
    stack.broker.createTopic(topic, 1);
    produce(topic, 0, [1000, 2000]); // before the start: not the job's
    const job = await defineJob(stack.catalog, 's_latest_restart', topic, {
      start: { from: StartFrom.START_FROM_LATEST, timestampMs: 0, offsets: [] },
    });
    await ingestion.startJob({ job });
    await waitFor('the start recorded', async () => (await stack.catalog.getCommittedOffsets({ job })).starts.length === 1);
    assert.deepEqual((await stack.catalog.getCommittedOffsets({ job })).starts, [
      { topic, partition: 0, offset: 2, searchUntilOffset: undefined },
    ]);
    await ingestion.stopJob({ job });
    assert.deepEqual(await committed(job), {}, 'nothing read, nothing committed');
    produce(topic, 0, [3000, 4000]); // while the job is stopped: the job's
    await ingestion.startJob({ job });
    await waitFor('the records produced while stopped', () => stack.worker.records(job).length >= 2);
    assert.deepEqual(byPartition(stack.worker.records(job)), { 0: [2, 3] });
    await waitFor('committed from the recorded start', async () => (await committed(job))[0] === 4);
    assertCoversContiguous(job);
    await ingestion.stopJob({ job });
  });

  it('explicit offsets that leave a partition out fail the job at start, naming it, and read nothing', async () => {
    const topic = 'starts_partial';
    stack.broker.createTopic(topic, 2);
    produce(topic, 0, [0, 1000]);
    produce(topic, 1, [0, 1000]);
    const job = await defineJob(stack.catalog, 's_partial', topic, {
      start: { from: StartFrom.START_FROM_OFFSETS, timestampMs: 0, offsets: [{ partition: 0, offset: 1 }] },
    });
    await ingestion.startJob({ job });
    await waitFor('FAILED in the catalog', async () => (await catalogState(job)) === JobState.JOB_STATE_FAILED);
    const { status } = await ingestion.getJobStatus({ job });
    assert.equal(
      status!.reason,
      'source.startFrom.offsets names no offset for partition 1 (topic starts_partial has partitions 0, 1); give an offset for every partition',
    );
    assert.equal(stack.worker.records(job).length, 0);
  });
});

describe('one table, one topic', () => {
  it('a second job reading the same topic into the same table is refused at start; the first runs on', async () => {
    const topic = 'twice';
    stack.broker.createTopic(topic, 1);
    await defineJob(stack.catalog, 'twice_a', topic);
    await stack.catalog.createSource({ source: source('twice_b_src', topic) });
    const into = { database: 'lake', table: 'twice_a' };
    await stack.catalog.createJob({ job: jobSpec('twice_b', 'twice_b_src', into, { commitIntervalMs: 1000, parallelism: 1 }) });
    await ingestion.startJob({ job: 'twice_a' });
    await assert.rejects(
      ingestion.startJob({ job: 'twice_b' }),
      (e: { code: number; details: string }) =>
        e.code === grpcStatus.FAILED_PRECONDITION &&
        e.details.startsWith('job twice_a already writes table lake.twice_a from topic twice; two jobs may write one table only when'),
    );
    assert.equal(await catalogState('twice_b'), JobState.JOB_STATE_CREATED);
    assert.equal((await ingestion.getJobStatus({ job: 'twice_a' })).status!.state, JobState.JOB_STATE_RUNNING);
    await ingestion.stopJob({ job: 'twice_a' });
  });
});

describe('bounded windows', () => {
  // Out-of-order timestamps. Window [10 000, 20 000). p0 starts at offset 2 (first ts >= 10 000)
  // and ends at 7 (first ts >= 20 000); offset 3 (8 000) lies between and is excluded; offset 8
  // (13 000) arrives after the end position.
  const P0 = [5000, 9000, 12000, 8000, 15000, 19999, 10000, 21000, 13000, 30000];
  const P1 = [10000, 20000, 11000];
  const window = (completion: CompletionPolicy, allowedLatenessMs = 0) => ({
    startTimeMs: 10_000,
    endTimeMs: 20_000,
    timeZone: 'UTC',
    completion,
    idleTimeoutMs: completion === CompletionPolicy.COMPLETION_POLICY_IDLE ? 1500 : 0,
    allowedLatenessMs,
    endOffsets: [],
  });

  it('END_POSITION: exactly the in-window records before the first record at or after the end, then FINISHED', async () => {
    const topic = 'window_end';
    stack.broker.createTopic(topic, 2);
    produce(topic, 0, P0);
    produce(topic, 1, P1);
    const job = await defineJob(stack.catalog, 'w_end', topic, { window: window(CompletionPolicy.COMPLETION_POLICY_END_POSITION) });
    await ingestion.startJob({ job });
    await waitFor('FINISHED in the catalog', async () => (await catalogState(job)) === JobState.JOB_STATE_FINISHED, { timeoutMs: 30_000 });
    assert.deepEqual(byPartition(stack.worker.records(job)), { 0: [2, 4, 5, 6], 1: [0] });
    assert.deepEqual(await committed(job), { 0: 7, 1: 1 });
    const { status } = await ingestion.getJobStatus({ job });
    assert.equal(status!.state, JobState.JOB_STATE_FINISHED);
    assert.equal(status!.recordsExcluded, 1);
    assert.equal(status!.recordsIn, 6);
    assert.equal(status!.rowsOut, 5);
    assert.deepEqual(
      status!.partitions.map((p) => [p.partition, p.endOffset, p.lag]),
      [
        [0, 7, 0],
        [1, 1, 0],
      ],
    );
    assertCoversContiguous(job);
  });

  it('END_POSITION with allowed lateness: in-window records up to the first record past end + lateness; a partition without one ends at its high watermark, an empty one at 0', async () => {
    const topic = 'window_late';
    stack.broker.createTopic(topic, 3);
    produce(topic, 0, P0);
    produce(topic, 1, P1);
    // Closes at 25 000. p0: 21 000 (offset 7) is late but not past the close time, so 13 000
    // (offset 8) is read; 30 000 (offset 9) ends p0. p1 holds no record past it: it ends at its
    // high watermark (the close time passed long ago); p2 is empty and ends at 0.
    const job = await defineJob(stack.catalog, 'w_late', topic, {
      window: window(CompletionPolicy.COMPLETION_POLICY_END_POSITION, 5_000),
    });
    await ingestion.startJob({ job });
    await waitFor('FINISHED in the catalog', async () => (await catalogState(job)) === JobState.JOB_STATE_FINISHED, { timeoutMs: 30_000 });
    assert.deepEqual(byPartition(stack.worker.records(job)), { 0: [2, 4, 5, 6, 8], 1: [0, 2] });
    assert.deepEqual(await committed(job), { 0: 9, 1: 3 });
    const { status } = await ingestion.getJobStatus({ job });
    assert.equal(status!.state, JobState.JOB_STATE_FINISHED);
    assert.equal(status!.recordsIn, 10);
    assert.equal(status!.recordsExcluded, 3);
    assert.equal(status!.rowsOut, 7);
    assert.deepEqual(
      status!.partitions.map((p) => [p.partition, p.endOffset, p.lag]),
      [
        [0, 9, 0],
        [1, 3, 0],
        [2, 0, 0],
      ],
    );
    assertCoversContiguous(job);
  });

  it('END_POSITION with the end ahead: the job stays RUNNING and reads records produced later, until a record past the end arrives on every partition', async () => {
    const topic = 'window_ahead';
    stack.broker.createTopic(topic, 2);
    const now = Date.now();
    const inWindow = now - 60_000;
    const end = now + 3_600_000;
    produce(topic, 0, [now - 7_200_000, inWindow]); // offset 0 before the window (the start is offset 1), 1 inside
    const job = await defineJob(stack.catalog, 'w_ahead', topic, {
      window: {
        startTimeMs: now - 3_600_000,
        endTimeMs: end,
        timeZone: 'UTC',
        completion: CompletionPolicy.COMPLETION_POLICY_END_POSITION,
        idleTimeoutMs: 0,
        allowedLatenessMs: 0,
        endOffsets: [],
      },
    });
    await ingestion.startJob({ job });
    await waitFor('the in-window record', () => stack.worker.records(job).length === 1);
    // Everything there is was read and p1 is empty, but the window is still open: nothing ended.
    const running = (await ingestion.getJobStatus({ job })).status!;
    assert.equal(running.state, JobState.JOB_STATE_RUNNING);
    assert.deepEqual(
      running.partitions.map((p) => p.endOffset),
      [undefined, undefined],
    );
    produce(topic, 0, [inWindow + 1]); // offset 2
    produce(topic, 1, [inWindow + 2]); // offset 0
    await waitFor('the records produced after the start', () => stack.worker.records(job).length === 3);
    assert.equal(await catalogState(job), JobState.JOB_STATE_RUNNING);
    produce(topic, 0, [end, inWindow + 3]); // offset 3 ends p0; offset 4 is after its end
    produce(topic, 1, [end + 1]); // offset 1 ends p1
    await waitFor('FINISHED in the catalog', async () => (await catalogState(job)) === JobState.JOB_STATE_FINISHED, { timeoutMs: 30_000 });
    assert.deepEqual(byPartition(stack.worker.records(job)), { 0: [1, 2], 1: [0] });
    assert.deepEqual(await committed(job), { 0: 3, 1: 1 });
    const { status } = await ingestion.getJobStatus({ job });
    assert.equal(status!.recordsIn, 3);
    assert.equal(status!.recordsExcluded, 0);
    assertCoversContiguous(job);
  });

  it('END_POSITION read by two processes: the one not leading the group hands its partitions over once committed to their ends; the leader records FINISHED', async (t) => {
    const topic = 'window_shared';
    stack.broker.createTopic(topic, 4);
    const now = Date.now();
    const end = now + 3_600_000;
    for (const p of [0, 1, 2, 3]) produce(topic, p, [now - 2000, now - 1000]);
    const job = await defineJob(stack.catalog, 'w_shared', topic, {
      parallelism: 2, // one active member in each process (members.ts)
      window: {
        startTimeMs: now - 60_000,
        endTimeMs: end,
        timeZone: 'UTC',
        completion: CompletionPolicy.COMPLETION_POLICY_END_POSITION,
        idleTimeoutMs: 0,
        allowedLatenessMs: 0,
        endOffsets: [],
      },
    });
    const secondProcess = await stack.startIngestion();
    t.after(() => secondProcess.stop());
    const second = secondProcess.client;
    const members = [ingestion, second];
    for (const m of members) await m.startJob({ job });
    // The end is ahead, so nothing ends before both share the partitions and read what there is.
    const read = () => new Set(stack.worker.records(job).map((r) => `${r.partition}/${r.offset}`));
    await waitFor('both processes to own two partitions and every in-window record to be read', async () => {
      for (const m of members) if ((await m.getJobStatus({ job })).status!.partitions.length !== 2) return false;
      return read().size === 8;
    });
    for (const p of [0, 1, 2, 3]) produce(topic, p, [end]); // offset 2 ends each partition
    await waitFor('FINISHED in the catalog', async () => (await catalogState(job)) === JobState.JOB_STATE_FINISHED, { timeoutMs: 60_000 });
    assert.deepEqual(await committed(job), { 0: 2, 1: 2, 2: 2, 3: 2 });
    assert.equal(read().size, 8);
    const statuses = await Promise.all(members.map(async (m) => (await m.getJobStatus({ job })).status!));
    assert.deepEqual(statuses.map((st) => [JobState[st.state], st.reason.replace(/^finished: .*/, 'finished')]).sort(), [
      ['JOB_STATE_FINISHED', 'finished'],
      [
        'JOB_STATE_RUNNING',
        'this process read its partitions to their ends; the group leader in another ingestion process finishes the job',
      ],
    ]);
    assertCoversContiguous(job);
  });

  it('IDLE: reads past the end position until no record arrived for the idle period, then FINISHED', async () => {
    const topic = 'window_idle';
    stack.broker.createTopic(topic, 2);
    produce(topic, 0, P0);
    produce(topic, 1, P1);
    const job = await defineJob(stack.catalog, 'w_idle', topic, { window: window(CompletionPolicy.COMPLETION_POLICY_IDLE) });
    await ingestion.startJob({ job });
    await waitFor('FINISHED in the catalog', async () => (await catalogState(job)) === JobState.JOB_STATE_FINISHED, { timeoutMs: 30_000 });
    assert.deepEqual(byPartition(stack.worker.records(job)), { 0: [2, 4, 5, 6, 8], 1: [0, 2] });
    assert.deepEqual(await committed(job), { 0: 10, 1: 3 });
    const { status } = await ingestion.getJobStatus({ job });
    assert.equal(status!.recordsExcluded, 4);
    assertCoversContiguous(job);
  });
});

describe('transaction markers', () => {
  it('a fetch holding only an aborted transaction (kafkajs skips it) is covered, so commits reach the end of the partition', async () => {
    const topic = 'aborted_tail';
    stack.broker.createTopic(topic, 1);
    produce(topic, 0, [1000, 2000]);
    const job = await defineJob(stack.catalog, 'aborted_tail', topic, {
      start: { from: StartFrom.START_FROM_EARLIEST, timestampMs: 0, offsets: [] },
    });
    await ingestion.startJob({ job });
    await waitFor('the two records committed', async () => (await committed(job))[0] === 2);
    const producer = new Kafka({ clientId: 'aborted-tail', brokers: [stack.broker.address], logLevel: logLevel.NOTHING }).producer({
      transactionalId: 'aborted-tail',
      idempotent: true,
      maxInFlightRequests: 1,
    });
    await producer.connect();
    const tx = await producer.transaction();
    await tx.send({ topic, messages: [{ value: '{"v":"x"}' }, { value: '{"v":"y"}' }] }); // 2, 3
    await tx.abort(); // marker 4
    await producer.disconnect();
    await waitFor('commits past the aborted transaction', async () => (await committed(job))[0] === 5);
    assert.deepEqual(byPartition(stack.worker.records(job)), { 0: [0, 1] });
    assertCoversContiguous(job);
    await ingestion.stopJob({ job });
  });
});

describe('a start by timestamp that a transaction marker answered', () => {
  // The broker stamps a marker with its own clock, so the lookup for 5000 answers the marker at
  // 2, ahead of a record stamped 1500. Before, reading skipped 2..3 uncovered and the first commit
  // began at 4, past the job's recorded start; now they are covered without rows.
  it('covers the records stamped before the start from the recorded start on, so the first commit begins there', async () => {
    const topic = 'marker_start';
    stack.broker.createTopic(topic, 1);
    const producer = new Kafka({ clientId: 'marker-start', brokers: [stack.broker.address], logLevel: logLevel.NOTHING }).producer({
      transactionalId: 'marker-start',
      idempotent: true,
      maxInFlightRequests: 1,
    });
    await producer.connect();
    const tx = await producer.transaction();
    await tx.send({
      topic,
      messages: [
        { value: '{"v":"a"}', timestamp: '1000' },
        { value: '{"v":"b"}', timestamp: '2000' },
      ],
    }); // 0, 1
    await tx.commit(); // marker 2, stamped now
    await producer.disconnect();
    produce(topic, 0, [1500, 6000]); // 3 (before the start), 4
    const job = await defineJob(stack.catalog, 's_marker', topic, {
      start: { from: StartFrom.START_FROM_TIMESTAMP, timestampMs: 5000, offsets: [] },
    });
    await ingestion.startJob({ job });
    await waitFor('committed through offset 4', async () => (await committed(job))[0] === 5);
    assert.deepEqual((await stack.catalog.getCommittedOffsets({ job })).starts, [{ topic, partition: 0, offset: 2, searchUntilOffset: 5 }]);
    assert.deepEqual(byPartition(stack.worker.records(job)), { 0: [4] });
    const stream = stack.worker.streams.find((s) => s.open.job === job)!;
    assert.equal(stream.batches[0].covers[0].startOffset, 2, 'the first cover begins at the recorded start');
    assertCoversContiguous(job);
    await ingestion.stopJob({ job });
  });
});

describe('expired offsets (retention)', () => {
  it('fail the job by default, naming the lost range and the fix', async () => {
    const topic = 'expired_fail';
    stack.broker.createTopic(topic, 1);
    produce(topic, 0, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    stack.broker.deleteRecordsBefore(topic, 0, 5);
    const job = await defineJob(stack.catalog, 'x_fail', topic, {
      start: { from: StartFrom.START_FROM_OFFSETS, timestampMs: 0, offsets: [{ partition: 0, offset: 2 }] },
    });
    await ingestion.startJob({ job });
    await waitFor('FAILED in the catalog', async () => (await catalogState(job)) === JobState.JOB_STATE_FAILED);
    const { status } = await ingestion.getJobStatus({ job });
    assert.equal(status!.state, JobState.JOB_STATE_FAILED);
    assert.match(status!.reason, /OFFSET_OUT_OF_RANGE: offsets 2\.\.4 of expired_fail\/0 expired .* offset_reset to EARLIEST/);
    assert.equal(stack.worker.records(job).length, 0);
  });

  it('continue from the earliest offset with offset_reset=EARLIEST, covering and counting the lost range', async () => {
    const topic = 'expired_reset';
    stack.broker.createTopic(topic, 1);
    produce(topic, 0, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    stack.broker.deleteRecordsBefore(topic, 0, 5);
    const job = await defineJob(stack.catalog, 'x_reset', topic, {
      start: { from: StartFrom.START_FROM_OFFSETS, timestampMs: 0, offsets: [{ partition: 0, offset: 2 }] },
      offsetReset: OffsetResetPolicy.OFFSET_RESET_POLICY_EARLIEST,
    });
    await ingestion.startJob({ job });
    await waitFor('records 5..9', () => stack.worker.records(job).length === 5);
    const stream = stack.worker.streams.find((s) => s.open.job === job)!;
    assert.deepEqual(
      stream.batches[0].covers.map((c) => [c.startOffset, c.endOffset]),
      [[2, 5]],
    );
    assert.equal(stream.batches[0].records.length, 0);
    await waitFor('commit through offset 10', async () => (await committed(job))[0] === 10);
    const { status } = await ingestion.getJobStatus({ job });
    assert.deepEqual(status!.errors, [{ reason: 'offset_out_of_range', count: 3 }]);
    await ingestion.stopJob({ job });
  });
});

describe('rewind, pause and resume', () => {
  it('a RewindEvent for the current stream re-reads from the committed offsets under a new worker id', async () => {
    const topic = 'rewind';
    stack.broker.createTopic(topic, 1);
    produce(topic, 0, [1, 2, 3, 4]);
    const job = await defineJob(stack.catalog, 'r_job', topic);
    await ingestion.startJob({ job });
    await waitFor('commit of the first records', async () => (await committed(job))[0] === 4);
    const first = stack.worker.streams.find((s) => s.open.job === job)!;

    // Paused: nothing new is read.
    await ingestion.pauseJob({ job });
    assert.equal(await catalogState(job), JobState.JOB_STATE_PAUSED);
    produce(topic, 0, [5, 6]);
    await new Promise((r) => setTimeout(r, 700));
    assert.equal(stack.worker.records(job).length, 4);
    await ingestion.resumeJob({ job });
    await waitFor('records after resume', () => stack.worker.records(job).length === 6);
    const listed = (await ingestion.listJobStatuses({})).statuses.find((s) => s.job === job);
    assert.equal(listed?.state, JobState.JOB_STATE_RUNNING);

    // A rewind naming some other (old) stream is ignored; one naming the current stream is not.
    publish(stack.nats, subjects.rewind(job), RewindEvent.encode({ job, workerId: 'someone-else', reason: 'test' }).finish());
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(stack.worker.streams.filter((s) => s.open.job === job).length, 1);
    const before = await committed(job);
    publish(stack.nats, subjects.rewind(job), RewindEvent.encode({ job, workerId: first.open.workerId, reason: 'test' }).finish());
    const second = await waitFor('a new stream', () => stack.worker.streams.find((s) => s.open.job === job && s !== first));
    assert.notEqual(second.open.workerId, first.open.workerId);
    await waitFor('the old stream to close', () => first.ended);
    produce(topic, 0, [7]);
    await waitFor('a batch on the new stream', () => second.batches.length > 0);
    const start = second.batches[0].covers[0].startOffset;
    const after = await committed(job);
    assert.ok(
      start >= before[0] && start <= after[0],
      `the new stream starts at the committed offset (${before[0]} <= ${start} <= ${after[0]})`,
    );
    assert.deepEqual(
      second.batches.flatMap((b) => b.records.map((r) => r.offset)),
      Array.from({ length: 7 - start }, (_, i) => start + i),
    );
    await waitFor('commit through the new record', async () => (await committed(job))[0] === 7);
    await ingestion.stopJob({ job });
  });
});

describe('job status', () => {
  it('the last commit stays the last real one: rounds with nothing to commit do not replace it', async () => {
    const topic = 'last_commit';
    stack.broker.createTopic(topic, 1);
    produce(topic, 0, [1, 2, 3]);
    const job = await defineJob(stack.catalog, 'lc_job', topic);
    // The commit service announces every round, also one with nothing to commit (rows 0).
    const events: CommittedEvent[] = [];
    const sub = subscribe(
      stack.nats,
      subjects.committed({ database: 'lake', table: job }),
      (data) => void events.push(CommittedEvent.decode(data)),
      () => {},
    );
    try {
      await ingestion.startJob({ job });
      await waitFor('the commit of the three records', async () => (await committed(job))[0] === 3);
      const real = await waitFor('the commit event', () => events.find((e) => e.addedRecords === 3));
      await waitFor(
        'two empty rounds after it',
        () => events.filter((e) => e.offsets.length === 0 && e.committedAtMs > real.committedAtMs).length >= 2,
      );
      const { status } = await ingestion.getJobStatus({ job });
      assert.deepEqual(status!.lastCommit, { snapshotId: real.snapshotId, committedAtMs: real.committedAtMs, rows: 3 });
    } finally {
      sub.unsubscribe();
      await ingestion.stopJob({ job });
    }
  });
});

describe('jobs across ingestion replicas (issue 14, item 7)', () => {
  it('a job started through one process runs in every process; pause, resume and stop through any of them act on all', async (t) => {
    const topic = 'replicated';
    stack.broker.createTopic(topic, 4);
    const secondProcess = await stack.startIngestion();
    t.after(() => secondProcess.stop());
    const second = secondProcess.client;
    const job = await defineJob(stack.catalog, 'replicated', topic, { parallelism: 2 });
    const both = [ingestion, second];
    const states = async () => Promise.all(both.map(async (c) => (await c.getJobStatus({ job })).status!.state));
    const owned = async () => Promise.all(both.map(async (c) => (await c.getJobStatus({ job })).status!.partitions.length));

    // Started through the first process only: the second joins by itself and takes a share.
    await ingestion.startJob({ job });
    await waitFor('both processes to read a share of the partitions', async () => (await owned()).every((n) => n === 2), {
      timeoutMs: 60_000,
    });

    // Paused through the second: every member of both processes is paused.
    await second.pauseJob({ job });
    await waitFor('PAUSED in both processes', async () => (await states()).every((s) => s === JobState.JOB_STATE_PAUSED));
    // Resumed through the first: both read again.
    await ingestion.resumeJob({ job });
    await waitFor('RUNNING in both processes', async () => (await states()).every((s) => s === JobState.JOB_STATE_RUNNING));
    for (const p of [0, 1, 2, 3]) produce(topic, p, [1000, 2000]);
    await waitFor('every record read', () => new Set(stack.worker.records(job).map((r) => `${r.partition}/${r.offset}`)).size === 8);

    // Stopped through the second: both processes flush and stop; STOPPED once the group is empty.
    const stopped = await second.stopJob({ job });
    assert.equal(stopped.status?.state, JobState.JOB_STATE_STOPPED);
    assert.equal(await catalogState(job), JobState.JOB_STATE_STOPPED);
    assert.deepEqual(await states(), [JobState.JOB_STATE_STOPPED, JobState.JOB_STATE_STOPPED]);
    assert.deepEqual(await committed(job), { 0: 2, 1: 2, 2: 2, 3: 2 });
    assertCoversContiguous(job);
  });
});

describe('source failures', () => {
  it('a missing topic is a clear reason in the status, retried until it exists', async () => {
    const job = await defineJob(stack.catalog, 'f_topic', 'not_yet');
    await ingestion.startJob({ job });
    await waitFor('the reason', async () =>
      /topic "not_yet" does not exist; retrying in \d+ ms/.test((await ingestion.getJobStatus({ job })).status!.reason),
    );
    stack.broker.createTopic('not_yet', 1);
    produce('not_yet', 0, [1, 2, 3]);
    await waitFor('records once the topic exists', () => stack.worker.records(job).length === 3, { timeoutMs: 30_000 });
    await ingestion.stopJob({ job });
  });

  it('a topic deleted and recreated under a paused job, with more records than were committed: FAILED naming it, nothing of the new topic read', async () => {
    const topic = 'recreated';
    stack.broker.createTopic(topic, 1);
    produce(topic, 0, [1, 2, 3, 4]);
    const job = await defineJob(stack.catalog, 'f_recreated', topic);
    await ingestion.startJob({ job });
    await waitFor('commit of the first records', async () => (await committed(job))[0] === 4);
    // Paused, the job fetches nothing: the topic's new id is all that tells the new topic from the old.
    await ingestion.pauseJob({ job });
    stack.broker.deleteTopic(topic);
    stack.broker.createTopic(topic, 1);
    produce(topic, 0, [5, 6, 7, 8, 9, 10]);
    await ingestion.resumeJob({ job }).catch(() => {}); // it may have failed already
    await waitFor('the job to fail', async () => (await catalogState(job)) === JobState.JOB_STATE_FAILED);
    assert.match(
      (await stack.catalog.getJob({ name: job })).job!.stateReason,
      /^topic "recreated" was deleted and recreated \(its topic id changed from \S+ to \S+\): the job's committed offsets \(0: 4\) belong to the old topic/,
    );
    assert.deepEqual(
      stack.worker.records(job).map((r) => r.offset),
      [0, 1, 2, 3],
    );
    assert.deepEqual(await committed(job), { 0: 4 });
  });

  it('a broker that goes away is reported and the job continues where it was when it comes back', async () => {
    const { mkdtemp, rm } = await import('node:fs/promises');
    const { join } = await import('node:path');
    const { tmpdir } = await import('node:os');
    const { startDevBroker } = await import('#kafka-broker/index.js');
    const dataDir = await mkdtemp(join(tmpdir(), 'sluice-ingestion-broker-'));
    let broker = await startDevBroker({ dataDir });
    const port = broker.port;
    try {
      broker.createTopic('flaky', 1);
      broker.append('flaky', 0, [{ value: Buffer.from('{"v":"a"}') }, { value: Buffer.from('{"v":"b"}') }]);
      await defineJob(stack.catalog, 'f_broker', 'flaky', {}, [broker.address]);
      await ingestion.startJob({ job: 'f_broker' });
      await waitFor('the first records', () => stack.worker.records('f_broker').length === 2);
      await waitFor('their commit', async () => (await committed('f_broker'))[0] === 2);
      await broker.stop();
      await waitFor(
        'the broker failure in the status',
        async () =>
          /Kafka broker unreachable .*retrying in \d+ ms/.test((await ingestion.getJobStatus({ job: 'f_broker' })).status!.reason),
        { timeoutMs: 30_000 },
      );
      broker = await startDevBroker({ dataDir, port });
      broker.append('flaky', 0, [{ value: Buffer.from('{"v":"c"}') }]);
      await waitFor('the commit after the outage', async () => (await committed('f_broker'))[0] === 3, { timeoutMs: 40_000 });
      const offsets = stack.worker.records('f_broker').map((r) => r.offset);
      assert.equal(new Set(offsets).size >= 3 && offsets.includes(2), true);
      const { status } = await ingestion.getJobStatus({ job: 'f_broker' });
      assert.equal(status!.state, JobState.JOB_STATE_RUNNING);
      assert.doesNotMatch(status!.reason, /unreachable/);
      await ingestion.stopJob({ job: 'f_broker' });
    } finally {
      await broker.stop();
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});
