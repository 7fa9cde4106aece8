/**
 * Wall-clock times in job specs (window bounds, start timestamps), resolved to epoch
 * milliseconds in a zone. The catalog stores instants; users write local times, including
 * seed 001's compact `20221122090000`. The zone arithmetic is shared/src/time.ts (one
 * implementation of tz offsets in the codebase); this module only parses.
 */
import { daysFromCivil, daysInMonth, MS_PER_DAY, MS_PER_HOUR, MS_PER_MINUTE, zone } from '#shared/time.js';

export class LocalTimeError extends Error {
  constructor(
    readonly input: string,
    message: string,
  ) {
    super(message);
    this.name = 'LocalTimeError';
  }
}

export interface LocalDateTime {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
  ms: number;
}

// 2022-11-22 09:00[:00[.000]] or with a T; and seed 001's compact 20221122090000 (down to the day).
const ISO = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,3}))?)?)?$/;
const COMPACT = /^(\d{4})(\d{2})(\d{2})(?:(\d{2})(?:(\d{2})(\d{2})?)?)?$/;

/** Parses a wall-clock date-time (no zone designator: the zone is given separately). */
export function parseLocalDateTime(text: string): LocalDateTime {
  const t = text.trim();
  const m = ISO.exec(t) ?? COMPACT.exec(t);
  if (!m) {
    throw new LocalTimeError(text, `"${text}" is not a local date-time (expected YYYY-MM-DD HH:MM[:SS[.mmm]] or YYYYMMDD[HH[MM[SS]]])`);
  }
  const num = (s: string | undefined) => (s === undefined ? 0 : Number(s));
  const value: LocalDateTime = {
    year: num(m[1]),
    month: num(m[2]),
    day: num(m[3]),
    hour: num(m[4]),
    minute: num(m[5]),
    second: num(m[6]),
    ms: m[7] === undefined ? 0 : Number(m[7].padEnd(3, '0')),
  };
  const bad = (what: string) => new LocalTimeError(text, `"${text}": ${what}`);
  if (value.month < 1 || value.month > 12) throw bad(`month ${value.month} is not 1-12`);
  if (value.day < 1 || value.day > daysInMonth(value.year, value.month))
    throw bad(`day ${value.day} does not exist in ${value.year}-${String(value.month).padStart(2, '0')}`);
  if (value.hour > 23) throw bad(`hour ${value.hour} is not 0-23`);
  if (value.minute > 59) throw bad(`minute ${value.minute} is not 0-59`);
  if (value.second > 59) throw bad(`second ${value.second} is not 0-59`);
  return value;
}

/**
 * The instant of a wall-clock time in an IANA zone ('' or UTC for UTC). In a DST gap the
 * time moves forward by the gap (02:30 on a spring-forward night is 03:30 of the new
 * offset); in an overlap the earlier instant wins, as java.time does.
 */
export function localToEpochMs(text: string, timeZone: string): number {
  const l = parseLocalDateTime(text);
  let z: ReturnType<typeof zone>;
  try {
    z = zone(timeZone);
  } catch {
    throw new LocalTimeError(timeZone, `"${timeZone}" is not an IANA time zone (e.g. "Asia/Shanghai", "UTC")`);
  }
  return z.fromLocal(localMsOf(l));
}

/** A wall-clock date-time as milliseconds on the local time line (the zone's clock read as UTC). */
export function localMsOf(l: LocalDateTime): number {
  return daysFromCivil(l.year, l.month, l.day) * MS_PER_DAY + l.hour * MS_PER_HOUR + l.minute * MS_PER_MINUTE + l.second * 1000 + l.ms;
}
