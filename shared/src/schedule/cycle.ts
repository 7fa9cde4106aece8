/**
 * When a scheduled job fires and what each instance reads (seed 001). Pure: a schedule and an
 * instant in, instants and strings out; the scheduler and the catalog act on the answers.
 *
 * A cycle names fire times on the wall clock of the schedule's zone: every N minutes or hours
 * from `startAt` up to `endAt` each day, or once a day, a week (on a weekday) or a month (on a
 * day, the last day of a shorter month) at `startAt`. An instance is identified by the instant
 * it fires at, and its window and partition are the seed's expressions rendered at that
 * wall-clock time, e.g. hourly at 10:05 on 2022-11-22: `$[yyyymmddhh24-1/24]0000` →
 * 20221122090000, `$[yyyymmddhh24]0000` → 20221122100000, `$[yyyymmddhh24]` → 2022112210.
 *
 * Daylight saving time. A fire time that does not exist (in a spring-forward gap) fires at the
 * same wall-clock time of the new offset, and one that collides with the next fire time fires
 * once; a fire time that exists twice (fall-back overlap) fires once, at the earlier instant.
 * Window bounds in a gap resolve to the gap's start, so consecutive windows still meet: the
 * end of one instance's window is the start of the next one's, as instants, and no record can
 * fall between two instances or into both.
 */
import { CycleUnit, type Schedule } from '../gen/sluice/v1/catalog.js';
import { LocalTimeError, localMsOf, parseLocalDateTime } from '../local-time.js';
import { civilFromMs, daysInMonth, formatLocal, MS_PER_DAY, MS_PER_MINUTE, zone, type Zone } from '../time.js';
import { type CompiledExpression, compileExpression, ExpressionError } from './expressions.js';

/** What is wrong with a schedule, naming its field by the request's and the spec's names. */
export class ScheduleError extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(message);
    this.name = 'ScheduleError';
  }
}

/** At most this many fire times are listed at once (a month of 5-minute instances is 8,928). */
export const MAX_FIRE_TIMES = 10_000;

const HH_MM = /^([01]\d|2[0-3]):([0-5]\d)$/;

export interface CompiledSchedule {
  readonly schedule: Schedule;
  readonly zone: Zone;
  /** Fire times of one day, as minutes after local midnight, ascending. */
  readonly minutesOfDay: readonly number[];
  readonly windowStart: CompiledExpression;
  readonly windowEnd: CompiledExpression;
  readonly partition: CompiledExpression | null;
}

/** One instance's window (start inclusive, end exclusive) and partition value. */
export interface ResolvedInstance {
  readonly scheduledMs: number;
  readonly windowStartMs: number;
  readonly windowEndMs: number;
  /** '' when the schedule names no partition expression. */
  readonly partitionValue: string;
  /** The wall-clock rendering of the scheduled time, for listings: `2022-11-22 10:05`. */
  readonly label: string;
}

function minutesOf(text: string, field: string): number {
  const m = HH_MM.exec(text);
  if (!m) throw new ScheduleError(field, `${JSON.stringify(text)} is not a time of day HH:MM (00:00 to 23:59)`);
  return Number(m[1]) * 60 + Number(m[2]);
}

function expression(source: string, z: Zone, field: string): CompiledExpression {
  if (!source.includes('$[')) throw new ScheduleError(field, `${JSON.stringify(source)} has no $[...] expression`);
  try {
    return compileExpression(source, z);
  } catch (err) {
    if (err instanceof ExpressionError) throw new ScheduleError(field, err.message);
    throw err;
  }
}

/** Checks a schedule and compiles it; throws ScheduleError naming the first bad field. */
export function compileSchedule(s: Schedule): CompiledSchedule {
  let z: Zone;
  try {
    z = zone(s.timeZone || 'UTC');
  } catch {
    throw new ScheduleError('time_zone', `${JSON.stringify(s.timeZone)} is not an IANA time zone (e.g. "Asia/Shanghai", "UTC")`);
  }
  const cycle = s.cycle;
  if (!cycle || cycle.unit === CycleUnit.CYCLE_UNIT_UNSPECIFIED || cycle.unit === CycleUnit.UNRECOGNIZED)
    throw new ScheduleError('cycle.unit', 'is required: minute, hour, day, week or month');
  const start = minutesOf(s.startAt || '00:00', 'start_at');
  const end = minutesOf(s.endAt || '23:59', 'end_at');
  const minutesOfDay: number[] = [];
  if (cycle.unit === CycleUnit.CYCLE_UNIT_MINUTE || cycle.unit === CycleUnit.CYCLE_UNIT_HOUR) {
    const every = cycle.every || 1;
    const limit = cycle.unit === CycleUnit.CYCLE_UNIT_MINUTE ? 1440 : 24;
    if (!Number.isInteger(every) || every < 1 || every >= limit)
      throw new ScheduleError(
        'cycle.every',
        `${cycle.every} is not a whole number of ${cycle.unit === CycleUnit.CYCLE_UNIT_MINUTE ? 'minutes from 1 to 1439' : 'hours from 1 to 23'}`,
      );
    if (end < start) throw new ScheduleError('end_at', `${s.endAt} is before start_at ${s.startAt || '00:00'}`);
    const step = cycle.unit === CycleUnit.CYCLE_UNIT_MINUTE ? every : every * 60;
    for (let m = start; m <= end; m += step) minutesOfDay.push(m);
  } else {
    if (cycle.every > 1)
      throw new ScheduleError(
        'cycle.every',
        `a ${unitName(cycle.unit)} cycle fires once per ${unitName(cycle.unit)}; every must be 1 or unset`,
      );
    minutesOfDay.push(start);
  }
  if (cycle.unit === CycleUnit.CYCLE_UNIT_WEEK && !(cycle.weekday >= 1 && cycle.weekday <= 7))
    throw new ScheduleError('cycle.weekday', `${cycle.weekday} is not a day of the week from 1 (Monday) to 7 (Sunday)`);
  if (cycle.unit === CycleUnit.CYCLE_UNIT_MONTH && !(cycle.dayOfMonth >= 1 && cycle.dayOfMonth <= 31))
    throw new ScheduleError('cycle.day_of_month', `${cycle.dayOfMonth} is not a day of the month from 1 to 31`);
  if (!s.windowStart) throw new ScheduleError('window_start', 'is required: an expression like $[yyyymmddhh24-1/24]0000');
  if (!s.windowEnd) throw new ScheduleError('window_end', 'is required: an expression like $[yyyymmddhh24]0000');
  return {
    schedule: s,
    zone: z,
    minutesOfDay,
    windowStart: expression(s.windowStart, z, 'window_start'),
    windowEnd: expression(s.windowEnd, z, 'window_end'),
    partition: s.partition ? expression(s.partition, z, 'partition') : null,
  };
}

export function unitName(unit: CycleUnit): string {
  return unit.replace('CYCLE_UNIT_', '').toLowerCase();
}

/** Whether the schedule fires on a local day (days since 1970-01-01 on the local time line). */
function firesOn(c: CompiledSchedule, day: number): boolean {
  const cycle = c.schedule.cycle!;
  if (cycle.unit === CycleUnit.CYCLE_UNIT_WEEK) {
    // 1970-01-01 was a Thursday (ISO weekday 4).
    return ((((day + 3) % 7) + 7) % 7) + 1 === cycle.weekday;
  }
  if (cycle.unit === CycleUnit.CYCLE_UNIT_MONTH) {
    const { year, month, day: dom } = civilFromMs(day * MS_PER_DAY);
    return dom === Math.min(cycle.dayOfMonth, daysInMonth(year, month));
  }
  return true;
}

/** The fire times in (afterMs, untilMs], ascending: the first `limit` of them. */
export function fireTimes(c: CompiledSchedule, afterMs: number, untilMs: number, limit = MAX_FIRE_TIMES): number[] {
  const out: number[] = [];
  if (untilMs <= afterMs) return out;
  // One day of margin either side: a zone's offset is under a day.
  const firstDay = Math.floor(c.zone.toLocal(afterMs) / MS_PER_DAY) - 1;
  const lastDay = Math.floor(c.zone.toLocal(untilMs) / MS_PER_DAY) + 1;
  for (let day = firstDay; day <= lastDay; day++) {
    if (!firesOn(c, day)) continue;
    for (const minute of c.minutesOfDay) {
      const at = c.zone.fromLocal(day * MS_PER_DAY + minute * MS_PER_MINUTE);
      if (at <= afterMs || at > untilMs) continue;
      // A gap's fire time moved onto the next one's instant fires once.
      if (out.length > 0 && at <= out[out.length - 1]) continue;
      out.push(at);
      if (out.length === limit) return out;
    }
  }
  return out;
}

/** The latest fire time at or before `atMs`, or undefined when there is none in the last 32 days. */
export function latestFireTime(c: CompiledSchedule, atMs: number): number | undefined {
  const times = fireTimes(c, atMs - 32 * MS_PER_DAY, atMs, Number.MAX_SAFE_INTEGER);
  return times[times.length - 1];
}

/**
 * A rendered window bound as an instant. In a DST gap the bound moves back to the gap's start
 * (the instant the clocks jumped), so the window ending there and the one starting there meet.
 */
function boundInstant(c: CompiledSchedule, text: string, field: string): number {
  let local: number;
  try {
    local = localMsOf(parseLocalDateTime(text));
  } catch (err) {
    if (err instanceof LocalTimeError)
      throw new ScheduleError(
        field,
        `${JSON.stringify(field === 'window_start' ? c.schedule.windowStart : c.schedule.windowEnd)} renders ${JSON.stringify(text)}, which is not a date-time (YYYYMMDD[HH[MM[SS]]])`,
      );
    throw err;
  }
  const at = c.zone.fromLocal(local);
  if (c.zone.toLocal(at) === local) return at;
  // In a gap: the offset after the transition gives the instant the gap starts at.
  return local - c.zone.offsetMs(local + MS_PER_DAY);
}

/** An instance's window and partition, rendered at its scheduled time on the zone's wall clock. */
export function resolveInstance(c: CompiledSchedule, scheduledMs: number): ResolvedInstance {
  const windowStartMs = boundInstant(c, c.windowStart.render(scheduledMs), 'window_start');
  const windowEndMs = boundInstant(c, c.windowEnd.render(scheduledMs), 'window_end');
  if (windowEndMs < windowStartMs)
    throw new ScheduleError(
      'window_end',
      `at ${localLabel(c.zone, scheduledMs)} the window ends (${c.windowEnd.render(scheduledMs)}) before it starts (${c.windowStart.render(scheduledMs)})`,
    );
  return {
    scheduledMs,
    windowStartMs,
    windowEndMs,
    partitionValue: c.partition ? c.partition.render(scheduledMs) : '',
    label: localLabel(c.zone, scheduledMs),
  };
}

/** `2022-11-22 10:05` on the zone's wall clock. */
export function localLabel(z: Zone, atMs: number): string {
  return formatLocal(z.toLocal(atMs)).slice(0, 16);
}

/**
 * Checks that consecutive instances own distinct partitions and meet without a gap or an
 * overlap, over the first fire times after `fromMs`: a rerun replaces its instance's partition,
 * so two instances sharing one would replace each other's rows. Returns the first problem.
 */
export function instanceProblem(c: CompiledSchedule, fromMs: number, count = 8): ScheduleError | undefined {
  const times = fireTimes(c, fromMs, fromMs + 400 * MS_PER_DAY, count);
  let previous: ResolvedInstance | undefined;
  for (const t of times) {
    const r = resolveInstance(c, t);
    if (previous && c.partition && previous.partitionValue === r.partitionValue)
      return new ScheduleError(
        'partition',
        `instances at ${previous.label} and ${r.label} both write partition ${JSON.stringify(r.partitionValue)}; each instance must own its partition (a rerun replaces it)`,
      );
    previous = r;
  }
  return undefined;
}
