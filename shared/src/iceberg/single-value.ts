/**
 * Iceberg single-value binary serialization (spec, Appendix D), used for the lower and
 * upper bounds of manifest column statistics and reusable for partition summaries.
 *
 *   boolean            1 byte, 0x00 false / 0x01 true
 *   int, date          4 bytes little-endian (date: days since 1970-01-01)
 *   long               8 bytes little-endian
 *   time, timestamp(tz) 8 bytes little-endian microseconds (time: since midnight)
 *   float, double      IEEE 754, 4 / 8 bytes little-endian
 *   decimal(P,S)       unscaled value, two's-complement big-endian, minimum number of bytes
 *   string             UTF-8 bytes, no length prefix
 *   uuid               16 bytes big-endian
 *   fixed[L], binary   the bytes themselves
 *
 * Values cross this module in the shapes the transformation core produces: numbers for
 * int/date/float/double, number or bigint for 64-bit integers, bigint (unscaled) for
 * decimals, strings for string/uuid, Uint8Array for binary/fixed.
 */

export type PrimitiveType =
  | { kind: 'boolean' }
  | { kind: 'int' }
  | { kind: 'long' }
  | { kind: 'float' }
  | { kind: 'double' }
  | { kind: 'decimal'; precision: number; scale: number }
  | { kind: 'date' }
  | { kind: 'time' }
  | { kind: 'timestamp' }
  | { kind: 'timestamptz' }
  | { kind: 'string' }
  | { kind: 'uuid' }
  | { kind: 'fixed'; length: number }
  | { kind: 'binary' };

export type SingleValue = boolean | number | bigint | string | Uint8Array;

export class UnknownTypeError extends Error {
  constructor(readonly type: string) {
    super(`"${type}" is not an Iceberg primitive type`);
    this.name = 'UnknownTypeError';
  }
}

const SIMPLE = new Set([
  'boolean',
  'int',
  'long',
  'float',
  'double',
  'date',
  'time',
  'timestamp',
  'timestamptz',
  'string',
  'uuid',
  'binary',
]);
const DECIMAL = /^decimal\(\s*(\d+)\s*,\s*(\d+)\s*\)$/;
const FIXED = /^fixed\[\s*(\d+)\s*\]$/;

/** Parses an Iceberg primitive type string such as `long`, `decimal(10,2)` or `fixed[16]`. */
export function parsePrimitive(type: string): PrimitiveType {
  const t = type.trim().toLowerCase();
  if (SIMPLE.has(t)) return { kind: t } as PrimitiveType;
  const d = DECIMAL.exec(t);
  if (d) {
    const precision = Number(d[1]);
    const scale = Number(d[2]);
    if (precision < 1 || precision > 38 || scale > precision) throw new UnknownTypeError(type);
    return { kind: 'decimal', precision, scale };
  }
  const f = FIXED.exec(t);
  if (f && Number(f[1]) > 0) return { kind: 'fixed', length: Number(f[1]) };
  throw new UnknownTypeError(type);
}

/** The canonical spelling of a primitive type, as written in Iceberg metadata. */
export function formatPrimitive(t: PrimitiveType): string {
  if (t.kind === 'decimal') return `decimal(${t.precision}, ${t.scale})`;
  if (t.kind === 'fixed') return `fixed[${t.length}]`;
  return t.kind;
}

export function serializeSingleValue(type: PrimitiveType, value: SingleValue): Buffer {
  switch (type.kind) {
    case 'boolean':
      return Buffer.from([value ? 1 : 0]);
    case 'int':
    case 'date': {
      const b = Buffer.allocUnsafe(4);
      b.writeInt32LE(Number(value), 0);
      return b;
    }
    case 'long':
    case 'time':
    case 'timestamp':
    case 'timestamptz': {
      const b = Buffer.allocUnsafe(8);
      b.writeBigInt64LE(typeof value === 'bigint' ? value : BigInt(value as number), 0);
      return b;
    }
    case 'float': {
      const b = Buffer.allocUnsafe(4);
      b.writeFloatLE(value as number, 0);
      return b;
    }
    case 'double': {
      const b = Buffer.allocUnsafe(8);
      b.writeDoubleLE(value as number, 0);
      return b;
    }
    case 'decimal':
      return twosComplementBigEndian(typeof value === 'bigint' ? value : BigInt(value as number));
    case 'string':
      return Buffer.from(value as string, 'utf8');
    case 'uuid':
      return uuidBytes(value as string);
    case 'fixed':
    case 'binary':
      return Buffer.from(value as Uint8Array);
  }
}

export function deserializeSingleValue(type: PrimitiveType, bytes: Uint8Array): SingleValue {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  switch (type.kind) {
    case 'boolean':
      return b[0] !== 0;
    case 'int':
    case 'date':
      return b.readInt32LE(0);
    case 'long':
    case 'time':
    case 'timestamp':
    case 'timestamptz':
      return b.readBigInt64LE(0);
    case 'float':
      return b.readFloatLE(0);
    case 'double':
      return b.readDoubleLE(0);
    case 'decimal':
      return fromTwosComplementBigEndian(b);
    case 'string':
      return b.toString('utf8');
    case 'uuid': {
      const h = b.toString('hex');
      return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
    }
    case 'fixed':
    case 'binary':
      return new Uint8Array(b);
  }
}

/** Minimum-length two's-complement big-endian bytes of a bigint (0 → 0x00, -1 → 0xff, 128 → 0x0080). */
export function twosComplementBigEndian(v: bigint): Buffer {
  const out: number[] = [];
  let x = v;
  for (;;) {
    const byte = Number(x & 0xffn);
    out.push(byte);
    x >>= 8n;
    // Done once the remaining value is pure sign extension of the byte just written.
    if ((x === 0n && (byte & 0x80) === 0) || (x === -1n && (byte & 0x80) !== 0)) break;
  }
  return Buffer.from(out.reverse());
}

export function fromTwosComplementBigEndian(b: Uint8Array): bigint {
  if (b.length === 0) return 0n;
  let v = 0n;
  for (const byte of b) v = (v << 8n) | BigInt(byte);
  if ((b[0] & 0x80) !== 0) v -= 1n << BigInt(8 * b.length);
  return v;
}

function uuidBytes(uuid: string): Buffer {
  const hex = uuid.replace(/-/g, '');
  if (!/^[0-9a-fA-F]{32}$/.test(hex)) throw new Error(`"${uuid}" is not a UUID`);
  return Buffer.from(hex, 'hex');
}
