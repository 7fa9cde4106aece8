/**
 * Coercion of source values (JSON values, CSV/TEXT strings, raw bytes, Kafka metadata)
 * into Iceberg primitive types. A coercer is built once per column per plan, so the
 * per-record work is a type switch and the conversion itself.
 *
 * Row value shapes (what the Parquet writer receives):
 *   boolean → boolean; int, date (days), time (µs), float, double → number;
 *   long → number, or bigint beyond ±2^53; timestamp/timestamptz → number (µs since epoch);
 *
 * A JSON number that JSON.parse may have rounded (an integer beyond ±2^53) is never stored
 * in a long, decimal or string column: InexactNumber makes the record be parsed again
 * exactly (decode.ts), and the coercer then receives a bigint.
 *   decimal(P,S) → bigint (unscaled); string, uuid → string; binary, fixed → Uint8Array.
 */
import { formatPrimitive, type PrimitiveType } from '#shared/iceberg/single-value.js';
import { isExactJson, stringifyExact } from './decode.js';
import { InexactNumber, RecordError, notA, outOfRange } from './errors.js';
import { daysFromCivil, daysInMonth, MS_PER_DAY, MS_PER_HOUR, MS_PER_MINUTE, type Zone } from '#shared/time.js';

export type RowValue = null | boolean | number | bigint | string | Uint8Array;
export type Coercer = (v: unknown) => RowValue;

/** How numbers are read for time types: epoch units; default epoch milliseconds. */
export type EpochUnit = 'epoch_s' | 'epoch_ms' | 'epoch_us';

export interface CoerceOptions {
  column: string;
  type: PrimitiveType;
  required: boolean;
  /** Zone for wall-clock strings without an offset, and for timestamp (without zone) from instants. */
  zone: Zone;
  epochUnit: EpochUnit;
}

const INT_RE = /^[+-]?\d+$/;
const NUM_RE = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;
const DEC_RE = /^([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/;
const DATE_RE = /^(\d{4})-?(\d{2})-?(\d{2})$/;
const TS_RE = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?)?\s*(Z|z|UTC|[+-]\d{2}(?::?\d{2})?)?$/;
const TIME_RE = /^(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?$/;
const UUID_RE = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;
const B64_RE = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

const POW10 = Array.from({ length: 39 }, (_, i) => 10 ** i);
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

/** Builds the coercer of one column. Null handling is shared: optional → null, required → error. */
export function coercer(o: CoerceOptions): Coercer {
  const convert = converter(o);
  const { column, required } = o;
  return (v) => {
    if (v === null || v === undefined) {
      if (required) throw new RecordError('missing_field', `column "${column}" is required but the record has no value for it`, column);
      return null;
    }
    return convert(v);
  };
}

function converter(o: CoerceOptions): (v: unknown) => RowValue {
  const { column, type } = o;
  const name = formatPrimitive(type);
  switch (type.kind) {
    case 'string':
      return (v) => toText(column, v);
    case 'boolean':
      return (v) => toBoolean(column, v);
    case 'int':
      return (v) => toInt(column, v);
    case 'long':
      return (v) => toLong(column, v);
    case 'float':
      return (v) => {
        const d = toDouble(column, v, 'float');
        const f = Math.fround(d);
        if (f === d || !Number.isFinite(d) || Number.isFinite(f)) return f;
        throw outOfRange(column, v, 'float', 'beyond 32-bit floating point');
      };
    case 'double':
      return (v) => toDouble(column, v, 'double');
    case 'decimal':
      return (v) => toDecimal(column, v, type.precision, type.scale, name);
    case 'date':
      return (v) => toDate(column, v);
    case 'time':
      return (v) => toTime(column, v);
    case 'timestamp':
      return (v) => toTimestamp(column, v, o.zone, o.epochUnit, false);
    case 'timestamptz':
      return (v) => toTimestamp(column, v, o.zone, o.epochUnit, true);
    case 'uuid':
      return (v) => {
        if (typeof v === 'string' && UUID_RE.test(v)) return v.toLowerCase();
        throw notA(column, v, 'uuid');
      };
    case 'binary':
      return (v) => toBytes(column, v, -1);
    case 'fixed':
      return (v) => toBytes(column, v, type.length);
  }
}

/** 16 digits in a row: JSON text that may hold an integer JSON.parse rounded. */
const LONG_DIGITS = /\d{16}/;

/** Strings stay; numbers and booleans print; nested JSON is kept as JSON text. */
export function toText(column: string, v: unknown): string {
  switch (typeof v) {
    case 'string':
      return v;
    case 'number':
      if (!Number.isSafeInteger(v) && Number.isInteger(v)) throw new InexactNumber(column, v, 'string');
      return String(v);
    case 'boolean':
    case 'bigint':
      return String(v);
    case 'object': {
      if (v instanceof Uint8Array) return Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('utf8');
      let text: string;
      try {
        text = JSON.stringify(v);
      } catch (e) {
        // Exactly parsed JSON has BigInts, which JSON.stringify refuses; otherwise only a
        // stack overflow can make JSON.stringify of parsed JSON fail.
        if (e instanceof TypeError && v !== null && isExactJson(v)) return stringifyExact(v);
        throw new RecordError('nesting_too_deep', `column "${column}": the JSON value is nested too deeply to store`, column);
      }
      if (LONG_DIGITS.test(text) && v !== null && !isExactJson(v)) throw new InexactNumber(column, v, 'string');
      return text;
    }
    default:
      throw notA(column, v, 'string');
  }
}

function toBoolean(column: string, v: unknown): boolean {
  if (typeof v === 'boolean') return v;
  if (typeof v === 'string') {
    const s = v.trim().toLowerCase();
    if (s === 'true' || s === '1') return true;
    if (s === 'false' || s === '0') return false;
  } else if (v === 0 || v === 1) return v === 1;
  throw notA(column, v, 'boolean');
}

function toInt(column: string, v: unknown): number {
  let n: number;
  if (typeof v === 'number') {
    if (!Number.isSafeInteger(v) && Number.isInteger(v)) throw new InexactNumber(column, v, 'int'); // to name it exactly
    n = v;
  } else if (typeof v === 'string' && INT_RE.test(v.trim())) n = Number(v.trim());
  else if (typeof v === 'bigint') n = Number(v);
  else throw notA(column, v, 'int');
  if (!Number.isInteger(n)) throw notA(column, v, 'int');
  if (n < -2147483648 || n > 2147483647) throw outOfRange(column, v, 'int', 'beyond 32 bits');
  return n;
}

/**
 * 64-bit integers. A JSON number beyond ±2^53 was rounded by JSON.parse: the record is read
 * again exactly (InexactNumber) and its integer literals arrive here as bigints.
 */
function toLong(column: string, v: unknown): number | bigint {
  if (typeof v === 'number') {
    if (Number.isSafeInteger(v)) return v;
    if (!Number.isInteger(v)) throw notA(column, v, 'long');
    throw new InexactNumber(column, v, 'long');
  }
  if (typeof v === 'bigint') return checkedBigLong(column, v);
  if (typeof v === 'string') {
    const s = v.trim();
    if (!INT_RE.test(s)) throw notA(column, v, 'long');
    // 15 characters hold no integer beyond ±2^53 (which has 16 digits): Number is exact there.
    if (s.length <= 15) return Number(s);
    const big = checkedBigLong(column, BigInt(s));
    return big >= -9007199254740991n && big <= 9007199254740991n ? Number(big) : big;
  }
  throw notA(column, v, 'long');
}

function checkedBigLong(column: string, v: bigint): bigint {
  if (v < INT64_MIN || v > INT64_MAX) throw outOfRange(column, v, 'long', 'beyond int64');
  return v;
}

function toDouble(column: string, v: unknown, name: string): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'string') {
    const s = v.trim();
    if (NUM_RE.test(s)) return Number(s);
    // JSON has no NaN or infinities; accepted in string form, counted as NaN in the stats.
    if (s === 'NaN') return Number.NaN;
    if (s === 'Infinity' || s === '+Infinity') return Number.POSITIVE_INFINITY;
    if (s === '-Infinity') return Number.NEGATIVE_INFINITY;
  }
  if (typeof v === 'bigint') return Number(v);
  throw notA(column, v, name);
}

/** Exact decimal parsing into the unscaled value; more fractional digits than the scale is refused, not rounded. */
export function toDecimal(column: string, v: unknown, precision: number, scale: number, name: string): bigint {
  if (typeof v === 'number') {
    if (!Number.isSafeInteger(v) && Number.isInteger(v)) throw new InexactNumber(column, v, name);
    // Fast path for JSON numbers: scaled, the result must be an integer to within the
    // rounding of the multiplication itself; anything else takes the exact text path.
    const x = v * POW10[scale];
    const r = Math.round(x);
    if (Math.abs(x) < 1e15 && Math.abs(x - r) <= Math.abs(x) * 8 * Number.EPSILON && Math.abs(r) < POW10[precision]) return BigInt(r);
  }
  let s: string;
  if (typeof v === 'string') s = v.trim();
  else if (typeof v === 'number' && Number.isFinite(v)) s = String(v);
  else if (typeof v === 'bigint') s = v.toString();
  else throw notA(column, v, name);
  const m = DEC_RE.exec(s);
  if (!m || (m[2] === '' && (m[3] === undefined || m[3] === ''))) throw notA(column, v, name);
  let intPart = m[2];
  let frac = m[3] ?? '';
  const exp = m[4] ? Number(m[4]) : 0;
  if (exp > 0) {
    const shift = frac.padEnd(exp, '0');
    intPart += shift.slice(0, exp);
    frac = shift.slice(exp);
  } else if (exp < 0) {
    const padded = intPart.padStart(-exp, '0');
    frac = padded.slice(padded.length + exp) + frac;
    intPart = padded.slice(0, padded.length + exp);
  }
  const extra = frac.slice(scale);
  if (/[1-9]/.test(extra)) throw notA(column, v, name, `more than ${scale} decimal places`);
  const digits = (intPart + frac.slice(0, scale).padEnd(scale, '0')).replace(/^0+/, '');
  if (digits.length > precision) throw outOfRange(column, v, name, `more than ${precision} digits`);
  const unscaled = digits === '' ? 0n : BigInt(digits);
  return m[1] === '-' ? -unscaled : unscaled;
}

/** `2023-07-14` or `20230714`; an integer is days since 1970-01-01. */
function toDate(column: string, v: unknown): number {
  if (typeof v === 'number' && Number.isInteger(v)) return v;
  if (typeof v === 'string') {
    const m = DATE_RE.exec(v.trim());
    if (m) {
      const y = Number(m[1]),
        mo = Number(m[2]),
        d = Number(m[3]);
      if (mo >= 1 && mo <= 12 && d >= 1 && d <= daysInMonth(y, mo)) return daysFromCivil(y, mo, d);
    }
  }
  throw notA(column, v, 'date', 'expected yyyy-mm-dd');
}

function toTime(column: string, v: unknown): number {
  if (typeof v === 'string') {
    const m = TIME_RE.exec(v.trim());
    if (m) {
      const h = Number(m[1]),
        mi = Number(m[2]),
        s = Number(m[3] ?? 0);
      if (h < 24 && mi < 60 && s < 60) return ((h * 60 + mi) * 60 + s) * 1_000_000 + fractionMicros(m[4]);
    }
  }
  throw notA(column, v, 'time', 'expected hh:mm[:ss[.ffffff]]');
}

function fractionMicros(f: string | undefined): number {
  return f ? Number(f.padEnd(6, '0').slice(0, 6)) : 0;
}

/** Microseconds in one unit of each epoch format. */
export const EPOCH_TO_MICROS: Record<EpochUnit, number> = { epoch_s: 1_000_000, epoch_ms: 1000, epoch_us: 1 };

/**
 * Timestamps. An instant (a number in the column's epoch unit, or a string with an
 * offset) is kept as is for timestamptz and shown on the zone's wall clock for timestamp.
 * A wall-clock string without offset is read in the zone for timestamptz and kept as is
 * for timestamp.
 */
function toTimestamp(column: string, v: unknown, zone: Zone, unit: EpochUnit, withZone: boolean): number {
  const typeName = withZone ? 'timestamptz' : 'timestamp';
  let instantMicros: number;
  if (typeof v === 'number' || typeof v === 'bigint' || (typeof v === 'string' && INT_RE.test(v.trim()))) {
    const n = typeof v === 'string' ? Number(v.trim()) : Number(v);
    if (!Number.isFinite(n)) throw notA(column, v, typeName);
    instantMicros = Math.round(n * EPOCH_TO_MICROS[unit]);
  } else if (typeof v === 'string') {
    const m = TS_RE.exec(v.trim());
    if (!m) throw notA(column, v, typeName, 'expected yyyy-mm-dd[ hh:mm[:ss[.ffffff]]][offset]');
    const y = Number(m[1]),
      mo = Number(m[2]),
      d = Number(m[3]);
    const h = Number(m[4] ?? 0),
      mi = Number(m[5] ?? 0),
      s = Number(m[6] ?? 0);
    if (mo < 1 || mo > 12 || d < 1 || d > daysInMonth(y, mo) || h > 23 || mi > 59 || s > 59)
      throw notA(column, v, typeName, 'no such date or time');
    const localMs = daysFromCivil(y, mo, d) * MS_PER_DAY + h * MS_PER_HOUR + mi * MS_PER_MINUTE + s * 1000;
    const micros = fractionMicros(m[7]);
    const offset = m[8];
    if (offset === undefined) {
      if (!withZone) return localMs * 1000 + micros;
      instantMicros = zone.fromLocal(localMs) * 1000 + micros;
    } else {
      instantMicros = (localMs - offsetMs(offset)) * 1000 + micros;
    }
  } else {
    throw notA(column, v, typeName);
  }
  if (!Number.isSafeInteger(instantMicros)) throw outOfRange(column, v, typeName, 'beyond the representable range');
  if (withZone || zone.isUtc) return instantMicros;
  const ms = Math.floor(instantMicros / 1000);
  return instantMicros + zone.offsetMs(ms) * 1000;
}

function offsetMs(o: string): number {
  if (o === 'Z' || o === 'z' || o === 'UTC') return 0;
  const sign = o[0] === '-' ? -1 : 1;
  const digits = o.slice(1).replace(':', '');
  const h = Number(digits.slice(0, 2));
  const m = digits.length > 2 ? Number(digits.slice(2, 4)) : 0;
  return sign * (h * MS_PER_HOUR + m * MS_PER_MINUTE);
}

/** Raw bytes stay; JSON strings are read as base64 (the JSON convention for bytes). */
function toBytes(column: string, v: unknown, length: number): Uint8Array {
  const typeName = length < 0 ? 'binary' : `fixed[${length}]`;
  let bytes: Uint8Array;
  if (v instanceof Uint8Array) bytes = v;
  else if (typeof v === 'string' && B64_RE.test(v)) bytes = Buffer.from(v, 'base64');
  else throw notA(column, v, typeName, typeof v === 'string' ? 'expected base64' : undefined);
  if (length >= 0 && bytes.length !== length) throw notA(column, v, typeName, `${bytes.length} bytes`);
  return bytes;
}
