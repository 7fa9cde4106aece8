/**
 * Partition transforms and specs: parsing `bucket[16]`-style transform strings, checking a
 * transform applies to its source type, the type of the partition value it produces, and
 * binding a requested spec (source by name or id) against a schema.
 */
import type { PartitionSpec as ProtoPartitionSpec } from '../gen/sluice/v1/types.js';
import { invalid } from './errors.js';
import { findField, indexFields } from './schema.js';
import { parsePrimitive, type PrimitiveType } from './single-value.js';
import type { PartitionFieldJson, PartitionSpecJson, SchemaJson } from './types.js';

/** Partition field ids start here (spec: "Partition field IDs ... start at 1000"). */
export const PARTITION_DATA_ID_START = 1000;

export type Transform =
  | { kind: 'identity' }
  | { kind: 'year' }
  | { kind: 'month' }
  | { kind: 'day' }
  | { kind: 'hour' }
  | { kind: 'bucket'; n: number }
  | { kind: 'truncate'; width: number }
  | { kind: 'void' };

const SIMPLE_TRANSFORMS = new Set(['identity', 'year', 'month', 'day', 'hour', 'void']);

export function parseTransform(text: string, field = 'transform'): Transform {
  const t = text.trim().toLowerCase();
  if (SIMPLE_TRANSFORMS.has(t)) return { kind: t } as Transform;
  const m = /^(bucket|truncate)\[\s*(\d+)\s*\]$/.exec(t);
  if (m) {
    const n = Number(m[2]);
    if (!Number.isSafeInteger(n) || n <= 0 || n > 2147483647) throw invalid(`${m[1]} width must be a positive int, got ${m[2]}`, field);
    return m[1] === 'bucket' ? { kind: 'bucket', n } : { kind: 'truncate', width: n };
  }
  throw invalid(`unknown transform "${text}" (expected identity, year, month, day, hour, bucket[N], truncate[W] or void)`, field);
}

export function formatTransform(t: Transform): string {
  if (t.kind === 'bucket') return `bucket[${t.n}]`;
  if (t.kind === 'truncate') return `truncate[${t.width}]`;
  return t.kind;
}

const APPLIES: Record<Transform['kind'], ReadonlySet<PrimitiveType['kind']>> = {
  identity: new Set([
    'boolean',
    'int',
    'long',
    'float',
    'double',
    'decimal',
    'date',
    'time',
    'timestamp',
    'timestamptz',
    'string',
    'uuid',
    'fixed',
    'binary',
  ]),
  year: new Set(['date', 'timestamp', 'timestamptz']),
  month: new Set(['date', 'timestamp', 'timestamptz']),
  day: new Set(['date', 'timestamp', 'timestamptz']),
  hour: new Set(['timestamp', 'timestamptz']),
  bucket: new Set(['int', 'long', 'decimal', 'date', 'time', 'timestamp', 'timestamptz', 'string', 'uuid', 'fixed', 'binary']),
  truncate: new Set(['int', 'long', 'decimal', 'string', 'binary']),
  void: new Set([
    'boolean',
    'int',
    'long',
    'float',
    'double',
    'decimal',
    'date',
    'time',
    'timestamp',
    'timestamptz',
    'string',
    'uuid',
    'fixed',
    'binary',
  ]),
};

export function canTransform(t: Transform, source: PrimitiveType): boolean {
  return APPLIES[t.kind].has(source.kind);
}

/**
 * The type of the partition value. `day` produces `date` (stored as an int of days, as the
 * Java and Python implementations do); year, month, hour and bucket produce `int`.
 */
export function resultType(t: Transform, source: PrimitiveType): PrimitiveType {
  switch (t.kind) {
    case 'identity':
    case 'truncate':
    case 'void':
      return source;
    case 'day':
      return { kind: 'date' };
    case 'year':
    case 'month':
    case 'hour':
    case 'bucket':
      return { kind: 'int' };
  }
}

function defaultName(t: Transform, sourceName: string): string {
  switch (t.kind) {
    case 'identity':
      return sourceName;
    case 'bucket':
      return `${sourceName}_bucket_${t.n}`;
    case 'truncate':
      return `${sourceName}_trunc_${t.width}`;
    case 'void':
      return `${sourceName}_null`;
    default:
      return `${sourceName}_${t.kind}`;
  }
}

/** A partition field resolved against its schema. */
export interface BoundPartitionField {
  field: PartitionFieldJson;
  transform: Transform;
  sourcePath: string;
  sourceType: PrimitiveType;
  resultType: PrimitiveType;
}

/** Resolves every field of a stored spec against a schema (for manifests and summaries). */
export function bindSpec(spec: PartitionSpecJson, schema: SchemaJson): BoundPartitionField[] {
  const index = indexFields(schema);
  return spec.fields.map((f, i) => {
    const where = `partition_spec.fields[${i}]`;
    const loc = index.get(f['source-id']);
    if (!loc)
      throw invalid(`partition field ${f.name} has source id ${f['source-id']}, which is not in schema ${schema['schema-id']}`, where);
    if (typeof loc.field.type !== 'string') throw invalid(`partition source ${loc.path} is not a primitive column`, where);
    const transform = parseTransform(f.transform, `${where}.transform`);
    const sourceType = parsePrimitive(loc.field.type);
    return { field: f, transform, sourcePath: loc.path, sourceType, resultType: resultType(transform, sourceType) };
  });
}

/**
 * Builds a new spec from a request: sources named by `source_name` (dotted path) or by id,
 * transforms validated against the source type, names defaulted (`ts_day`, `id_bucket_16`)
 * and unique, field ids assigned after `lastPartitionId`.
 */
export function buildSpec(
  request: ProtoPartitionSpec | undefined,
  schema: SchemaJson,
  specId: number,
  lastPartitionId: number,
): { spec: PartitionSpecJson; lastPartitionId: number } {
  const index = indexFields(schema);
  const topLevelNames = new Set(schema.fields.map((f) => f.name));
  const fields: PartitionFieldJson[] = [];
  const names = new Set<string>();
  const seenSourceTransforms = new Set<string>();
  let last = Math.max(lastPartitionId, PARTITION_DATA_ID_START - 1);
  (request?.fields ?? []).forEach((pf, i) => {
    const where = `partition_spec.fields[${i}]`;
    const loc = pf.sourceName ? findField(schema, pf.sourceName) : index.get(pf.sourceId);
    if (!loc) {
      const what = pf.sourceName ? `column "${pf.sourceName}"` : `source id ${pf.sourceId}`;
      throw invalid(`${where}: ${what} is not in the schema`, `${where}.source_name`);
    }
    if (loc.repeated)
      throw invalid(`${where}: ${loc.path} is inside a list or map and cannot be a partition source`, `${where}.source_name`);
    if (typeof loc.field.type !== 'string') throw invalid(`${where}: ${loc.path} is not a primitive column`, `${where}.source_name`);
    const transform = parseTransform(pf.transform || 'identity', `${where}.transform`);
    const sourceType = parsePrimitive(loc.field.type);
    if (!canTransform(transform, sourceType)) {
      throw invalid(
        `${where}: transform ${formatTransform(transform)} cannot apply to ${loc.path} of type ${loc.field.type}`,
        `${where}.transform`,
      );
    }
    const key = `${loc.field.id}:${formatTransform(transform)}`;
    if (seenSourceTransforms.has(key)) throw invalid(`${where}: ${formatTransform(transform)}(${loc.path}) is listed twice`, where);
    seenSourceTransforms.add(key);
    const name = pf.name || defaultName(transform, loc.path.replace(/\./g, '_'));
    if (names.has(name)) throw invalid(`${where}: duplicate partition field name "${name}"`, `${where}.name`);
    // A derived value may not shadow a column (queries would not know which is meant).
    if (transform.kind !== 'identity' && topLevelNames.has(name) && name !== loc.path) {
      throw invalid(`${where}: partition field name "${name}" conflicts with a column`, `${where}.name`);
    }
    names.add(name);
    const fieldId = pf.fieldId > 0 ? pf.fieldId : ++last;
    last = Math.max(last, fieldId);
    fields.push({ 'source-id': loc.field.id, 'field-id': fieldId, name, transform: formatTransform(transform) });
  });
  return { spec: { 'spec-id': specId, fields }, lastPartitionId: last };
}

export function specToProto(spec: PartitionSpecJson, schema?: SchemaJson): ProtoPartitionSpec {
  const index = schema ? indexFields(schema) : undefined;
  return {
    specId: spec['spec-id'],
    fields: spec.fields.map((f) => ({
      sourceId: f['source-id'],
      fieldId: f['field-id'],
      name: f.name,
      transform: f.transform,
      sourceName: index?.get(f['source-id'])?.path ?? '',
    })),
  };
}
