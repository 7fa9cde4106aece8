/**
 * Iceberg partition transforms (spec, "Partition Transforms"): identity, year, month,
 * day, hour, bucket[N], truncate[W], void. Applied to row values in the coerce.ts shapes.
 * year/month/hour results are ints counted from 1970; day is a date (days since 1970).
 */
import { type PrimitiveType, twosComplementBigEndian } from '../../../../shared/src/iceberg/single-value.js';
import type { RowValue } from './coerce.js';
import { SpecError } from './errors.js';
import { murmur3 } from './murmur3.js';
import { civilFromMs, MS_PER_DAY } from '../../../../shared/src/time.js';

export type Transform =
  | { kind: 'identity' }
  | { kind: 'year' }
  | { kind: 'month' }
  | { kind: 'day' }
  | { kind: 'hour' }
  | { kind: 'bucket'; n: number }
  | { kind: 'truncate'; width: number }
  | { kind: 'void' };

const PARAM = /^(bucket|truncate)\[\s*(\d+)\s*\]$/;

export function parseTransform(s: string): Transform {
  const t = s.trim().toLowerCase();
  if (t === 'identity' || t === 'year' || t === 'month' || t === 'day' || t === 'hour' || t === 'void') return { kind: t };
  const m = PARAM.exec(t);
  if (m && Number(m[2]) > 0) return m[1] === 'bucket' ? { kind: 'bucket', n: Number(m[2]) } : { kind: 'truncate', width: Number(m[2]) };
  throw new SpecError(`"${s}" is not a partition transform (identity, year, month, day, hour, bucket[N], truncate[W], void)`, 'transform');
}

/** The Iceberg type of a transform's result, or a SpecError when the source type does not fit. */
export function resultType(t: Transform, source: PrimitiveType, column: string): PrimitiveType {
  const k = source.kind;
  const temporal = k === 'date' || k === 'timestamp' || k === 'timestamptz';
  switch (t.kind) {
    case 'identity':
    case 'void':
      return source;
    case 'year':
    case 'month':
      if (temporal) return { kind: 'int' };
      break;
    case 'day':
      if (temporal) return { kind: 'date' };
      break;
    case 'hour':
      if (k === 'timestamp' || k === 'timestamptz') return { kind: 'int' };
      break;
    case 'bucket':
      if (k !== 'boolean' && k !== 'float' && k !== 'double') return { kind: 'int' };
      break;
    case 'truncate':
      if (k === 'int' || k === 'long' || k === 'decimal' || k === 'string' || k === 'binary') return source;
      break;
  }
  throw new SpecError(`partition transform ${t.kind} does not apply to column "${column}" of type ${k}`, column);
}

const MICROS_PER_HOUR = 3_600_000_000;
const MICROS_PER_DAY = 86_400_000_000;

/** Applies a transform; null stays null (void always gives null). */
export function applyTransform(t: Transform, source: PrimitiveType, v: RowValue): RowValue {
  if (v === null || t.kind === 'void') return null;
  switch (t.kind) {
    case 'identity':
      return v;
    case 'year':
      return civilOf(source, v as number).year - 1970;
    case 'month': {
      const c = civilOf(source, v as number);
      return (c.year - 1970) * 12 + c.month - 1;
    }
    case 'day':
      return source.kind === 'date' ? (v as number) : Math.floor((v as number) / MICROS_PER_DAY);
    case 'hour':
      return Math.floor((v as number) / MICROS_PER_HOUR);
    case 'bucket':
      return (murmur3(hashBytes(source, v)) & 0x7fffffff) % t.n;
    case 'truncate':
      return truncate(source, v, t.width);
  }
}

function civilOf(source: PrimitiveType, v: number) {
  return civilFromMs(source.kind === 'date' ? v * MS_PER_DAY : Math.floor(v / 1000));
}

const scratch = Buffer.alloc(8);

/** Bytes hashed for bucket[N]: ints, longs, dates, times and timestamps as 8-byte little-endian longs. */
export function hashBytes(source: PrimitiveType, v: RowValue): Uint8Array {
  switch (source.kind) {
    case 'int':
    case 'long':
    case 'date':
    case 'time':
    case 'timestamp':
    case 'timestamptz':
      scratch.writeBigInt64LE(typeof v === 'bigint' ? v : BigInt(v as number), 0);
      return scratch;
    case 'decimal':
      return twosComplementBigEndian(v as bigint);
    case 'string':
      return Buffer.from(v as string, 'utf8');
    case 'uuid':
      return Buffer.from((v as string).replaceAll('-', ''), 'hex');
    default:
      return v as Uint8Array;
  }
}

function truncate(source: PrimitiveType, v: RowValue, w: number): RowValue {
  switch (source.kind) {
    case 'int':
      return (v as number) - ((((v as number) % w) + w) % w);
    case 'long':
      if (typeof v === 'bigint') {
        const bw = BigInt(w);
        return v - (((v % bw) + bw) % bw);
      }
      return (v as number) - ((((v as number) % w) + w) % w);
    case 'decimal': {
      const bw = BigInt(w);
      const u = v as bigint;
      return u - (((u % bw) + bw) % bw);
    }
    case 'string': {
      // Truncate by code points, never splitting a surrogate pair.
      const s = v as string;
      if (s.length <= w) return s;
      return Array.from(s).slice(0, w).join('');
    }
    default:
      return (v as Uint8Array).subarray(0, w);
  }
}
