/**
 * Iceberg primitive types as Avro schemas (spec, "Avro" appendix), and conversions between
 * partition values in proto `Literal` form and the JavaScript shapes the Avro codec takes.
 */
import type { Literal } from '../gen/sluice/v1/types.js';
import type { AvroSchema } from './avro/schema.js';
import { invalid } from './errors.js';
import { fromTwosComplementBigEndian, serializeSingleValue, type PrimitiveType } from './single-value.js';

/** Bytes needed for an unscaled decimal of the given precision (Java's TypeUtil.decimalRequiredBytes). */
export function decimalRequiredBytes(precision: number): number {
  let bytes = 1;
  while (2 ** (8 * bytes - 1) - 1 < 10 ** precision - 1) bytes++;
  return bytes;
}

/** The Avro schema of an Iceberg primitive; `uniq` keeps names of fixed types distinct. */
export function avroPrimitive(type: PrimitiveType, uniq: string): AvroSchema {
  switch (type.kind) {
    case 'boolean':
    case 'int':
    case 'long':
    case 'float':
    case 'double':
    case 'string':
      return type.kind;
    case 'binary':
      return 'bytes';
    case 'date':
      return { type: 'int', logicalType: 'date' };
    case 'time':
      return { type: 'long', logicalType: 'time-micros' };
    case 'timestamp':
      return { type: 'long', logicalType: 'timestamp-micros', 'adjust-to-utc': false };
    case 'timestamptz':
      return { type: 'long', logicalType: 'timestamp-micros', 'adjust-to-utc': true };
    case 'uuid':
      return { type: 'fixed', name: `uuid_fixed_${uniq}`, size: 16, logicalType: 'uuid' };
    case 'fixed':
      return { type: 'fixed', name: `fixed_${uniq}`, size: type.length };
    case 'decimal':
      return {
        type: 'fixed',
        name: `decimal_${uniq}`,
        size: decimalRequiredBytes(type.precision),
        logicalType: 'decimal',
        precision: type.precision,
        scale: type.scale,
      };
  }
}

export type PartitionScalar = boolean | number | string | Uint8Array | null;

function literalNumber(lit: Literal, field: string): number {
  const k = lit.kind;
  if (k && (k.$case === 'intValue' || k.$case === 'longValue' || k.$case === 'floatValue' || k.$case === 'doubleValue')) return k.value;
  throw invalid(`partition value for ${field} must be numeric, got ${k?.$case}`, field);
}

/** Sign-extends a two's-complement big-endian value to `size` bytes (decimal as Avro fixed). */
function signExtend(bytes: Uint8Array, size: number, field: string): Uint8Array {
  if (bytes.length === size) return bytes;
  if (bytes.length > size) throw invalid(`decimal partition value for ${field} needs ${bytes.length} bytes, more than ${size}`, field);
  const out = new Uint8Array(size).fill(bytes.length > 0 && bytes[0] & 0x80 ? 0xff : 0);
  out.set(bytes, size - bytes.length);
  return out;
}

/** A partition Literal as the value the partition's Avro field expects (null when unset). */
export function literalToAvro(lit: Literal | undefined, type: PrimitiveType, field: string): PartitionScalar {
  const k = lit?.kind;
  if (!k) return null;
  switch (type.kind) {
    case 'boolean':
      if (k.$case !== 'booleanValue') throw invalid(`partition value for ${field} must be a boolean`, field);
      return k.value;
    case 'int':
    case 'date':
    case 'long':
    case 'time':
    case 'timestamp':
    case 'timestamptz': {
      const n = literalNumber(lit!, field);
      if (!Number.isInteger(n)) throw invalid(`partition value for ${field} must be an integer, got ${n}`, field);
      return n;
    }
    case 'float':
    case 'double':
      return literalNumber(lit!, field);
    case 'string':
      if (k.$case !== 'stringValue') throw invalid(`partition value for ${field} must be a string`, field);
      return k.value;
    case 'uuid':
      if (k.$case === 'stringValue') return Buffer.from(k.value.replace(/-/g, ''), 'hex');
      if (k.$case === 'binaryValue' && k.value.length === 16) return k.value;
      throw invalid(`partition value for ${field} must be a UUID`, field);
    case 'fixed':
    case 'binary':
      if (k.$case !== 'binaryValue') throw invalid(`partition value for ${field} must be bytes`, field);
      if (type.kind === 'fixed' && k.value.length !== type.length)
        throw invalid(`partition value for ${field} must be ${type.length} bytes`, field);
      return k.value;
    case 'decimal':
      if (k.$case !== 'binaryValue') throw invalid(`partition value for ${field} must be the unscaled decimal as bytes`, field);
      return signExtend(k.value, decimalRequiredBytes(type.precision), field);
  }
}

/** The Avro value back as a Literal of the case that matches the partition type. */
export function avroToLiteral(value: unknown, type: PrimitiveType): Literal {
  if (value === null || value === undefined) return { kind: undefined };
  switch (type.kind) {
    case 'boolean':
      return { kind: { $case: 'booleanValue', value: value as boolean } };
    case 'int':
    case 'date':
      return { kind: { $case: 'intValue', value: value as number } };
    case 'long':
    case 'time':
    case 'timestamp':
    case 'timestamptz':
      return { kind: { $case: 'longValue', value: value as number } };
    case 'float':
      return { kind: { $case: 'floatValue', value: value as number } };
    case 'double':
      return { kind: { $case: 'doubleValue', value: value as number } };
    case 'string':
      return { kind: { $case: 'stringValue', value: value as string } };
    default:
      return { kind: { $case: 'binaryValue', value: Buffer.from(value as Uint8Array) } };
  }
}

/** Orders two non-null partition values of one type the way Iceberg compares them. */
export function compareScalars(a: PartitionScalar, b: PartitionScalar, type: PrimitiveType): number {
  switch (type.kind) {
    case 'string':
      return Buffer.compare(Buffer.from(a as string, 'utf8'), Buffer.from(b as string, 'utf8'));
    case 'decimal': {
      const x = fromTwosComplementBigEndian(a as Uint8Array);
      const y = fromTwosComplementBigEndian(b as Uint8Array);
      return x < y ? -1 : x > y ? 1 : 0;
    }
    case 'uuid':
    case 'fixed':
    case 'binary':
      return Buffer.compare(a as Uint8Array, b as Uint8Array);
    case 'boolean':
      return Number(a) - Number(b);
    default:
      return (a as number) < (b as number) ? -1 : (a as number) > (b as number) ? 1 : 0;
  }
}

/** Single-value serialization of a partition value (for manifest-list field summaries). */
export function scalarBound(value: PartitionScalar, type: PrimitiveType): Uint8Array {
  switch (type.kind) {
    case 'decimal':
      return serializeSingleValue(type, fromTwosComplementBigEndian(value as Uint8Array));
    case 'uuid': {
      const h = Buffer.from(value as Uint8Array).toString('hex');
      return serializeSingleValue(type, `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`);
    }
    default:
      return serializeSingleValue(type, value as boolean | number | string | Uint8Array);
  }
}
