import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CatchUp, CompletionPolicy, CycleUnit, LateDataPolicy, type Schedule } from '../src/gen/sluice/v1/catalog.js';
import { compileSchedule, fireTimes, instanceProblem, localLabel, resolveInstance, ScheduleError } from '../src/schedule/cycle.js';
import { localToEpochMs } from '../src/local-time.js';

type Over = Partial<Schedule> & { unit?: CycleUnit; every?: number; weekday?: number; dayOfMonth?: number };

const schedule = (over: Over): Schedule => ({
  cycle: {
    unit: over.unit ?? CycleUnit.CYCLE_UNIT_HOUR,
    every: over.every ?? 1,
    weekday: over.weekday ?? 0,
    dayOfMonth: over.dayOfMonth ?? 0,
  },
  startAt: over.startAt ?? '00:15',
  endAt: over.endAt ?? '',
  timeZone: over.timeZone ?? 'Asia/Shanghai',
  windowStart: over.windowStart ?? '$[yyyymmddhh24-1/24]0000',
  windowEnd: over.windowEnd ?? '$[yyyymmddhh24]0000',
  partition: over.partition ?? '$[yyyymmddhh24]',
  completion: CompletionPolicy.COMPLETION_POLICY_END_POSITION,
  idleTimeoutMs: 0,
  allowedLatenessMs: 0,
  catchUp: CatchUp.CATCH_UP_ALL,
  lateData: LateDataPolicy.LATE_DATA_POLICY_COUNT,
  concurrency: 0,
  notBeforeMs: 0,
});

const at = (local: string, zone = 'Asia/Shanghai') => localToEpochMs(local, zone);
/** The instance's window and partition as seed 001 writes them: local compact strings. */
function rendered(s: Schedule, scheduledLocal: string): [string, string, string] {
  const c = compileSchedule(s);
  const r = resolveInstance(c, at(scheduledLocal, s.timeZone));
  const compact = (ms: number) => localLabel(c.zone, ms).replace(/[- :]/g, '') + new Date(c.zone.toLocal(ms)).toISOString().slice(17, 19);
  return [compact(r.windowStartMs), compact(r.windowEndMs), r.partitionValue];
}

describe("seed 001's table of scheduling patterns, resolved", () => {
  // Each row: the cycle, its three expressions, the scheduled time and the seed's resolution.
  const rows: [string, Over, string, [string, string, string]][] = [
    [
      'every 5 minutes, at 10:00',
      {
        unit: CycleUnit.CYCLE_UNIT_MINUTE,
        every: 5,
        startAt: '00:00',
        endAt: '23:59',
        windowStart: '$[yyyymmddhh24mi-8/24/60]00',
        windowEnd: '$[yyyymmddhh24mi-3/24/60]00',
        partition: '$[yyyymmddhh24mi-8/24/60]',
      },
      '2022-11-22 10:00',
      ['20221122095200', '20221122095700', '202211220952'],
    ],
    [
      'every hour, at 10:05',
      { unit: CycleUnit.CYCLE_UNIT_HOUR, startAt: '00:05' },
      '2022-11-22 10:05',
      ['20221122090000', '20221122100000', '2022112210'],
    ],
    [
      'every 2 hours, at 10:05',
      { unit: CycleUnit.CYCLE_UNIT_HOUR, every: 2, startAt: '00:05', windowStart: '$[yyyymmddhh24-2/24]0000' },
      '2022-11-22 10:05',
      ['20221122080000', '20221122100000', '2022112210'],
    ],
    [
      'every 3 hours, at 10:05',
      { unit: CycleUnit.CYCLE_UNIT_HOUR, every: 3, startAt: '01:05', windowStart: '$[yyyymmddhh24-3/24]0000' },
      '2022-11-22 10:05',
      ['20221122070000', '20221122100000', '2022112210'],
    ],
    [
      'every day, at 00:15',
      { unit: CycleUnit.CYCLE_UNIT_DAY, windowStart: '$[yyyymmdd-1]000000', windowEnd: '$[yyyymmdd]000000', partition: '$[yyyymmdd-1]' },
      '2022-11-22 00:15',
      ['20221121000000', '20221122000000', '20221121'],
    ],
    [
      'every week, Monday 00:15',
      {
        unit: CycleUnit.CYCLE_UNIT_WEEK,
        weekday: 1,
        windowStart: '$[yyyymmdd-7]000000',
        windowEnd: '$[yyyymmdd]000000',
        partition: '$[yyyymmdd-1]',
      },
      '2022-11-21 00:15',
      ['20221114000000', '20221121000000', '20221120'],
    ],
    [
      'every month, the 1st at 00:15',
      {
        unit: CycleUnit.CYCLE_UNIT_MONTH,
        dayOfMonth: 1,
        windowStart: '$[add_months(yyyymmdd,-1)]000000',
        windowEnd: '$[yyyymmdd]000000',
        partition: '$[yyyymmdd-1]',
      },
      '2022-12-01 00:15',
      ['20221101000000', '20221201000000', '20221130'],
    ],
  ];
  for (const [name, s, when, want] of rows) {
    it(name, () => {
      const sch = schedule(s);
      assert.deepEqual(rendered(sch, when), want);
      // The scheduled time is one the cycle fires at.
      const c = compileSchedule(sch);
      const t = at(when);
      assert.deepEqual(fireTimes(c, t - 1, t), [t]);
    });
  }
});

describe('fire times', () => {
  const labels = (s: Schedule, from: string, to: string) => {
    const c = compileSchedule(s);
    return fireTimes(c, at(from, s.timeZone), at(to, s.timeZone)).map((t) => localLabel(c.zone, t));
  };
  const cases: [string, Over, string, string, string[]][] = [
    [
      'every 5 minutes',
      { unit: CycleUnit.CYCLE_UNIT_MINUTE, every: 5, startAt: '00:00' },
      '2022-11-22 09:58',
      '2022-11-22 10:10',
      ['2022-11-22 10:00', '2022-11-22 10:05', '2022-11-22 10:10'],
    ],
    ['hourly from 00:15', {}, '2022-11-22 09:00', '2022-11-22 11:59', ['2022-11-22 09:15', '2022-11-22 10:15', '2022-11-22 11:15']],
    [
      'every 2 hours from 00:15 up to 05:00',
      { every: 2, endAt: '05:00' },
      '2022-11-22 00:00',
      '2022-11-23 01:00',
      ['2022-11-22 00:15', '2022-11-22 02:15', '2022-11-22 04:15', '2022-11-23 00:15'],
    ],
    ['daily', { unit: CycleUnit.CYCLE_UNIT_DAY }, '2022-11-21 12:00', '2022-11-23 12:00', ['2022-11-22 00:15', '2022-11-23 00:15']],
    [
      'weekly on Monday (1)',
      { unit: CycleUnit.CYCLE_UNIT_WEEK, weekday: 1 },
      '2022-11-15 00:00',
      '2022-11-29 00:00',
      ['2022-11-21 00:15', '2022-11-28 00:15'],
    ],
    [
      'monthly on the 31st: the last day of a shorter month',
      { unit: CycleUnit.CYCLE_UNIT_MONTH, dayOfMonth: 31 },
      '2023-01-15 00:00',
      '2023-04-15 00:00',
      ['2023-01-31 00:15', '2023-02-28 00:15', '2023-03-31 00:15'],
    ],
    ['the start is exclusive, the end inclusive', {}, '2022-11-22 09:15', '2022-11-22 10:15', ['2022-11-22 10:15']],
  ];
  for (const [name, s, from, to, want] of cases) it(name, () => assert.deepEqual(labels(schedule(s), from, to), want));
});

describe('daylight saving time (America/New_York)', () => {
  const ny = { timeZone: 'America/New_York', startAt: '00:15' };
  it('spring forward: 02:15 does not exist and fires once, at 03:15 EDT', () => {
    const c = compileSchedule(schedule(ny));
    const times = fireTimes(c, at('2022-03-13 00:00', 'America/New_York'), at('2022-03-13 05:00', 'America/New_York'));
    assert.deepEqual(
      times.map((t) => new Date(t).toISOString()),
      ['2022-03-13T05:15:00.000Z', '2022-03-13T06:15:00.000Z', '2022-03-13T07:15:00.000Z', '2022-03-13T08:15:00.000Z'],
    );
  });
  it('fall back: 01:15 exists twice and fires once, at the earlier instant', () => {
    const c = compileSchedule(schedule(ny));
    const times = fireTimes(c, at('2022-11-06 00:00', 'America/New_York'), at('2022-11-06 03:00', 'America/New_York'));
    assert.deepEqual(
      times.map((t) => new Date(t).toISOString()),
      ['2022-11-06T04:15:00.000Z', '2022-11-06T05:15:00.000Z', '2022-11-06T07:15:00.000Z'],
    );
  });
  // Whatever the clocks do, consecutive instances' windows meet: no record falls between two
  // instances or into both.
  const cycles: [string, Over][] = [
    ['hourly', ny],
    [
      'every 5 minutes',
      {
        ...ny,
        unit: CycleUnit.CYCLE_UNIT_MINUTE,
        every: 5,
        startAt: '00:00',
        windowStart: '$[yyyymmddhh24mi-8/24/60]00',
        windowEnd: '$[yyyymmddhh24mi-3/24/60]00',
        partition: '$[yyyymmddhh24mi-8/24/60]',
      },
    ],
    [
      'daily',
      {
        ...ny,
        unit: CycleUnit.CYCLE_UNIT_DAY,
        startAt: '02:30',
        windowStart: '$[yyyymmdd-1]000000',
        windowEnd: '$[yyyymmdd]000000',
        partition: '$[yyyymmdd-1]',
      },
    ],
  ];
  for (const [name, s] of cycles) {
    for (const [day, label] of [
      ['2022-03-13', 'spring forward'],
      ['2022-11-06', 'fall back'],
    ]) {
      it(`${name} windows meet across ${label}`, () => {
        const c = compileSchedule(schedule(s));
        const from = at(`${day} 00:00`, 'America/New_York') - 2 * 86_400_000;
        const times = fireTimes(c, from, from + 4 * 86_400_000);
        const windows = times.map((t) => resolveInstance(c, t));
        for (let i = 1; i < windows.length; i++) {
          assert.equal(
            windows[i].windowStartMs,
            windows[i - 1].windowEndMs,
            `instance ${localLabel(c.zone, times[i])} starts where the one before ends`,
          );
          assert.ok(windows[i].windowEndMs >= windows[i].windowStartMs);
        }
        assert.equal(new Set(windows.map((w) => w.partitionValue)).size, windows.length, 'each instance owns its partition');
      });
    }
  }
});

describe('schedule problems name their field', () => {
  const cases: [string, Over, string, RegExp][] = [
    ['an unknown zone', { timeZone: 'Mars/Olympus' }, 'time_zone', /not an IANA time zone/],
    ['no unit', { unit: CycleUnit.CYCLE_UNIT_UNSPECIFIED }, 'cycle.unit', /is required/],
    ['every 24 hours', { every: 24 }, 'cycle.every', /hours from 1 to 23/],
    ['a bad start time', { startAt: '24:00' }, 'start_at', /not a time of day/],
    ['the end before the start', { startAt: '10:00', endAt: '09:00' }, 'end_at', /before start_at/],
    ['a weekly cycle without a weekday', { unit: CycleUnit.CYCLE_UNIT_WEEK }, 'cycle.weekday', /day of the week/],
    ['a window start without an expression', { windowStart: '20221122' }, 'window_start', /no \$\[/],
    ['a bad expression', { windowEnd: '$[yyyyqq]' }, 'window_end', /unknown format element/],
  ];
  for (const [name, s, field, message] of cases) {
    it(name, () =>
      assert.throws(
        () => compileSchedule(schedule(s)),
        (e: unknown) => e instanceof ScheduleError && e.field === field && message.test(e.message),
      ),
    );
  }
  it('a partition shared by consecutive instances is refused: a rerun would replace both', () => {
    const c = compileSchedule(schedule({ partition: '$[yyyymmdd]' }));
    const problem = instanceProblem(c, at('2022-11-22 00:00'));
    assert.equal(problem?.field, 'partition');
    assert.match(problem!.message, /both write partition "20221122"/);
  });
});
