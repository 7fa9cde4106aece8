/** The scheduler's decisions, pure: what fires, what starts, what runs again, where late records are looked for. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CatchUp, CycleUnit, InstanceKind, InstanceState, type JobInstance, type Schedule } from '#shared/gen/sluice/v1/catalog.js';
import { compileSchedule } from '#shared/schedule/cycle.js';
import { dueInstances, lateScanPlan, lateToLand, schedulerClock, toStart } from '../src/scheduler.js';

const MIN = 60_000;
const T0 = Date.UTC(2026, 0, 1, 10, 0);

const minutely = (over: Partial<Schedule> = {}) =>
  compileSchedule({
    cycle: { unit: CycleUnit.CYCLE_UNIT_MINUTE, every: 1, weekday: 0, dayOfMonth: 0 },
    startAt: '00:00',
    endAt: '',
    timeZone: 'UTC',
    windowStart: '$[yyyymmddhh24mi-1/24/60]00',
    windowEnd: '$[yyyymmddhh24mi]00',
    partition: '$[yyyymmddhh24mi-1/24/60]',
    notBeforeMs: T0,
    ...over,
  } as Schedule);

const inst = (minute: number, attempt: number, state: InstanceState, more: Partial<JobInstance> = {}): JobInstance =>
  ({
    scheduledTimeMs: T0 + minute * MIN,
    attempt,
    state,
    job: `j--${minute}-${attempt}`,
    kind: attempt === 1 ? InstanceKind.INSTANCE_KIND_RUN : InstanceKind.INSTANCE_KIND_RERUN,
    windowStartMs: T0 + (minute - 1) * MIN,
    windowEndMs: T0 + minute * MIN,
    latePending: 0,
    lateRecords: 0,
    endOffsets: [],
    lateChecked: [],
    ...more,
  }) as JobInstance;
const { QUEUED, RUNNING, SUCCEEDED, FAILED } = {
  QUEUED: InstanceState.INSTANCE_STATE_QUEUED,
  RUNNING: InstanceState.INSTANCE_STATE_RUNNING,
  SUCCEEDED: InstanceState.INSTANCE_STATE_SUCCEEDED,
  FAILED: InstanceState.INSTANCE_STATE_FAILED,
};

describe('dueInstances', () => {
  const cases: [string, Partial<Schedule>, number | undefined, number, { fire: number[]; skip: number[] }][] = [
    ['nothing before the first fire time after notBefore', {}, undefined, T0 + 30_000, { fire: [], skip: [] }],
    ['the first one, on time', {}, undefined, T0 + MIN, { fire: [T0 + MIN], skip: [] }],
    [
      'after downtime, every missed one in order',
      {},
      T0 + MIN,
      T0 + 4 * MIN + 5,
      { fire: [T0 + 2 * MIN, T0 + 3 * MIN, T0 + 4 * MIN], skip: [] },
    ],
    [
      'after downtime with catch-up latest, the latest and the rest skipped',
      { catchUp: CatchUp.CATCH_UP_LATEST },
      T0 + MIN,
      T0 + 4 * MIN,
      { fire: [T0 + 4 * MIN], skip: [T0 + 2 * MIN, T0 + 3 * MIN] },
    ],
    ['never one again that fired', {}, T0 + 4 * MIN, T0 + 4 * MIN + 59_000, { fire: [], skip: [] }],
  ];
  for (const [name, over, last, now, want] of cases) it(name, () => assert.deepEqual(dueInstances(minutely(over), last, now), want));
});

describe('toStart', () => {
  const cases: [string, JobInstance[], number, number[]][] = [
    ['queued ones in scheduled order, up to the concurrency', [inst(3, 1, QUEUED), inst(1, 1, QUEUED), inst(2, 1, QUEUED)], 2, [1, 2]],
    ['a running one takes a slot', [inst(1, 1, RUNNING), inst(2, 1, QUEUED)], 1, []],
    ['unset concurrency is 1', [inst(1, 1, SUCCEEDED), inst(2, 1, QUEUED), inst(3, 1, QUEUED)], 0, [2]],
    ['a failed one frees its slot', [inst(1, 1, FAILED), inst(2, 1, QUEUED)], 1, [2]],
  ];
  for (const [name, instances, concurrency, want] of cases)
    it(name, () =>
      assert.deepEqual(
        toStart(instances, concurrency).map((i) => (i.scheduledTimeMs - T0) / MIN),
        want,
      ),
    );
});

describe('lateToLand', () => {
  it('instances whose latest attempt left late records, none of whose attempts is live', () => {
    const instances = [
      inst(1, 1, SUCCEEDED, { latePending: 2 }),
      inst(2, 1, SUCCEEDED, { latePending: 1 }),
      inst(2, 2, SUCCEEDED, { latePending: 0 }),
      inst(3, 1, SUCCEEDED, { latePending: 1 }),
      inst(3, 2, QUEUED, { latePending: 1 }),
      inst(4, 1, SUCCEEDED),
    ];
    assert.deepEqual(
      lateToLand(instances).map((t) => (t - T0) / MIN),
      [1],
    );
  });
});

describe('lateScanPlan', () => {
  it('finished instances, each from where it was checked, else from where its first success ended', () => {
    const plan = lateScanPlan([
      inst(1, 1, SUCCEEDED, {
        endOffsets: [
          { partition: 0, offset: 10 },
          { partition: 1, offset: 7 },
        ],
        lateChecked: [{ partition: 0, offset: 30 }],
      }),
      inst(2, 1, FAILED),
      inst(2, 2, SUCCEEDED, { endOffsets: [{ partition: 0, offset: 20 }] }),
      inst(3, 1, RUNNING),
    ]);
    assert.deepEqual(
      plan.map((p) => [(p.scheduledMs - T0) / MIN, [...p.from]]),
      [
        [
          1,
          [
            [0, 30],
            [1, 7],
          ],
        ],
        [2, [[0, 20]]],
      ],
    );
  });
});

describe('schedulerClock', () => {
  it('the wall clock when unset; else anchored to the wall clock, at its speed', () => {
    let wall = 1_000_000;
    assert.equal(schedulerClock('', () => wall)(), wall);
    const clock = schedulerClock(`${T0}@1000000*10`, () => wall);
    assert.equal(clock(), T0);
    wall += 6_000;
    assert.equal(clock(), T0 + MIN);
    assert.throws(() => schedulerClock('tomorrow'), /INGESTION_SCHEDULER_CLOCK="tomorrow" is not <scheduler ms>@<wall-clock ms>\*<speed>/);
  });
});
