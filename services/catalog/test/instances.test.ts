/**
 * Scheduled jobs' instances in the catalog, over real gRPC and PostgreSQL: an instance fires
 * once, only under the current scheduler lease; each attempt is a bounded job of its own with
 * the window and partition its scheduled time renders; reruns wait for a live attempt; late
 * records count once; a scheduled job goes with its instances' jobs.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it, test } from 'node:test';
import { status } from '@grpc/grpc-js';
import {
  CycleUnit,
  InstanceKind,
  InstanceRequest,
  InstanceState,
  JobState,
  LateDataPolicy,
  type Schedule,
  StartFrom,
} from '#shared/gen/sluice/v1/catalog.js';
import { field, job, schema, source } from '#test-support/builders.js';
import { planAttempt, instanceState } from '../src/instances.js';
import { failure, startTestCatalog, type TestCatalog } from './harness.js';

const HOUR = 3_600_000;
const T0 = Date.UTC(2026, 0, 1, 10, 5);

const schedule = (over: Partial<Schedule> = {}): Schedule =>
  ({
    cycle: { unit: CycleUnit.CYCLE_UNIT_HOUR, every: 1, weekday: 0, dayOfMonth: 0 },
    startAt: '00:05',
    timeZone: 'UTC',
    windowStart: '$[yyyymmddhh24-1/24]0000',
    windowEnd: '$[yyyymmddhh24]0000',
    partition: '$[yyyymmddhh24]',
    notBeforeMs: T0 + 10 * HOUR,
    ...over,
  }) as Schedule;

describe('instances in the catalog', () => {
  let cat: TestCatalog;
  const ref = { database: 'sched', table: 'events' };
  before(async () => {
    cat = await startTestCatalog();
    await cat.client.createDatabase({ name: 'sched', location: '', properties: {} });
    await cat.client.createTable({
      ref,
      schema: schema(field(0, 'id', 'long'), field(0, 'pt', 'string')),
      location: '',
      properties: {},
    } as never);
    await cat.client.createSource({ source: source('events', 'events') });
  });
  after(() => cat.stop());

  const scheduled = (name: string, over: Partial<Schedule> = {}) =>
    cat.client.createJob({
      job: job(name, 'events', ref, {
        mapping: { partitionBy: { column: 'pt' } },
        schedule: schedule(over),
      }),
    });

  it('fires an instance once, under the current lease only, as a bounded job with its window and partition', async () => {
    await scheduled('hourly', { lateData: LateDataPolicy.LATE_DATA_POLICY_RERUN });
    const { epoch } = await cat.client.acquireSchedulerLease({ owner: 'a', ttlMs: 60_000 });
    const refused = await failure(cat.client.acquireSchedulerLease({ owner: 'b', ttlMs: 60_000 }));
    assert.equal(refused.code, status.FAILED_PRECONDITION);
    assert.match(refused.details, /held by a/);

    const at = T0 + HOUR;
    const fired = await cat.client.createJobInstances({
      job: 'hourly',
      request: InstanceRequest.INSTANCE_REQUEST_SCHEDULED,
      scheduledTimesMs: [at],
      leaseEpoch: epoch,
      skippedTimesMs: [],
    });
    assert.deepEqual(
      fired.created.map((j) => j.name),
      ['hourly--202601011105'],
    );
    const instance = fired.created[0];
    assert.deepEqual(instance.window?.startTimeMs, Date.UTC(2026, 0, 1, 10));
    assert.deepEqual(instance.window?.endTimeMs, Date.UTC(2026, 0, 1, 11));
    assert.deepEqual(instance.start, { from: StartFrom.START_FROM_TIMESTAMP, timestampMs: Date.UTC(2026, 0, 1, 10), offsets: [] });
    assert.equal(instance.mapping?.partitionBy?.value, '2026010111');
    assert.equal(instance.schedule, undefined);
    assert.equal(instance.instance?.kind, InstanceKind.INSTANCE_KIND_RUN);
    assert.equal(instance.state, JobState.JOB_STATE_CREATED);

    const twice = await cat.client.createJobInstances({
      job: 'hourly',
      request: InstanceRequest.INSTANCE_REQUEST_SCHEDULED,
      scheduledTimesMs: [at],
      leaseEpoch: epoch,
      skippedTimesMs: [],
    });
    assert.deepEqual(twice.created, [], 'an instance fires once');
    assert.deepEqual(twice.existingTimesMs, [at]);

    const stale = await failure(
      cat.client.createJobInstances({
        job: 'hourly',
        request: InstanceRequest.INSTANCE_REQUEST_SCHEDULED,
        scheduledTimesMs: [at + HOUR],
        leaseEpoch: epoch + 1,
        skippedTimesMs: [],
      }),
    );
    assert.equal(stale.code, status.FAILED_PRECONDITION);
    assert.match(stale.details, /fenced: scheduler lease epoch/);

    const notAFireTime = await failure(
      cat.client.createJobInstances({
        job: 'hourly',
        request: InstanceRequest.INSTANCE_REQUEST_BACKFILL,
        scheduledTimesMs: [at + 60_000],
        leaseEpoch: 0,
        skippedTimesMs: [],
      }),
    );
    assert.equal(notAFireTime.code, status.INVALID_ARGUMENT);
    assert.match(notAFireTime.details, /is not a time job hourly's schedule fires at/);

    // Instances of one scheduled job may run together: they read disjoint windows into disjoint partitions.
    const backfill = await cat.client.createJobInstances({
      job: 'hourly',
      request: InstanceRequest.INSTANCE_REQUEST_BACKFILL,
      scheduledTimesMs: [at - HOUR, at],
      leaseEpoch: 0,
      skippedTimesMs: [],
    });
    assert.deepEqual(
      backfill.created.map((j) => j.name),
      ['hourly--202601011005'],
    );
    await cat.client.updateJobState({ name: 'hourly', state: JobState.JOB_STATE_RUNNING, reason: '', expectedStates: [] });
    await cat.client.updateJobState({ name: 'hourly--202601011005', state: JobState.JOB_STATE_RUNNING, reason: '', expectedStates: [] });
    await cat.client.updateJobState({ name: 'hourly--202601011105', state: JobState.JOB_STATE_RUNNING, reason: '', expectedStates: [] });

    // A rerun waits for the live attempt.
    const busy = await failure(
      cat.client.createJobInstances({
        job: 'hourly',
        request: InstanceRequest.INSTANCE_REQUEST_RERUN,
        scheduledTimesMs: [at],
        leaseEpoch: 0,
        skippedTimesMs: [],
      }),
    );
    assert.equal(busy.code, status.ALREADY_EXISTS);
    assert.match(busy.details, /is INSTANCE_STATE_RUNNING \(job hourly--202601011105\); rerun it once it ended/);

    await cat.client.updateJobState({ name: 'hourly--202601011105', state: JobState.JOB_STATE_FINISHED, reason: '', expectedStates: [] });
    // Late records count once however often they are found.
    for (let i = 0; i < 2; i++)
      await cat.client.recordLateRecords({
        job: 'hourly',
        records: [{ partition: 0, offset: 42, timestampMs: Date.UTC(2026, 0, 1, 10, 30), scheduledTimeMs: at }],
        checks: [{ scheduledTimeMs: at, checked: [{ partition: 0, offset: 50 }] }],
        leaseEpoch: epoch,
      });
    const rerun = await cat.client.createJobInstances({
      job: 'hourly',
      request: InstanceRequest.INSTANCE_REQUEST_RERUN,
      scheduledTimesMs: [at],
      leaseEpoch: 0,
      skippedTimesMs: [],
    });
    assert.deepEqual(
      rerun.created.map((j) => [j.name, j.instance?.attempt, j.instance?.kind]),
      [['hourly--202601011105-2', 2, InstanceKind.INSTANCE_KIND_RERUN]],
    );
    const { instances } = await cat.client.listJobInstances({ job: 'hourly', fromMs: 0, latest: 0 });
    assert.deepEqual(
      instances.map((i) => [i.scheduledTimeMs, i.attempt, i.state, i.lateRecords, i.lateChecked]),
      [
        [at - HOUR, 1, InstanceState.INSTANCE_STATE_RUNNING, 0, []],
        [at, 1, InstanceState.INSTANCE_STATE_SUCCEEDED, 1, [{ partition: 0, offset: 50 }]],
        [at, 2, InstanceState.INSTANCE_STATE_QUEUED, 1, []],
      ],
    );

    // The scheduler's view: the most recent instances, and older ones only while they are live.
    const view = async () =>
      (await cat.client.listJobInstances({ job: 'hourly', fromMs: 0, latest: 1 })).instances.map((i) => [i.scheduledTimeMs, i.attempt]);
    assert.deepEqual(await view(), [
      [at - HOUR, 1],
      [at, 1],
      [at, 2],
    ]);

    // Deleting the scheduled job waits for its instances, then takes their jobs with it.
    await cat.client.updateJobState({ name: 'hourly', state: JobState.JOB_STATE_STOPPED, reason: '', expectedStates: [] });
    const live = await failure(cat.client.deleteJob({ name: 'hourly' }));
    assert.equal(live.code, status.FAILED_PRECONDITION);
    assert.match(live.details, /instance job hourly--202601011005 of hourly is JOB_STATE_RUNNING/);
    await cat.client.updateJobState({ name: 'hourly--202601011005', state: JobState.JOB_STATE_STOPPED, reason: '', expectedStates: [] });
    assert.deepEqual(await view(), [
      [at, 1],
      [at, 2],
    ]);
    await cat.client.deleteJob({ name: 'hourly' });
    const { jobs } = await cat.client.listJobs({});
    assert.deepEqual(
      jobs.filter((j) => j.name.startsWith('hourly')),
      [],
    );
  });

  it('refuses a schedule whose instances would share a partition, naming the field', async () => {
    const shared = await failure(scheduled('daily-partition', { partition: '$[yyyymmdd]' }));
    assert.equal(shared.code, status.INVALID_ARGUMENT);
    assert.match(shared.details, /^job\.schedule\.partition: instances at .* both write partition "20260101"/);
    const noColumn = await failure(cat.client.createJob({ job: job('no-column', 'events', ref, { schedule: schedule() }) }));
    assert.match(noColumn.details, /^job\.mapping\.partition_by\.column: is required for a scheduled job/);
  });
});

test('planAttempt: a rerun reads to its last late record; a late append only from the covered end', () => {
  const covered = new Map([
    [0, 100],
    [1, 80],
  ]);
  const late = [
    { partition: 0, offset: 150 },
    { partition: 0, offset: 120 },
    { partition: 1, offset: 50 }, // below what was read: it landed
  ];
  assert.deepEqual(planAttempt(InstanceKind.INSTANCE_KIND_RERUN, 2, covered, late), {
    kind: InstanceKind.INSTANCE_KIND_RERUN,
    attempt: 2,
    endOffsets: [
      { partition: 0, offset: 151 },
      { partition: 1, offset: 80 },
    ],
  });
  assert.deepEqual(planAttempt(InstanceKind.INSTANCE_KIND_LATE_APPEND, 2, covered, late), {
    kind: InstanceKind.INSTANCE_KIND_LATE_APPEND,
    attempt: 2,
    startOffsets: [
      { partition: 0, offset: 100 },
      { partition: 1, offset: 80 },
    ],
    endOffsets: [
      { partition: 0, offset: 151 },
      { partition: 1, offset: 80 },
    ],
  });
  // Nothing succeeded yet: the ends are found by reading, as a first run's.
  assert.deepEqual(planAttempt(InstanceKind.INSTANCE_KIND_RERUN, 2, new Map(), late).endOffsets, []);
});

test('instanceState follows the attempt job', () => {
  const cases: [JobState | undefined, boolean, InstanceState][] = [
    [JobState.JOB_STATE_CREATED, false, InstanceState.INSTANCE_STATE_QUEUED],
    [JobState.JOB_STATE_RUNNING, false, InstanceState.INSTANCE_STATE_RUNNING],
    [JobState.JOB_STATE_PAUSED, false, InstanceState.INSTANCE_STATE_RUNNING],
    [JobState.JOB_STATE_STOPPING, false, InstanceState.INSTANCE_STATE_RUNNING],
    [JobState.JOB_STATE_FINISHED, false, InstanceState.INSTANCE_STATE_SUCCEEDED],
    [JobState.JOB_STATE_FAILED, false, InstanceState.INSTANCE_STATE_FAILED],
    [JobState.JOB_STATE_STOPPED, false, InstanceState.INSTANCE_STATE_STOPPED],
    [undefined, true, InstanceState.INSTANCE_STATE_SKIPPED],
  ];
  for (const [job, skipped, want] of cases) assert.equal(instanceState(job, skipped), want, `${job} skipped=${skipped}`);
});
