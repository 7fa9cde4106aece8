/**
 * Two coordinators on one table: the commit lease lets one commit at a time, a coordinator
 * that lost its lease refuses work, and a zombie's commit with a stale epoch is refused by
 * the catalog. Nothing is duplicated or lost.
 */
import assert from 'node:assert/strict';
import { status } from '@grpc/grpc-js';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, it } from 'node:test';
import type { TableRef } from '#shared/gen/sluice/v1/types.js';
import { commitAppend } from '../src/append.js';
import { CommitError } from '../src/errors.js';
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

let stack: CommitStack;
before(async () => {
  stack = await startCommitStack();
});
after(() => stack.stop());

async function report(
  coord: RunningCoordinator,
  ref: TableRef,
  job: string,
  worker: string,
  flushId: string,
  partition: number,
  start: number,
  end: number,
) {
  const files = [await writeDataFile(stack, ref, `p${partition}`, start, end, worker)];
  const { accepted } = await coord.client.reportDataFiles({
    flushId,
    table: ref,
    job,
    workerId: worker,
    files,
    offsets: [range(partition, start, end)],
    recordCount: end - start,
    errorCounts: [],
  });
  return accepted;
}

it('two coordinators racing on one table: one commits, the stale one is fenced, nothing duplicated or lost', async () => {
  const job = `${stack.database}_race`;
  const ref = await stack.createTable('race', { job });
  const a = await stack.startCoordinator({ leaseTtlMs: 1500, flushTimeoutMs: 1000 }, 'coordinator-a');
  const b = await stack.startCoordinator({ leaseTtlMs: 1500, flushTimeoutMs: 1000 }, 'coordinator-b');
  const committed = events.committed(stack, ref);
  await sleep(50);
  heartbeat(stack, ref, job, 'w1');

  // Both asked to flush at once: exactly one gets the lease.
  const raced = await Promise.allSettled([a.client.triggerFlush({ table: ref, job }), b.client.triggerFlush({ table: ref, job })]);
  const won = raced.filter((r) => r.status === 'fulfilled');
  const lost = raced.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
  assert.equal(won.length, 1);
  assert.equal(lost[0].reason.code, status.FAILED_PRECONDITION);
  assert.match(lost[0].reason.details, /commit lease .* is held by/);
  const [leader, follower] = raced[0].status === 'fulfilled' ? [a, b] : [b, a];
  const f1 = (won[0] as PromiseFulfilledResult<{ flushId: string }>).value.flushId;

  // The follower refuses reports (the worker must not think its data is on its way).
  assert.equal(await report(follower, ref, job, 'w1', f1, 0, 0, 10), false);
  assert.equal(await report(leader, ref, job, 'w1', f1, 0, 0, 10), true);
  await committed.next((e) => e.flushId === f1);
  const leaderEpoch = (await leader.client.getCommitStatus({ table: ref })).leaseEpoch;
  assert.ok(leaderEpoch >= 1);

  // The leader "pauses" (stops renewing, as in a long GC pause); its lease runs out and the
  // follower takes over with a higher epoch, continuing exactly where the leader committed.
  leader.coordinator.table(ref).lease.stop();
  await sleep(1700);
  const { flushId: f2 } = await follower.client.triggerFlush({ table: ref, job });
  assert.equal(await report(follower, ref, job, 'w1', f2, 0, 10, 25), true);
  await committed.next((e) => e.flushId === f2);
  const followerEpoch = (await follower.client.getCommitStatus({ table: ref })).leaseEpoch;
  assert.ok(followerEpoch > leaderEpoch, `new epoch ${followerEpoch} above ${leaderEpoch}`);

  // The zombie wakes up and commits what it believes is next, with its old epoch: fenced by
  // the catalog (after rebasing on the follower's snapshot), nothing written.
  const zombieFile = await writeDataFile(stack, ref, 'p0', 10, 20);
  await assert.rejects(
    commitAppend({
      catalog: stack.catalog,
      storage: stack.storage,
      ref,
      job,
      flushId: 'zombie',
      files: [zombieFile],
      offsets: [range(0, 10, 20)],
      leaseEpoch: leaderEpoch,
    }),
    (err: unknown) => err instanceof CommitError && err.kind === 'fenced' && /fenced: commit lease epoch/.test(err.message),
  );
  // And the old leader's own service refuses new work for the table.
  assert.equal(await report(leader, ref, job, 'w1', 'x', 0, 25, 30), false);

  assert.deepEqual(await tableIds(stack, ref), ids(0, 25));
  const offsets = (await stack.catalog.getCommittedOffsets({ job })).offsets.map((o) => [o.partition, o.nextOffset]);
  assert.deepEqual(offsets, [[0, 25]]);
  committed.stop();
});

it('a report sent to a replica that lost the lease reaches the holder: the table keeps committing (issue 14, item 4)', async () => {
  const job = `${stack.database}_handover`;
  const ref = await stack.createTable('handover', { job });
  const settings = { leaseTtlMs: 1500, flushTimeoutMs: 1000 };
  const a = await stack.startCoordinator(settings, 'replica-a', { replica: true });
  const b = await stack.startCoordinator(settings, 'replica-b', { replica: true });
  const committed = events.committed(stack, ref);
  await sleep(50);
  heartbeat(stack, ref, job, 'w1');

  // a holds the lease; the worker's report lands on b, which passes it on.
  const { flushId: f1 } = await a.client.triggerFlush({ table: ref, job });
  assert.equal(await report(b, ref, job, 'w1', f1, 0, 0, 10), true);
  await committed.next((e) => e.flushId === f1);

  // a pauses past its lease (it finds the lease gone when it wakes) and b takes the table over.
  a.coordinator.table(ref).lease.lost('paused past its TTL');
  await sleep(1700);
  const { flushId: f2 } = await b.client.triggerFlush({ table: ref, job });
  const bEpoch = (await b.client.getCommitStatus({ table: ref })).leaseEpoch;
  // The worker still reports to a, as transformation did: a forwards to b, which commits it.
  assert.equal(await report(a, ref, job, 'w1', f2, 0, 10, 25), true);
  await committed.next((e) => e.flushId === f2);
  // A flush asked of a is b's to run, and a answers status with b's view.
  const { flushId: f3 } = await a.client.triggerFlush({ table: ref, job });
  assert.equal(await report(a, ref, job, 'w1', f3, 0, 25, 30), true);
  await committed.next((e) => e.flushId === f3);
  assert.equal((await a.client.getCommitStatus({ table: ref })).leaseEpoch, bEpoch);

  assert.deepEqual(await tableIds(stack, ref), ids(0, 30));
  const offsets = (await stack.catalog.getCommittedOffsets({ job })).offsets.map((o) => [o.partition, o.nextOffset]);
  assert.deepEqual(offsets, [[0, 30]]);
  committed.stop();
});

it('a coordinator restarted after a crash recovers by itself: same owner takes the lease at once, a lost report rewinds its worker', async () => {
  const job = `${stack.database}_restart`;
  const ref = await stack.createTable('restart', { job });
  const committed = events.committed(stack, ref);
  const rewinds = events.rewind(stack, job);
  const owner = 'host-a:50054'; // what leaseOwner() gives a coordinator on a fixed port
  const first = await stack.startCoordinator({ leaseTtlMs: 60_000, flushTimeoutMs: 30_000 }, owner);
  await sleep(50);
  heartbeat(stack, ref, job, 'w1');

  const { flushId: f1 } = await first.client.triggerFlush({ table: ref, job });
  assert.equal(await report(first, ref, job, 'w1', f1, 0, 0, 10), true);
  await committed.next((e) => e.flushId === f1);
  const epoch = (await first.client.getCommitStatus({ table: ref })).leaseEpoch;

  // The next report is accepted, then the process dies before the round completes.
  heartbeat(stack, ref, job, 'w2'); // a second live worker, silent, keeps the next round open
  await waitForWorkers(first, ref, job, 2);
  const { flushId: f2 } = await first.client.triggerFlush({ table: ref, job });
  assert.equal(await report(first, ref, job, 'w1', f2, 0, 10, 20), true);
  await first.stop();

  // Restarted: nothing to configure, no TTL to wait out (the lease is still valid for 60 s).
  const second = await stack.startCoordinator({ leaseTtlMs: 60_000, flushTimeoutMs: 1000 }, owner);
  await sleep(50);
  heartbeat(stack, ref, job, 'w1');
  const { flushId: f3 } = await second.client.triggerFlush({ table: ref, job });
  assert.equal((await second.client.getCommitStatus({ table: ref })).leaseEpoch, epoch);
  // The worker continues where it believes it is: a gap, because [10, 20) died with the
  // first process. It is told to rewind...
  assert.equal(await report(second, ref, job, 'w1', f3, 0, 20, 30), true);
  const rewind = await rewinds.next((e) => e.workerId === 'w1');
  assert.match(rewind.reason, /starts at offset 20 but 10 is the next uncommitted offset/);
  await committed.next((e) => e.flushId === f3);
  // ... resumes from the catalog's offsets and re-reports everything since.
  const resume = (await stack.catalog.getCommittedOffsets({ job })).offsets[0].nextOffset;
  assert.equal(resume, 10);
  const { flushId: f4 } = await second.client.triggerFlush({ table: ref, job });
  assert.equal(await report(second, ref, job, 'w1', f4, 0, resume, 30), true);
  const c4 = await committed.next((e) => e.flushId === f4);
  assert.deepEqual(c4.offsets, [range(0, 10, 30)]);
  assert.deepEqual(await tableIds(stack, ref), ids(0, 30));
  committed.stop();
  rewinds.stop();
});
