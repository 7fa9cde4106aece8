/**
 * Calendar arithmetic and IANA time zones without dependencies.
 *
 * Instants are epoch milliseconds (or microseconds where Iceberg wants them). A "local"
 * time is the wall clock of a zone expressed as if it were UTC epoch milliseconds, which
 * lets the civil-date helpers below work on both.
 */

export const MS_PER_MINUTE = 60_000;
export const MS_PER_HOUR = 3_600_000;
export const MS_PER_DAY = 86_400_000;

/** Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil). */
export function daysFromCivil(y: number, m: number, d: number): number {
  const yy = m <= 2 ? y - 1 : y;
  const era = Math.floor(yy / 400);
  const yoe = yy - era * 400;
  const doy = Math.floor((153 * (m + (m > 2 ? -3 : 9)) + 2) / 5) + d - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146097 + doe - 719468;
}

export interface Civil {
  year: number;
  month: number; // 1-12
  day: number;
  hour: number;
  minute: number;
  second: number;
  ms: number;
}

/** Splits (local or UTC) epoch milliseconds into calendar fields. */
export function civilFromMs(ms: number): Civil {
  const days = Math.floor(ms / MS_PER_DAY);
  let rem = ms - days * MS_PER_DAY;
  const z = days + 719468;
  const era = Math.floor(z / 146097);
  const doe = z - era * 146097;
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36524) - Math.floor(doe / 146096)) / 365);
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const day = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const month = mp < 10 ? mp + 3 : mp - 9;
  const year = yoe + era * 400 + (month <= 2 ? 1 : 0);
  const hour = Math.floor(rem / MS_PER_HOUR);
  rem -= hour * MS_PER_HOUR;
  const minute = Math.floor(rem / MS_PER_MINUTE);
  rem -= minute * MS_PER_MINUTE;
  const second = Math.floor(rem / 1000);
  return { year, month, day, hour, minute, second, ms: rem - second * 1000 };
}

export function daysInMonth(y: number, m: number): number {
  if (m === 2) return (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0 ? 29 : 28;
  return m === 4 || m === 6 || m === 9 || m === 11 ? 30 : 31;
}

/** Adds calendar months to a local time, clamping the day (Jan 31 + 1 month = Feb 28/29). */
export function addMonths(localMs: number, months: number): number {
  const c = civilFromMs(localMs);
  const total = c.year * 12 + (c.month - 1) + months;
  const y = Math.floor(total / 12);
  const m = total - y * 12 + 1;
  const d = Math.min(c.day, daysInMonth(y, m));
  const timeOfDay = localMs - Math.floor(localMs / MS_PER_DAY) * MS_PER_DAY;
  return daysFromCivil(y, m, d) * MS_PER_DAY + timeOfDay;
}

/** Offsets only change on quarter-hour boundaries in the tz database; cache per quarter hour. */
const QUARTER_HOUR = 15 * MS_PER_MINUTE;

/**
 * One IANA time zone. Offsets come from Intl (no tz data shipped here) and the last
 * answer is cached, because consecutive records are close in time.
 */
/** A zone name Intl does not know. */
export class TimeZoneError extends Error {
  constructor(readonly zoneName: string) {
    super(`"${zoneName}" is not an IANA time zone (e.g. "Asia/Shanghai", "UTC")`);
    this.name = 'TimeZoneError';
  }
}

export class Zone {
  private readonly fmt: Intl.DateTimeFormat | undefined;
  private cachedBucket = Number.NaN;
  private cachedOffset = 0;
  private readonly cache = new Map<number, number>();

  constructor(readonly name: string) {
    if (name === '' || name === 'UTC' || name === 'Etc/UTC' || name === 'Z') {
      this.fmt = undefined;
      return;
    }
    try {
      this.fmt = new Intl.DateTimeFormat('en-US', {
        timeZone: name,
        hourCycle: 'h23',
        year: 'numeric',
        month: 'numeric',
        day: 'numeric',
        hour: 'numeric',
        minute: 'numeric',
        second: 'numeric',
      });
    } catch {
      throw new TimeZoneError(name);
    }
  }

  get isUtc(): boolean {
    return this.fmt === undefined;
  }

  /** Milliseconds to add to UTC to get this zone's wall clock at the instant. */
  offsetMs(epochMs: number): number {
    if (this.fmt === undefined) return 0;
    const bucket = Math.floor(epochMs / QUARTER_HOUR);
    if (bucket === this.cachedBucket) return this.cachedOffset;
    let offset = this.cache.get(bucket);
    if (offset === undefined) {
      offset = this.computeOffset(bucket * QUARTER_HOUR);
      if (this.cache.size >= 4096) this.cache.clear();
      this.cache.set(bucket, offset);
    }
    this.cachedBucket = bucket;
    this.cachedOffset = offset;
    return offset;
  }

  private computeOffset(at: number): number {
    let y = 0,
      mo = 0,
      d = 0,
      h = 0,
      mi = 0,
      s = 0;
    for (const p of this.fmt!.formatToParts(at)) {
      switch (p.type) {
        case 'year':
          y = Number(p.value);
          break;
        case 'month':
          mo = Number(p.value);
          break;
        case 'day':
          d = Number(p.value);
          break;
        case 'hour':
          h = Number(p.value);
          break;
        case 'minute':
          mi = Number(p.value);
          break;
        case 'second':
          s = Number(p.value);
          break;
      }
    }
    const local = daysFromCivil(y, mo, d) * MS_PER_DAY + h * MS_PER_HOUR + mi * MS_PER_MINUTE + s * 1000;
    return local - at;
  }

  toLocal(epochMs: number): number {
    return epochMs + this.offsetMs(epochMs);
  }

  /**
   * The instant of a wall-clock time. In a DST gap the later offset wins (02:30 on a
   * spring-forward night becomes 03:30); in an overlap the earlier instant wins.
   */
  fromLocal(localMs: number): number {
    if (this.fmt === undefined) return localMs;
    // Assumes at most one transition within a day either side, true of the tz database.
    const before = localMs - this.offsetMs(localMs - MS_PER_DAY);
    const after = localMs - this.offsetMs(localMs + MS_PER_DAY);
    const beforeOk = this.toLocal(before) === localMs;
    const afterOk = this.toLocal(after) === localMs;
    if (beforeOk && afterOk) return Math.min(before, after);
    if (afterOk) return after;
    // In a gap neither reading exists; the pre-transition offset moves the time forward.
    return before;
  }
}

const zones = new Map<string, Zone>();
/** Zones are immutable apart from their one-entry cache, so plans may share them. */
export function zone(name: string): Zone {
  let z = zones.get(name);
  if (!z) {
    z = new Zone(name);
    zones.set(name, z);
  }
  return z;
}

const pad2 = (n: number) => (n < 10 ? `0${n}` : String(n));
const pad4 = (n: number) => (n >= 0 && n < 1000 ? String(n).padStart(4, '0') : String(n));

/** ISO-8601 rendering of a local time: `2023-07-14 01:33:00`. */
export function formatLocal(localMs: number): string {
  const c = civilFromMs(localMs);
  return `${pad4(c.year)}-${pad2(c.month)}-${pad2(c.day)} ${pad2(c.hour)}:${pad2(c.minute)}:${pad2(c.second)}`;
}

export { pad2, pad4 };
