/**
 * Reports the coordinator must not take at face value, against the real catalog, NATS and
 * Parquet files: an error table's report (ERROR_TABLE policy) committed in the same round as
 * the data report it came with, a data report whose error report never arrived, and reports
 * delivered twice (a lost response and a retry).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { StartFrom } from '#shared/gen/sluice/v1/catalog.js';
import type { ReportDataFilesRequest } from '#shared/gen/sluice/v1/commit.js';
import { ErrorPolicyKind, MessageMode, type DataFile, type TableRef } from '#shared/gen/sluice/v1/types.js';
import { job, mapping, recordStarts } from '#test-support/builders.js';
import {
  events,
  heartbeat,
  range,
  startCommitStack,
  tableIds,
  waitForWorkers,
  writeDataFile,
  type CommitStack,
  type RunningCoordinator,
} from './harness.js';

let stack: CommitStack;
let coord: RunningCoordinator;
let ref: TableRef;
let errRef: TableRef;
const jobName = () => `${stack.database}_dirty`;

before(async () => {
  stack = await startCommitStack();
  errRef = await stack.createTable('refused');
  ref = await stack.createTable('orders');
  const errorPolicy = { kind: ErrorPolicyKind.ERROR_POLICY_KIND_ERROR_TABLE, maxErrors: 0, errorTopic: '', errorTable: errRef };
  const dirtyMapping = mapping({ mode: MessageMode.MESSAGE_MODE_VALUE, flattenLevel: 1, timeZone: 'UTC', errorPolicy });
  const start = { from: StartFrom.START_FROM_EARLIEST };
  await stack.catalog.createJob({ job: job(jobName(), `${stack.database}_src`, ref, { mapping: dirtyMapping, start }) });
  await recordStarts(stack.catalog, jobName(), 'events', { 0: 0 });
  coord = await stack.startCoordinator({ flushTimeoutMs: 1500 });
});
after(() => stack.stop());

/** Sends a report and asserts it was accepted. */
async function send(r: ReportDataFilesRequest): Promise<void> {
  const { accepted } = await coord.client.reportDataFiles(r);
  assert.equal(accepted, true);
}

const dataReport = (
  worker: string,
  flushId: string,
  files: DataFile[],
  start: number,
  end: number,
  errorReports?: number,
): ReportDataFilesRequest => ({
  flushId,
  table: ref,
  job: jobName(),
  workerId: worker,
  files,
  offsets: [range(0, start, end)],
  recordCount: files.reduce((n, f) => n + f.recordCount, 0),
  errorReports,
  errorCounts: [],
});

const errorReport = (worker: string, flushId: string, files: DataFile[]): ReportDataFilesRequest => ({
  flushId,
  table: errRef,
  job: jobName(),
  workerId: worker,
  files,
  offsets: [],
  recordCount: files.reduce((n, f) => n + f.recordCount, 0),
  errorCounts: [],
});

describe('error table and repeated reports', () => {
  it("commits the error table's rows in the data report's round, first, with no job and no offsets; copies of both reports are ignored", async () => {
    const flushes = events.flush(stack, ref);
    const committed = events.committed(stack, ref);
    const rewinds = events.rewind(stack, jobName());
    await new Promise((r) => setTimeout(r, 50));
    heartbeat(stack, ref, jobName(), 'w1');
    await waitForWorkers(coord, ref, jobName(), 1);

    // Offsets 0..9: 3 and 7 were refused and became error-table rows (ids 3 and 7 there).
    const { flushId } = await coord.client.triggerFlush({ table: ref, job: jobName() });
    await flushes.next((e) => e.flushId === flushId);
    const errFiles = [await writeDataFile(stack, errRef, 'e', 3, 4), await writeDataFile(stack, errRef, 'e', 7, 8)];
    const dataFiles = [
      await writeDataFile(stack, ref, 'a', 0, 3),
      await writeDataFile(stack, ref, 'a', 4, 7),
      await writeDataFile(stack, ref, 'a', 8, 10),
    ];
    // Each report is delivered twice, as after a lost response and a retry.
    await send(errorReport('w1', flushId, errFiles));
    await send(errorReport('w1', flushId, errFiles));
    await send(dataReport('w1', flushId, dataFiles, 0, 10, 1));
    await send(dataReport('w1', flushId, dataFiles, 0, 10, 1));
    const c = await committed.next((e) => e.flushId === flushId);
    assert.equal(c.addedRecords, 8);
    assert.deepEqual(c.offsets, [range(0, 0, 10)]);

    assert.deepEqual(await tableIds(stack, ref), [0, 1, 2, 4, 5, 6, 8, 9]);
    assert.deepEqual(await tableIds(stack, errRef), [3, 7]);
    const [errSnapshot] = (await stack.catalog.listSnapshots({ ref: errRef })).snapshots;
    const [dataSnapshot] = (await stack.catalog.listSnapshots({ ref })).snapshots;
    assert.equal(errSnapshot.operation, 'append');
    assert.equal(errSnapshot.summary['sluice.job'], jobName());
    assert.equal(errSnapshot.summary['sluice.flush-id'], flushId);
    assert.equal(errSnapshot.summary['sluice.offsets'], undefined, 'the error table commits no offsets');
    assert.equal(errSnapshot.summary['added-records'], '2');
    assert.ok(errSnapshot.timestampMs <= dataSnapshot.timestampMs, 'error rows are committed before the data');
    assert.deepEqual(
      (await stack.catalog.getCommittedOffsets({ job: jobName() })).offsets.map((o) => [o.partition, o.nextOffset]),
      [[0, 10]],
    );
    // Nobody else coordinates the error table: this coordinator holds its lease, so its maintenance runs here.
    assert.ok((await coord.client.getCommitStatus({ table: errRef })).leaseEpoch >= 1);

    // A copy delivered after the commit is still recognised: no rewind, nothing twice.
    await send(dataReport('w1', flushId, dataFiles, 0, 10, 1));
    const { flushId: f2 } = await coord.client.triggerFlush({ table: ref, job: jobName() });
    await flushes.next((e) => e.flushId === f2);
    await send(dataReport('w1', f2, [], 10, 10));
    const c2 = await committed.next((e) => e.flushId === f2);
    assert.equal(c2.addedRecords, 0);
    assert.deepEqual(await tableIds(stack, ref), [0, 1, 2, 4, 5, 6, 8, 9]);
    assert.deepEqual(await tableIds(stack, errRef), [3, 7]);
    assert.deepEqual(rewinds.seen, [], 'a repeated report rewinds nobody');
    for (const x of [flushes, committed, rewinds]) x.stop();
  });

  it('a data report whose announced error report never arrived is not committed: its worker rewinds', async () => {
    const flushes = events.flush(stack, ref);
    const committed = events.committed(stack, ref);
    const rewinds = events.rewind(stack, jobName());
    await new Promise((r) => setTimeout(r, 50));
    heartbeat(stack, ref, jobName(), 'w1', false);
    heartbeat(stack, ref, jobName(), 'w2');
    await waitForWorkers(coord, ref, jobName(), 1);

    const { flushId } = await coord.client.triggerFlush({ table: ref, job: jobName() });
    await flushes.next((e) => e.flushId === flushId);
    // As if the coordinator restarted after accepting the error report: this one never saw it.
    await send(dataReport('w2', flushId, [await writeDataFile(stack, ref, 'a', 10, 12, 'w2')], 10, 13, 1));
    const rewind = await rewinds.next((e) => e.workerId === 'w2');
    assert.match(rewind.reason, /1 error-table report\(s\) announced, 0 received/);
    const c = await committed.next((e) => e.flushId === flushId);
    assert.equal(c.addedRecords, 0);
    assert.deepEqual(await tableIds(stack, ref), [0, 1, 2, 4, 5, 6, 8, 9]);
    assert.deepEqual(await tableIds(stack, errRef), [3, 7]);
    assert.deepEqual(
      (await stack.catalog.getCommittedOffsets({ job: jobName() })).offsets.map((o) => [o.partition, o.nextOffset]),
      [[0, 10]],
    );
    for (const x of [flushes, committed, rewinds]) x.stop();
  });

  it('refuses a report for a table the job does not write, naming both', async () => {
    const other = await stack.createTable('unrelated');
    await assert.rejects(
      coord.client.reportDataFiles({ ...errorReport('w9', 'f', []), table: other }),
      /job \w+ does not write to table \w+\.unrelated \(it writes \w+\.orders, with error table \w+\.refused\)/,
    );
  });
});
