/**
 * Manifest files (spec, "Manifests"): Avro files of `manifest_entry` records, each tracking
 * one data file with its partition tuple and column statistics. Field ids follow the spec's
 * table (data_file 100-140, manifest_entry 0-4); the header carries the table schema, the
 * partition spec and its id, the format version and the content type.
 *
 * Sequence numbers: entries ADDED by a snapshot are written with null sequence numbers and
 * inherit the one the manifest list assigns at commit time, so the same manifest can be
 * reused when a commit is retried on top of a newer snapshot.
 */
import type { ColumnStats, DataFile, PartitionValue } from '../gen/sluice/v1/types.js';
import { readContainer, writeContainer, type AvroCodecName } from './avro/container.js';
import { avroSafeName, optional, type AvroField, type AvroRecord, type AvroSchema } from './avro/schema.js';
import { avroPrimitive, avroToLiteral, compareScalars, literalToAvro, scalarBound, type PartitionScalar } from './avro-types.js';
import { corrupt, invalid } from './errors.js';
import type { FieldSummary, ManifestCounts } from './manifest-summary.js';
import { bindSpec, type BoundPartitionField } from './partition.js';
import { indexFields } from './schema.js';
import { parsePrimitive, type PrimitiveType } from './single-value.js';
import type { PartitionSpecJson, SchemaJson } from './types.js';

export enum EntryStatus {
  EXISTING = 0,
  ADDED = 1,
  DELETED = 2,
}

export enum FileContent {
  DATA = 0,
  POSITION_DELETES = 1,
  EQUALITY_DELETES = 2,
}

export interface ManifestEntry {
  status: EntryStatus;
  /** Null when inherited from the manifest list's added_snapshot_id. */
  snapshotId?: number;
  /** Data sequence number; null only for ADDED entries (inherited). */
  sequenceNumber?: number;
  fileSequenceNumber?: number;
  content?: FileContent;
  dataFile: DataFile;
}

/** Counts and partition bounds of a written manifest, for its manifest-list entry. */
export interface ManifestStats extends ManifestCounts {
  partitions: FieldSummary[];
  /** Smallest explicit data sequence number among live entries; undefined if all inherit. */
  minExplicitSequenceNumber?: number;
}

export interface ManifestWriteOptions {
  schema: SchemaJson;
  spec: PartitionSpecJson;
  content?: 'data' | 'deletes';
  codec?: AvroCodecName;
}

// -- Avro schema ----------------------------------------------------------------------

const intKeyMap = (fieldName: string, fieldId: number, keyId: number, valueId: number, value: AvroSchema): AvroField => ({
  name: fieldName,
  type: optional({
    type: 'array',
    logicalType: 'map',
    items: {
      type: 'record',
      name: `k${keyId}_v${valueId}`,
      fields: [
        { name: 'key', type: 'int', 'field-id': keyId },
        { name: 'value', type: value, 'field-id': valueId },
      ],
    },
  }),
  default: null,
  'field-id': fieldId,
});

function partitionRecord(bound: BoundPartitionField[]): AvroRecord {
  return {
    type: 'record',
    name: 'r102',
    fields: bound.map((b) => ({
      name: avroSafeName(b.field.name),
      type: optional(avroPrimitive(b.resultType, String(b.field['field-id']))),
      default: null,
      'field-id': b.field['field-id'],
    })),
  };
}

/** The manifest_entry Avro schema for a partition spec (spec field ids throughout). */
export function manifestEntrySchema(bound: BoundPartitionField[]): AvroRecord {
  const dataFile: AvroRecord = {
    type: 'record',
    name: 'r2',
    fields: [
      { name: 'content', type: 'int', 'field-id': 134, doc: 'Contents of the file: 0=data, 1=position deletes, 2=equality deletes' },
      { name: 'file_path', type: 'string', 'field-id': 100, doc: 'Location URI with FS scheme' },
      { name: 'file_format', type: 'string', 'field-id': 101, doc: 'File format name: avro, orc, or parquet' },
      { name: 'partition', type: partitionRecord(bound), 'field-id': 102, doc: 'Partition data tuple, schema based on the partition spec' },
      { name: 'record_count', type: 'long', 'field-id': 103, doc: 'Number of records in the file' },
      { name: 'file_size_in_bytes', type: 'long', 'field-id': 104, doc: 'Total file size in bytes' },
      intKeyMap('column_sizes', 108, 117, 118, 'long'),
      intKeyMap('value_counts', 109, 119, 120, 'long'),
      intKeyMap('null_value_counts', 110, 121, 122, 'long'),
      intKeyMap('nan_value_counts', 137, 138, 139, 'long'),
      intKeyMap('lower_bounds', 125, 126, 127, 'bytes'),
      intKeyMap('upper_bounds', 128, 129, 130, 'bytes'),
      { name: 'key_metadata', type: optional('bytes'), default: null, 'field-id': 131 },
      { name: 'split_offsets', type: optional({ type: 'array', items: 'long', 'element-id': 133 }), default: null, 'field-id': 132 },
      { name: 'equality_ids', type: optional({ type: 'array', items: 'int', 'element-id': 136 }), default: null, 'field-id': 135 },
      { name: 'sort_order_id', type: optional('int'), default: null, 'field-id': 140 },
    ],
  };
  return {
    type: 'record',
    name: 'manifest_entry',
    fields: [
      { name: 'status', type: 'int', 'field-id': 0 },
      { name: 'snapshot_id', type: optional('long'), default: null, 'field-id': 1 },
      { name: 'sequence_number', type: optional('long'), default: null, 'field-id': 3 },
      { name: 'file_sequence_number', type: optional('long'), default: null, 'field-id': 4 },
      { name: 'data_file', type: dataFile, 'field-id': 2 },
    ],
  };
}

// -- writing --------------------------------------------------------------------------

interface KV<V> {
  key: number;
  value: V;
}

function statsMaps(stats: ColumnStats[], floatingIds: ReadonlySet<number>) {
  const columnSizes: KV<number>[] = [];
  const valueCounts: KV<number>[] = [];
  const nullCounts: KV<number>[] = [];
  const nanCounts: KV<number>[] = [];
  const lower: KV<Uint8Array>[] = [];
  const upper: KV<Uint8Array>[] = [];
  for (const s of stats) {
    const key = s.fieldId;
    if (s.columnSize > 0) columnSizes.push({ key, value: s.columnSize });
    valueCounts.push({ key, value: s.valueCount });
    nullCounts.push({ key, value: s.nullValueCount });
    // NaN counts only mean something for float and double columns.
    if (floatingIds.has(key) || s.nanValueCount > 0) nanCounts.push({ key, value: s.nanValueCount });
    if (s.lowerBound.length > 0) lower.push({ key, value: s.lowerBound });
    if (s.upperBound.length > 0) upper.push({ key, value: s.upperBound });
  }
  const orNull = <V>(a: KV<V>[]) => (a.length > 0 ? a : null);
  return {
    column_sizes: orNull(columnSizes),
    value_counts: orNull(valueCounts),
    null_value_counts: orNull(nullCounts),
    nan_value_counts: orNull(nanCounts),
    lower_bounds: orNull(lower),
    upper_bounds: orNull(upper),
  };
}

function partitionTuple(values: PartitionValue[], bound: BoundPartitionField[], filePath: string): Record<string, PartitionScalar> {
  const tuple: Record<string, PartitionScalar> = {};
  for (const v of values) {
    const b = bound.find((x) => (v.fieldId > 0 ? x.field['field-id'] === v.fieldId : x.field.name === v.name));
    if (!b) throw invalid(`data file ${filePath} has partition value for unknown field ${v.fieldId || v.name}`, 'data_file.partition');
  }
  for (const b of bound) {
    const v = values.find((x) => (x.fieldId > 0 ? x.fieldId === b.field['field-id'] : x.name === b.field.name));
    tuple[avroSafeName(b.field.name)] = literalToAvro(v?.value, b.resultType, `data_file.partition.${b.field.name}`);
  }
  return tuple;
}

class SummaryBuilder {
  private readonly acc: { containsNull: boolean; containsNan: boolean; min: PartitionScalar; max: PartitionScalar }[];
  constructor(private readonly bound: BoundPartitionField[]) {
    this.acc = bound.map(() => ({ containsNull: false, containsNan: false, min: null, max: null }));
  }
  add(tuple: Record<string, PartitionScalar>): void {
    this.bound.forEach((b, i) => {
      const v = tuple[avroSafeName(b.field.name)];
      const a = this.acc[i];
      if (v === null || v === undefined) a.containsNull = true;
      else if (typeof v === 'number' && Number.isNaN(v)) a.containsNan = true;
      else {
        if (a.min === null || compareScalars(v, a.min, b.resultType) < 0) a.min = v;
        if (a.max === null || compareScalars(v, a.max, b.resultType) > 0) a.max = v;
      }
    });
  }
  build(): FieldSummary[] {
    return this.bound.map((b, i) => {
      const a = this.acc[i];
      const isFloating = b.resultType.kind === 'float' || b.resultType.kind === 'double';
      const s: FieldSummary = { containsNull: a.containsNull };
      if (isFloating) s.containsNan = a.containsNan;
      if (a.min !== null) s.lowerBound = scalarBound(a.min, b.resultType);
      if (a.max !== null) s.upperBound = scalarBound(a.max, b.resultType);
      return s;
    });
  }
}

/** Writes a manifest; returns its bytes and the stats its manifest-list entry needs. */
export function writeManifest(entries: ManifestEntry[], options: ManifestWriteOptions): { bytes: Uint8Array; stats: ManifestStats } {
  const bound = bindSpec(options.spec, options.schema);
  const floatingIds = new Set<number>();
  for (const loc of indexFields(options.schema).values()) {
    if (loc.field.type === 'float' || loc.field.type === 'double') floatingIds.add(loc.field.id);
  }
  const summary = new SummaryBuilder(bound);
  const stats: ManifestStats = {
    addedFilesCount: 0,
    existingFilesCount: 0,
    deletedFilesCount: 0,
    addedRowsCount: 0,
    existingRowsCount: 0,
    deletedRowsCount: 0,
    partitions: [],
  };
  const records = entries.map((e, i) => {
    const df = e.dataFile;
    const where = `entries[${i}]`;
    if (!df.filePath) throw invalid(`${where}: data file has no path`, `${where}.file_path`);
    if (e.status !== EntryStatus.ADDED && e.sequenceNumber === undefined) {
      throw invalid(
        `${where}: ${EntryStatus[e.status]} entry for ${df.filePath} needs an explicit sequence number`,
        `${where}.sequence_number`,
      );
    }
    if (df.specId !== options.spec['spec-id']) {
      throw invalid(
        `${where}: ${df.filePath} was written for spec ${df.specId}, manifest is for spec ${options.spec['spec-id']}`,
        `${where}.spec_id`,
      );
    }
    const partition = partitionTuple(df.partition, bound, df.filePath);
    const rows = df.recordCount;
    if (e.status === EntryStatus.ADDED) {
      stats.addedFilesCount++;
      stats.addedRowsCount += rows;
    } else if (e.status === EntryStatus.EXISTING) {
      stats.existingFilesCount++;
      stats.existingRowsCount += rows;
    } else {
      stats.deletedFilesCount++;
      stats.deletedRowsCount += rows;
    }
    // Every entry's partition is in the summary, deleted ones too (as Iceberg's ManifestWriter
    // does): a manifest of only DELETED entries (a partition replaced) still has bounds.
    summary.add(partition);
    if (e.status !== EntryStatus.DELETED) {
      if (e.sequenceNumber !== undefined) {
        stats.minExplicitSequenceNumber = Math.min(stats.minExplicitSequenceNumber ?? e.sequenceNumber, e.sequenceNumber);
      }
    }
    return {
      status: e.status,
      snapshot_id: e.snapshotId ?? null,
      sequence_number: e.sequenceNumber ?? null,
      file_sequence_number: e.fileSequenceNumber ?? e.sequenceNumber ?? null,
      data_file: {
        content: e.content ?? FileContent.DATA,
        file_path: df.filePath,
        file_format: (df.fileFormat || 'parquet').toUpperCase(),
        partition,
        record_count: rows,
        file_size_in_bytes: df.fileSizeInBytes,
        ...statsMaps(df.columnStats, floatingIds),
        key_metadata: null,
        split_offsets: df.splitOffsets.length > 0 ? df.splitOffsets : null,
        equality_ids: null,
        sort_order_id: null,
      },
    };
  });
  stats.partitions = summary.build();
  const bytes = writeContainer(manifestEntrySchema(bound), records, {
    codec: options.codec,
    metadata: {
      schema: JSON.stringify(options.schema),
      'schema-id': String(options.schema['schema-id']),
      'partition-spec': JSON.stringify(options.spec.fields),
      'partition-spec-id': String(options.spec['spec-id']),
      'format-version': '2',
      content: options.content ?? 'data',
    },
  });
  return { bytes, stats };
}

// -- reading --------------------------------------------------------------------------

export interface Manifest {
  specId: number;
  /** The partition spec fields from the header. */
  spec: PartitionSpecJson;
  /** The table schema the manifest was written with, when present in the header. */
  schema?: SchemaJson;
  content: 'data' | 'deletes';
  entries: ManifestEntry[];
}

/** What a manifest's entries inherit from its manifest-list entry. */
export interface Inherited {
  snapshotId: number;
  sequenceNumber: number;
}

/** Primitive type of each partition field, from the Avro schema the file was written with. */
function partitionTypesFromAvro(schema: AvroRecord): Map<string, { fieldId: number; type: PrimitiveType }> {
  const dataFile = schema.fields.find((f) => f.name === 'data_file')?.type as AvroRecord | undefined;
  const partition = dataFile?.fields?.find((f) => f.name === 'partition')?.type as AvroRecord | undefined;
  if (!partition?.fields) throw corrupt('manifest has no data_file.partition record', 'data_file.partition');
  const out = new Map<string, { fieldId: number; type: PrimitiveType }>();
  for (const f of partition.fields) {
    const t = Array.isArray(f.type) ? f.type.find((x) => x !== 'null') : f.type;
    out.set(f.name, { fieldId: f['field-id'] ?? 0, type: avroToPrimitive(t as AvroSchema) });
  }
  return out;
}

function avroToPrimitive(t: AvroSchema): PrimitiveType {
  if (typeof t === 'string') {
    if (t === 'bytes') return { kind: 'binary' };
    return parsePrimitive(t);
  }
  if (Array.isArray(t)) throw corrupt('nested union in partition field');
  const o = t as { type: string; logicalType?: string; size?: number; precision?: number; scale?: number; 'adjust-to-utc'?: boolean };
  switch (o.logicalType) {
    case 'date':
      return { kind: 'date' };
    case 'time-micros':
      return { kind: 'time' };
    case 'timestamp-micros':
      return o['adjust-to-utc'] === false ? { kind: 'timestamp' } : { kind: 'timestamptz' };
    case 'uuid':
      return { kind: 'uuid' };
    case 'decimal':
      return { kind: 'decimal', precision: o.precision ?? 38, scale: o.scale ?? 0 };
  }
  if (o.type === 'fixed') return { kind: 'fixed', length: o.size ?? 0 };
  return avroToPrimitive(o.type as AvroSchema);
}

/** A Buffer view of decoder output (already a private copy), without copying again. */
const asBuffer = (v: Uint8Array) => Buffer.from(v.buffer, v.byteOffset, v.byteLength);

function mapToStats(record: Record<string, unknown>): ColumnStats[] {
  const byId = new Map<number, ColumnStats>();
  const get = (id: number) => {
    let s = byId.get(id);
    if (!s) {
      s = {
        fieldId: id,
        columnSize: 0,
        valueCount: 0,
        nullValueCount: 0,
        nanValueCount: 0,
        lowerBound: Buffer.alloc(0),
        upperBound: Buffer.alloc(0),
      };
      byId.set(id, s);
    }
    return s;
  };
  const each = (name: string, apply: (s: ColumnStats, v: unknown) => void) => {
    const kvs = record[name] as KV<unknown>[] | null | undefined;
    if (kvs) for (const kv of kvs) apply(get(kv.key), kv.value);
  };
  each('column_sizes', (s, v) => (s.columnSize = v as number));
  each('value_counts', (s, v) => (s.valueCount = v as number));
  each('null_value_counts', (s, v) => (s.nullValueCount = v as number));
  each('nan_value_counts', (s, v) => (s.nanValueCount = v as number));
  each('lower_bounds', (s, v) => (s.lowerBound = asBuffer(v as Uint8Array)));
  each('upper_bounds', (s, v) => (s.upperBound = asBuffer(v as Uint8Array)));
  return [...byId.values()].sort((a, b) => a.fieldId - b.fieldId);
}

/**
 * Reads a manifest. With `inherited` (from the manifest-list entry), null snapshot ids and
 * sequence numbers of ADDED entries are filled in as the spec's inheritance rules say;
 * without it they stay undefined.
 */
export function readManifest(bytes: Uint8Array, inherited?: Inherited): Manifest {
  const container = readContainer<Record<string, unknown>>(bytes);
  const meta = container.metadata;
  const specId = Number(meta['partition-spec-id'] ?? 0);
  let specFields: PartitionSpecJson['fields'] = [];
  try {
    specFields = meta['partition-spec'] ? JSON.parse(meta['partition-spec']) : [];
  } catch {
    throw corrupt('manifest header partition-spec is not valid JSON', 'partition-spec');
  }
  const schema = meta.schema ? (JSON.parse(meta.schema) as SchemaJson) : undefined;
  const partitionTypes = partitionTypesFromAvro(container.schema as AvroRecord);
  const nameById = new Map(specFields.map((f) => [f['field-id'], f.name]));

  const entries = container.records.map((r): ManifestEntry => {
    const status = r.status as EntryStatus;
    const df = r.data_file as Record<string, unknown>;
    const partition: PartitionValue[] = [];
    const tuple = (df.partition ?? {}) as Record<string, unknown>;
    for (const [avroName, { fieldId, type }] of partitionTypes) {
      partition.push({ fieldId, name: nameById.get(fieldId) ?? avroName, value: avroToLiteral(tuple[avroName], type) });
    }
    let snapshotId = (r.snapshot_id as number | null) ?? undefined;
    let sequenceNumber = (r.sequence_number as number | null) ?? undefined;
    let fileSequenceNumber = (r.file_sequence_number as number | null) ?? undefined;
    if (inherited) {
      snapshotId ??= inherited.snapshotId;
      if (status === EntryStatus.ADDED) {
        sequenceNumber ??= inherited.sequenceNumber;
        fileSequenceNumber ??= inherited.sequenceNumber;
      }
    }
    return {
      status,
      snapshotId,
      sequenceNumber,
      fileSequenceNumber,
      content: (df.content as FileContent | undefined) ?? FileContent.DATA,
      dataFile: {
        filePath: df.file_path as string,
        fileFormat: String(df.file_format).toLowerCase(),
        specId,
        partition,
        recordCount: df.record_count as number,
        fileSizeInBytes: df.file_size_in_bytes as number,
        columnStats: mapToStats(df),
        splitOffsets: (df.split_offsets as number[] | null) ?? [],
      },
    };
  });
  return {
    specId,
    spec: { 'spec-id': specId, fields: specFields },
    schema,
    content: meta.content === 'deletes' ? 'deletes' : 'data',
    entries,
  };
}
