/**
 * Schema evolution for JSON sources (mapping.schema_evolution AUTO, the default): what a
 * record the table's schema cannot hold asks of the schema, and the schema that gives it.
 *
 * - A field the table has no column for becomes a new optional column, typed by its value:
 *   boolean, long (any integer: no int→long widening later), double, string (strings, and
 *   objects and arrays kept as JSON text). A null value says nothing about the type, so it
 *   adds nothing yet.
 * - A value beyond its column's type widens the column where Iceberg allows it: int → long,
 *   float → double, decimal(P,S) → decimal(P',S) with P' ≤ 38.
 * - Anything else (a string in a long column, more decimal places than the scale) is an
 *   incompatible change: the record is refused as dirty data with the coercer's reason.
 *
 * The core only detects (SchemaGrowth); the session applies the new schema to its files and
 * plan, and the coordinator commits it with the data (services/commit, catalog AddSchema).
 */
import type { Field, Schema } from '#shared/gen/sluice/v1/types.js';
import { formatPrimitive, type PrimitiveType } from '#shared/iceberg/single-value.js';
import { toDecimal } from './coerce.js';
import { RecordError } from './errors.js';

/** A field of one record the table has no column for (its value not null). */
export interface NewField {
  /** The column name it gets (flattened, `.` → `_`). */
  name: string;
  /** Its path in the record, as errors show it. */
  path: string;
  value: unknown;
}

/** A column whose value in one record needs a wider type. */
export interface Widening {
  column: string;
  to: PrimitiveType;
}

/**
 * What one record asks of the schema; the session applies it and transforms the record
 * again. A RecordError, so a caller that does not evolve schemas (a preview) shows it as the
 * reason the record has no row.
 */
export class SchemaGrowth extends RecordError {
  constructor(
    readonly fields: readonly NewField[],
    readonly widenings: readonly Widening[],
  ) {
    super('schema_change', '');
    this.message = `the record needs a schema change: ${this.describe()}`;
    (this as { detail: string }).detail = this.message;
  }

  /** For logs: `added a (long), b (string); widened n to long`. */
  describe(): string {
    const parts: string[] = [];
    if (this.fields.length > 0)
      parts.push(`added ${this.fields.map((f) => `${f.name} (${formatPrimitive(typeOfNewField(f.value))})`).join(', ')}`);
    if (this.widenings.length > 0) parts.push(`widened ${this.widenings.map((w) => `${w.column} to ${formatPrimitive(w.to)}`).join(', ')}`);
    return parts.join('; ');
  }
}

const LONG: PrimitiveType = { kind: 'long' };
const DOUBLE: PrimitiveType = { kind: 'double' };
const STRING: PrimitiveType = { kind: 'string' };
const BOOLEAN: PrimitiveType = { kind: 'boolean' };
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const FLOAT_MAX = 3.4028234663852886e38;
const MAX_DECIMAL_PRECISION = 38;

/** The column type of a new field's (non-null) value. */
export function typeOfNewField(v: unknown): PrimitiveType {
  switch (typeof v) {
    case 'boolean':
      return BOOLEAN;
    case 'number':
      return Number.isInteger(v) ? LONG : DOUBLE;
    case 'bigint':
      return v >= INT64_MIN && v <= INT64_MAX ? LONG : STRING;
    default:
      return STRING;
  }
}

/** The wider type a column needs for `v`, or null when no permitted widening holds it. */
export function widenedType(type: PrimitiveType, v: unknown): PrimitiveType | null {
  switch (type.kind) {
    case 'int': {
      const n = integerOf(v);
      return n !== null && n >= INT64_MIN && n <= INT64_MAX ? LONG : null;
    }
    case 'float': {
      const n = typeof v === 'number' ? v : typeof v === 'string' ? Number(v.trim()) : Number.NaN;
      return Number.isFinite(n) && Math.abs(n) > FLOAT_MAX ? DOUBLE : null;
    }
    case 'decimal': {
      let unscaled: bigint;
      try {
        unscaled = toDecimal('', v, MAX_DECIMAL_PRECISION, type.scale, '');
      } catch (e) {
        if (e instanceof RecordError) return null;
        throw e;
      }
      const digits = (unscaled < 0n ? -unscaled : unscaled).toString().length;
      return digits > type.precision ? { kind: 'decimal', precision: digits, scale: type.scale } : null;
    }
    default:
      return null;
  }
}

function integerOf(v: unknown): bigint | null {
  if (typeof v === 'bigint') return v;
  if (typeof v === 'number') return Number.isSafeInteger(v) ? BigInt(v) : null;
  if (typeof v === 'string' && /^[+-]?\d+$/.test(v.trim())) return BigInt(v.trim());
  return null;
}

/**
 * The schema after a growth: widened types in place, new optional columns appended with ids
 * after `lastColumnId` (ids are never reused). Two new fields of one name take the first.
 */
export function grownSchema(schema: Schema, lastColumnId: number, growth: SchemaGrowth): { schema: Schema; lastColumnId: number } {
  const widen = new Map(growth.widenings.map((w) => [w.column, w.to]));
  const fields: Field[] = schema.fields.map((f) => {
    const to = widen.get(f.name);
    return to ? { ...f, type: { kind: { $case: 'primitive', value: formatPrimitive(to) } } } : f;
  });
  const names = new Set(fields.map((f) => f.name));
  let lastId = lastColumnId;
  for (const nf of growth.fields) {
    if (names.has(nf.name)) continue;
    names.add(nf.name);
    fields.push({
      id: ++lastId,
      name: nf.name,
      required: false,
      type: { kind: { $case: 'primitive', value: formatPrimitive(typeOfNewField(nf.value)) } },
      doc: '',
    });
  }
  return { schema: { ...schema, fields }, lastColumnId: lastId };
}
