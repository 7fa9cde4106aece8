/**
 * Iceberg partition transforms (spec, "Partition Transforms"): identity, year, month,
 * day, hour, bucket[N], truncate[W], void. Applied to row values in the coerce.ts shapes.
 * year/month/hour results are ints counted from 1970; day is a date (days since 1970).
 */
import { type PrimitiveType, twosComplementBigEndian } from '#shared/iceberg/single-value.js';
import type { RowValue } from './coerce.js';
import { IcebergError } from '#shared/iceberg/errors.js';
import { canTransform, formatTransform, parseTransform, resultType, type Transform } from '#shared/iceberg/partition.js';
import { SpecError } from './errors.js';
import { murmur3 } from './murmur3.js';
import { civilFromMs, MS_PER_DAY } from '#shared/time.js';

export type { Transform };

/**
 * The shared Iceberg module parses transforms and decides where they apply; here a spec that
 * does not fit its column is a SpecError naming the column, like every other spec problem.
 */
export function compileTransform(text: string, source: PrimitiveType, column: string): { transform: Transform; type: PrimitiveType } {
  let transform: Transform;
  try {
    transform = parseTransform(text);
  } catch (err) {
    if (err instanceof IcebergError) throw new SpecError(err.message, 'transform');
    throw err;
  }
  if (!canTransform(transform, source)) {
    throw new SpecError(
      `partition transform ${formatTransform(transform)} does not apply to column "${column}" of type ${source.kind}`,
      column,
    );
  }
  return { transform, type: resultType(transform, source) };
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
