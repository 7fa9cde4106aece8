/**
 * The flush protocol end to end against the real catalog, NATS and Parquet files; the test
 * plays two transformation workers (heartbeats on NATS, ReportDataFiles over gRPC).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { FlushEvent } from '#shared/gen/sluice/v1/events.js';
import type { TableRef } from '#shared/gen/sluice/v1/types.js';
import {
  events,
  heartbeat,
  ids,
  range,
  startCommitStack,
  tableIds,
  writeDataFile,
  type CommitStack,
  type RunningCoordinator,
  waitForWorkers,
} from './harness.js';
import { intervalDelayMs } from '../src/pipeline.js';

let stack: CommitStack;
let coord: RunningCoordinator;
let ref: TableRef;
const job = () => `${stack.database}_job`;

before(async () => {
  stack = await startCommitStack();
  ref = await stack.createTable('events', { job: `${stack.database}_job` });
  coord = await stack.startCoordinator({ flushTimeoutMs: 1500 });
});
after(() => stack.stop());

describe('flush rounds', () => {
  it("commits one snapshot with both workers' files and offsets; a late worker lands in the next round; a stale report is dropped with a rewind", async () => {
    const flushes = events.flush(stack, ref);
    const committed = events.committed(stack, ref);
    const rewinds = events.rewind(stack, job());
    await new Promise((r) => setTimeout(r, 50)); // subscriptions registered before anything is published
    heartbeat(stack, ref, job(), 'w1');
    heartbeat(stack, ref, job(), 'w2');
    await waitForWorkers(coord, ref, job(), 2);

    const report = async (worker: string, flushId: string, part: string, partition: number, start: number, end: number) => {
      const files = end > start ? [await writeDataFile(stack, ref, part, start, end, worker)] : [];
      const { accepted } = await coord.client.reportDataFiles({
        flushId,
        table: ref,
        job: job(),
        workerId: worker,
        files,
        offsets: [range(partition, start, end)],
        recordCount: end - start,
        errorCounts: [],
      });
      assert.equal(accepted, true);
    };

    // Round 1: both workers answer; one snapshot holds both files and both ranges.
    const { flushId: f1 } = await coord.client.triggerFlush({ table: ref, job: job() });
    const event1: FlushEvent = await flushes.next((e) => e.flushId === f1);
    assert.equal(event1.job, job());
    assert.ok(event1.deadlineMs > Date.now() - 5000);
    await report('w1', f1, 'a', 0, 0, 10);
    await report('w2', f1, 'b', 1, 0, 7);
    const c1 = await committed.next((e) => e.flushId === f1);
    assert.equal(c1.addedFiles, 2);
    assert.equal(c1.addedRecords, 17);
    assert.deepEqual(c1.offsets, [range(0, 0, 10), range(1, 0, 7)]);
    assert.deepEqual(
      await tableIds(stack, ref),
      [...ids(0, 10), ...ids(0, 7)].sort((a, b) => a - b),
    );
    const { snapshots } = await stack.catalog.listSnapshots({ ref });
    assert.equal(snapshots.length, 1);
    const summary = snapshots[0].summary;
    assert.equal(summary['added-records'], '17');
    assert.equal(summary['added-data-files'], '2');
    assert.equal(summary['total-records'], '17');
    assert.equal(summary['changed-partition-count'], '2');
    assert.equal(summary['sluice.job'], job());
    assert.equal(summary['sluice.flush-id'], f1);
    assert.deepEqual(JSON.parse(summary['sluice.offsets']), [
      { topic: 'events', partition: 0, start: 0, end: 10 },
      { topic: 'events', partition: 1, start: 0, end: 7 },
    ]);

    // Round 2: w2 misses the deadline; the round commits w1 alone.
    const { flushId: f2 } = await coord.client.triggerFlush({ table: ref, job: job() });
    await flushes.next((e) => e.flushId === f2);
    await report('w1', f2, 'a', 0, 10, 15);
    const c2 = await committed.next((e) => e.flushId === f2);
    assert.deepEqual(c2.offsets, [range(0, 10, 15)]);
    // ... then reports late; it waits for round 3, where it is admitted before its next report.
    await report('w2', f2, 'b', 1, 7, 12);
    const { flushId: f3 } = await coord.client.triggerFlush({ table: ref, job: job() });
    await flushes.next((e) => e.flushId === f3);
    await report('w2', f3, 'b', 1, 12, 20);
    await report('w1', f3, 'a', 0, 15, 15); // nothing new: an empty report still answers
    const c3 = await committed.next((e) => e.flushId === f3);
    assert.deepEqual(c3.offsets, [range(0, 15, 15), range(1, 7, 20)]);
    assert.equal(c3.addedRecords, 13);

    // Round 4: w1 replays offsets that are already committed (a zombie after a rebalance):
    // dropped, w1 is told to rewind, nothing is duplicated; w2's report commits.
    const { flushId: f4 } = await coord.client.triggerFlush({ table: ref, job: job() });
    await flushes.next((e) => e.flushId === f4);
    await report('w1', f4, 'a', 0, 5, 15);
    await report('w2', f4, 'b', 1, 20, 22);
    const c4 = await committed.next((e) => e.flushId === f4);
    assert.deepEqual(c4.offsets, [range(1, 20, 22)]);
    const rewind = await rewinds.next((e) => e.workerId === 'w1');
    assert.equal(rewind.job, job());
    assert.deepEqual(rewind.table, ref);
    assert.match(rewind.reason, /events\[0\] starts at offset 5 but 15 is the next uncommitted offset/);

    const offsets = (await stack.catalog.getCommittedOffsets({ job: job() })).offsets.map((o) => [o.partition, o.nextOffset]);
    assert.deepEqual(offsets, [
      [0, 15],
      [1, 22],
    ]);
    assert.deepEqual(
      await tableIds(stack, ref),
      [...ids(0, 15), ...ids(0, 22)].sort((a, b) => a - b),
    );

    const status = await coord.client.getCommitStatus({ table: ref });
    assert.equal(status.commits, 4);
    assert.equal(status.lastSnapshotId, c4.snapshotId);
    assert.ok(status.leaseEpoch >= 1);
    for (const c of [flushes, committed, rewinds]) c.stop();
  });

  it('a round with nothing to commit still answers its flush id; bad requests are refused with the field named', async () => {
    const committed = events.committed(stack, ref);
    await new Promise((r) => setTimeout(r, 50));
    heartbeat(stack, ref, job(), 'w1', false);
    heartbeat(stack, ref, job(), 'w2', false);
    await new Promise((r) => setTimeout(r, 100));
    const { flushId } = await coord.client.triggerFlush({ table: ref, job: job() });
    const c = await committed.next((e) => e.flushId === flushId);
    assert.equal(c.addedRecords, 0);
    assert.deepEqual(c.offsets, []);
    committed.stop();

    await assert.rejects(
      coord.client.reportDataFiles({
        flushId,
        table: ref,
        job: '',
        workerId: 'w',
        files: [],
        offsets: [],
        recordCount: 0,
        errorCounts: [],
      }),
      /job is required/,
    );
    await assert.rejects(
      coord.client.reportDataFiles({
        flushId,
        table: { database: stack.database, table: 'nope' },
        job: job(),
        workerId: 'w',
        files: [],
        offsets: [],
        recordCount: 0,
        errorCounts: [],
      }),
      /job \w+ does not write to table \w+\.nope \(it writes \w+\.events, with no error table\)/,
    );
    await assert.rejects(
      coord.client.triggerFlush({ table: { database: 'no such', table: 't' }, job: '' }),
      /must name a database and a table/,
    );
  });

  it("a flush is due when the workers' buffered bytes reach the job's buffer size", async () => {
    const bufJob = `${stack.database}_buf`;
    const bufRef = await stack.createTable('buffered', { job: bufJob, bufferBytes: 1000 });
    const flushes = events.flush(stack, bufRef);
    await new Promise((r) => setTimeout(r, 50));
    heartbeat(stack, bufRef, bufJob, 'w1', true, 400);
    await waitForWorkers(coord, bufRef, bufJob, 1);
    await new Promise((r) => setTimeout(r, 200)); // the job's settings are read on the first beat
    assert.equal(flushes.seen.length, 0, 'below the buffer size: no flush');
    heartbeat(stack, bufRef, bufJob, 'w2', true, 700);
    const flush = await flushes.next(() => true, 5000);
    assert.equal(flush.job, bufJob);
    assert.equal((await coord.client.getCommitStatus({ table: bufRef })).inFlightFlushId, flush.flushId);
    flushes.stop();
  });
});

describe('intervalDelayMs: interval rounds start one interval apart', () => {
  const cases: [string, number, number | undefined, number, number][] = [
    ['no round yet: a whole interval', 1000, undefined, 5_000, 1000],
    ['a round that took 300 ms: the rest of the interval', 1000, 10_000, 10_300, 700],
    ['a round that took the whole interval: at once', 1000, 10_000, 11_000, 0],
    ['a round longer than the interval: at once', 1000, 10_000, 12_500, 0],
    ['armed as the round starts: a whole interval', 1000, 10_000, 10_000, 1000],
    ['a clock that went back: never more than an interval', 1000, 10_000, 9_000, 1000],
  ];
  for (const [name, interval, lastRoundAt, now, expected] of cases)
    it(name, () => assert.equal(intervalDelayMs(interval, lastRoundAt, now), expected));
});
