/**
 * Partition values, two ways:
 * - a partition column such as `pt` filled from record time, processing time or a field,
 *   at DAY/HOUR/MINUTE on a zone's wall clock, or rendered by a scheduling expression
 *   (seed 001/002). The default rendering is seed 002's: `07-13-2023 21:13` for MINUTE,
 *   `07-13-2023 21` for HOUR, `07-13-2023` for DAY;
 * - the table's Iceberg partition spec applied to the row (transforms.ts), giving the
 *   tuple a data file is reported with and the path it is written under.
 */
import {
  Granularity,
  type KafkaRecord,
  type Literal,
  type PartitionBy,
  type PartitionSpec,
  type PartitionValue,
  TimeSource,
} from '#shared/gen/sluice/v1/types.js';
import { type PrimitiveType, serializeSingleValue } from '#shared/iceberg/single-value.js';
import type { RowValue } from './coerce.js';
import { RecordError, SpecError, specZone } from './errors.js';
import type { RecordContext, Row } from './row.js';
import { compileExpression, type CompiledExpression } from './schedule.js';
import type { Column } from './schema.js';
import { civilFromMs, MS_PER_DAY, pad2, pad4, type Zone } from '#shared/time.js';
import { applyTransform, compileTransform, type Transform } from './transforms.js';

export interface PartitionColumn {
  column: string;
  index: number;
  value(rec: KafkaRecord, row: Row, ctx: RecordContext): string | null;
}

const GRANULARITY_FORMAT: Record<string, string> = {
  [Granularity.GRANULARITY_DAY]: '$[mm-dd-yyyy]',
  [Granularity.GRANULARITY_HOUR]: '$[mm-dd-yyyy hh24]',
  [Granularity.GRANULARITY_MINUTE]: '$[mm-dd-yyyy hh24:mi]',
};

export function compilePartitionBy(pb: PartitionBy, defaultZone: Zone, columns: readonly Column[]): PartitionColumn {
  const column = pb.column || 'pt';
  const target = columns.find((c) => c.name === column);
  if (!target) throw new SpecError(`partition_by names column "${column}", which the table does not have`, column);
  // A scheduled instance's partition: one value, rendered by the scheduler, for every row.
  if (pb.value) {
    const value = pb.value;
    return { column, index: target.index, value: () => value };
  }
  const tz = pb.timeZone ? specZone(pb.timeZone, 'partition_by.time_zone') : defaultZone;
  const granularity = pb.granularity === Granularity.GRANULARITY_UNSPECIFIED ? Granularity.GRANULARITY_HOUR : pb.granularity;
  const fmtSource = pb.expression || GRANULARITY_FORMAT[granularity];
  if (!fmtSource)
    throw new SpecError(`partition_by granularity "${pb.granularity}" is not DAY, HOUR or MINUTE`, 'partition_by.granularity');
  const render: CompiledExpression = compileExpression(fmtSource, tz);

  if (pb.field) {
    const src = columns.find((c) => c.name === pb.field);
    if (!src) throw new SpecError(`partition_by field "${pb.field}" is not a column of the table`, pb.field);
    if (src.name === column) throw new SpecError(`partition_by field "${pb.field}" is the partition column itself`, pb.field);
    const timeOf = instantOf(src.type);
    const timed = timeOf !== null && (pb.expression !== '' || pb.granularity !== Granularity.GRANULARITY_UNSPECIFIED);
    return {
      column,
      index: target.index,
      value(_rec, row) {
        const v = row[src.index];
        if (v === null || v === undefined) return null;
        if (!timed) return String(v);
        return render.render(timeOf!(v));
      },
    };
  }

  const source = pb.timeSource;
  if (source === TimeSource.TIME_SOURCE_PROCESSING_TIME) {
    return { column, index: target.index, value: (_r, _row, ctx) => render.render(ctx.nowMs) };
  }
  if (source === TimeSource.TIME_SOURCE_UNSPECIFIED && pb.expression) {
    // An expression without a time source is a bounded run's partition: the scheduled time.
    return { column, index: target.index, value: (_r, _row, ctx) => render.render(ctx.scheduledMs ?? ctx.nowMs) };
  }
  // Record time is the default: a replay lands in the same partition as the first attempt.
  return {
    column,
    index: target.index,
    value(rec) {
      if (!Number.isFinite(rec.timestampMs) || rec.timestampMs < 0) {
        throw new RecordError('partition', `record timestamp ${rec.timestampMs} cannot give a partition value`, column);
      }
      return render.render(rec.timestampMs);
    },
  };
}

/** Epoch milliseconds of a temporal row value, or null when the type is not a time. */
function instantOf(t: PrimitiveType): ((v: RowValue) => number) | null {
  switch (t.kind) {
    case 'date':
      return (v) => (v as number) * MS_PER_DAY;
    case 'timestamp':
    case 'timestamptz':
      return (v) => Math.floor((v as number) / 1000);
    case 'long':
      return (v) => Number(v); // epoch milliseconds, like __timestamp__
    default:
      return null;
  }
}

export interface PartitionTuple {
  /** Stable grouping key: one open data file per distinct key. */
  key: string;
  /** Hive-style relative path: `pt=07-13-2023%2021%3A13/id_bucket=3`; '' when unpartitioned. */
  path: string;
  values: PartitionValue[];
}

export type PartitionTupleBuilder = (row: Row) => PartitionTuple;

interface CompiledField {
  fieldId: number;
  name: string;
  source: Column;
  transform: Transform;
  type: PrimitiveType;
}

const UNPARTITIONED: PartitionTuple = { key: '', path: '', values: [] };

/** The column a partition field reads; refused naming the field when the table has none. */
function sourceColumn(pf: PartitionSpec['fields'][number], columns: readonly Column[]): Column {
  const source = columns.find((c) => (pf.sourceId ? c.fieldId === pf.sourceId : c.name === pf.sourceName));
  if (!source)
    throw new SpecError(
      `partition field "${pf.name}" reads column ${pf.sourceId || `"${pf.sourceName}"`}, which the table does not have`,
      pf.name,
    );
  return source;
}

/** The indexes of the columns a partition spec reads (none when unpartitioned). */
export function partitionSources(spec: PartitionSpec | undefined, columns: readonly Column[]): number[] {
  return (spec?.fields ?? []).map((pf) => sourceColumn(pf, columns).index);
}

export function compilePartitionSpec(spec: PartitionSpec | undefined, columns: readonly Column[]): PartitionTupleBuilder {
  if (!spec || spec.fields.length === 0) return () => UNPARTITIONED;
  const fields: CompiledField[] = spec.fields.map((pf) => {
    const source = sourceColumn(pf, columns);
    const { transform, type } = compileTransform(pf.transform || 'identity', source.type, source.name);
    return { fieldId: pf.fieldId, name: pf.name || source.name, source, transform, type };
  });
  let last: PartitionTuple | null = null;
  const transformed: RowValue[] = new Array(fields.length);
  // Source values of the last tuple: equal sources give the same tuple without recomputing.
  const lastSources: RowValue[] = new Array(fields.length);
  return (row) => {
    if (last !== null) {
      let same = true;
      for (let i = 0; i < fields.length && same; i++) same = row[fields[i].source.index] === lastSources[i];
      if (same) return last;
    }
    for (let i = 0; i < fields.length; i++) lastSources[i] = row[fields[i].source.index];
    let key = '';
    let path = '';
    for (let i = 0; i < fields.length; i++) {
      const f = fields[i];
      const v = applyTransform(f.transform, f.source.type, row[f.source.index]);
      transformed[i] = v;
      const segment = `${(i === 0 ? '' : '/') + f.name}=${encodeURIComponent(human(f.type, v))}`;
      path += segment;
      // A null and the string "null" share a path (as in Iceberg's own) but not a file: the key
      // marks the null with a character no encoded value has.
      key += v === null ? `${segment}\u0000` : segment;
    }
    if (last !== null && last.key === key) return last;
    const values = fields.map((f, i) => ({ fieldId: f.fieldId, name: f.name, value: literal(f.type, transformed[i]) }));
    last = { key, path, values };
    return last;
  };
}

/** Human string of a partition value, as Iceberg writes it in paths. */
export function human(t: PrimitiveType, v: RowValue): string {
  if (v === null) return 'null';
  switch (t.kind) {
    case 'date': {
      const c = civilFromMs((v as number) * MS_PER_DAY);
      return `${pad4(c.year)}-${pad2(c.month)}-${pad2(c.day)}`;
    }
    case 'decimal': {
      const u = v as bigint;
      const neg = u < 0n;
      const digits = (neg ? -u : u).toString().padStart(t.scale + 1, '0');
      const s = t.scale === 0 ? digits : `${digits.slice(0, digits.length - t.scale)}.${digits.slice(digits.length - t.scale)}`;
      return neg ? `-${s}` : s;
    }
    case 'binary':
    case 'fixed':
      return Buffer.from(v as Uint8Array).toString('base64');
    default:
      return String(v);
  }
}

/**
 * A partition value as a proto Literal. Decimals travel as their Iceberg single-value
 * bytes (unscaled, big-endian), the form a manifest stores them in.
 */
export function literal(t: PrimitiveType, v: RowValue): Literal {
  if (v === null) return {};
  switch (t.kind) {
    case 'boolean':
      return { kind: { $case: 'booleanValue', value: v as boolean } };
    case 'int':
    case 'date':
      return { kind: { $case: 'intValue', value: v as number } };
    case 'long':
    case 'time':
    case 'timestamp':
    case 'timestamptz':
      return { kind: { $case: 'longValue', value: Number(v) } };
    case 'float':
      return { kind: { $case: 'floatValue', value: v as number } };
    case 'double':
      return { kind: { $case: 'doubleValue', value: v as number } };
    case 'string':
    case 'uuid':
      return { kind: { $case: 'stringValue', value: v as string } };
    case 'decimal':
      return { kind: { $case: 'binaryValue', value: serializeSingleValue(t, v) } };
    case 'binary':
    case 'fixed':
      return { kind: { $case: 'binaryValue', value: Buffer.from(v as Uint8Array) } };
  }
}
