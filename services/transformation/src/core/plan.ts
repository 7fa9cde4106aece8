/**
 * A mapping plan: everything about (schema, mapping spec, partition spec) decided once,
 * so turning a record into a row is a loop over precompiled column sources.
 *
 * Formats (seed 002): TEXT and BINARY put the key and/or value (per mode) in `key` and
 * `value` columns; JSON does the same with JSON-validated text; CSV splits one part into
 * the custom columns by position; FLATTEN maps the JSON object's fields to columns by
 * name at the flatten level (seed 000), nested objects kept as JSON text, and refuses a
 * record with a field the table has no column for (seed 002's record 101). JSON at a flatten
 * level ≥ 1 (default 1, seed 000's parsed JSON layers) maps fields the same way; a field the
 * table has no column for evolves the schema (evolve.ts) or, with schema evolution NONE, is
 * counted by name and dropped. At level 0 it keeps the whole message in `__value__` (or
 * `value`). Two fields of one record that flatten to one column name are refused, naming both.
 * Explicit field mappings (seed 001) replace the implicit ones: each names a column and a
 * path or meta field; unmapped columns are NULL.
 * Fixed columns topic/partition/offset are filled when `include_fixed_columns` is set.
 */
import {
  ChangeFormat,
  type KafkaRecord,
  type MappingSpec,
  MessageFormat,
  MessageMode,
  type PartitionSpec,
  type Schema,
  SchemaEvolution,
} from '#shared/gen/sluice/v1/types.js';
import { decodeChanges, type ChangeFormat as ChangeEnvelope } from './changes.js';
import { coercer, type Coercer, type EpochUnit, type RowValue } from './coerce.js';
import { parseCsvRecord, type CsvDialect } from './csv.js';
import { decodeText, parseJson, parseJsonExact, stripBom } from './decode.js';
import { InexactNumber, RecordError, SpecError, specZone } from './errors.js';
import { type NewField, SchemaGrowth, type Widening, widenedType } from './evolve.js';
import { columnName, MAX_FLATTEN_LEVEL, pathStep } from './flatten.js';
import { compilePath, resolvePath, type PathStep } from './json-path.js';
import {
  compilePartitionBy,
  compilePartitionSpec,
  partitionSources,
  type PartitionColumn,
  type PartitionTuple,
  type PartitionTupleBuilder,
} from './partition.js';
import type { RecordContext, Row } from './row.js';
import { type Column, columnsOf } from './schema.js';
import type { Zone } from '#shared/time.js';

export type Format = 'TEXT' | 'CSV' | 'JSON' | 'FLATTEN' | 'BINARY';
export type Mode = 'KEY' | 'VALUE' | 'DEFAULT';

export const META_FIELDS = [
  '__key__',
  '__value__',
  '__partition__',
  '__offset__',
  '__timestamp__',
  '__headers__',
  'topic',
  'partition',
  'offset',
] as const;
export type MetaField = (typeof META_FIELDS)[number];
const FIXED_COLUMNS: MetaField[] = ['topic', 'partition', 'offset'];

type Source =
  | { kind: 'meta'; meta: MetaField }
  | { kind: 'path'; steps: PathStep[] }
  | { kind: 'flat' }
  | { kind: 'csv'; index: number }
  | { kind: 'part'; part: 'key' | 'value' }
  | { kind: 'partition' }
  | { kind: 'none' };

export interface ColumnPlan extends Column {
  source: Source;
  coerce: Coercer;
  /** How the coercer reads numbers into a time column (epoch_ms unless a field mapping says). */
  epochUnit: EpochUnit;
}

export interface PlanLimits {
  /** Keys and values over this size are refused before parsing (default 8 MiB). */
  maxRecordBytes: number;
}

export interface PlanInput {
  schema: Schema;
  mapping: MappingSpec;
  partitionSpec?: PartitionSpec;
  limits?: Partial<PlanLimits>;
}

export interface Plan {
  readonly format: Format;
  readonly mode: Mode;
  readonly columns: readonly ColumnPlan[];
  readonly flattenLevel: number;
  readonly limits: PlanLimits;
  readonly zone: Zone;
  /** Which part JSON/FLATTEN/CSV parse; null for TEXT/BINARY. */
  readonly parsedPart: 'key' | 'value' | null;
  /** Implicit flattening (FLATTEN, or JSON at a flatten level ≥ 1): column index by flattened name. */
  readonly byName: ReadonlyMap<string, number> | null;
  /**
   * What a field the table has no column for does: FLATTEN refuses the record (seed 002's
   * record 101); JSON at a flatten level evolves the schema (`evolve`, the default) or counts
   * the field by name and drops it (`count`, schema evolution NONE).
   */
  readonly unknownFields: 'refuse' | 'evolve' | 'count';
  /** Per-record scratch of implicit flattening (one record at a time: the core is synchronous). */
  readonly scratch: FlattenScratch;
  readonly csv: (CsvDialect & { width: number; names: string[] }) | null;
  readonly partitionColumn: PartitionColumn | null;
  readonly partitionTuple: PartitionTupleBuilder;
  /** The columns the table's partition spec reads, as indexes; empty when it is unpartitioned. */
  readonly partitionSources: readonly number[];
  /** Whether the JSON paths need the parsed document (JSON format with explicit paths). */
  readonly needsDocument: boolean;
  /** A keyed table's change stream (mapping.changes): records become upserts and deletes by key. */
  readonly changes: ChangePlan | null;
}

/** How a change stream's records become keyed rows (transformChanges). */
export interface ChangePlan {
  readonly envelope: ChangeEnvelope;
  /** The table's identifier columns, as indexes into the plan's columns, in key order. */
  readonly keyColumns: readonly number[];
  readonly keyNames: readonly string[];
}

const ENVELOPES: Partial<Record<ChangeFormat, ChangeEnvelope>> = {
  [ChangeFormat.CHANGE_FORMAT_DEBEZIUM]: 'debezium',
  [ChangeFormat.CHANGE_FORMAT_DTS]: 'dts',
  [ChangeFormat.CHANGE_FORMAT_CANAL]: 'canal',
  [ChangeFormat.CHANGE_FORMAT_MAXWELL]: 'maxwell',
  [ChangeFormat.CHANGE_FORMAT_KEYED]: 'keyed',
};

/** The change plan of a mapping, or null when it appends; refused when the table or the format cannot take changes. */
function compileChanges(mapping: MappingSpec, schema: Schema, columns: readonly ColumnPlan[], format: Format): ChangePlan | null {
  if (mapping.changes === undefined || mapping.changes === ChangeFormat.CHANGE_FORMAT_UNSPECIFIED) return null;
  const envelope = ENVELOPES[mapping.changes];
  if (!envelope) throw new SpecError(`changes "${mapping.changes}" is not one of debezium, dts, canal, maxwell, keyed`, 'changes');
  if (format !== 'JSON' && format !== 'FLATTEN')
    throw new SpecError(`changes: ${envelope} reads JSON envelopes; the format must be JSON, not ${format}`, 'changes');
  if (schema.identifierFieldIds.length === 0)
    throw new SpecError(
      `changes: ${envelope} needs a table with a key (table.key in the spec, --key on sluice table create) to match rows by`,
      'changes',
    );
  const keyColumns = schema.identifierFieldIds.map((id) => {
    const index = columns.findIndex((c) => c.fieldId === id);
    if (index < 0) throw new SpecError(`the table's key names field id ${id}, which is not a top-level column`, 'changes');
    return index;
  });
  return { envelope, keyColumns, keyNames: keyColumns.map((i) => columns[i].name) };
}

const FORMATS: Record<MessageFormat, Format | undefined> = {
  [MessageFormat.MESSAGE_FORMAT_UNSPECIFIED]: 'TEXT',
  [MessageFormat.MESSAGE_FORMAT_TEXT]: 'TEXT',
  [MessageFormat.MESSAGE_FORMAT_CSV]: 'CSV',
  [MessageFormat.MESSAGE_FORMAT_JSON]: 'JSON',
  [MessageFormat.MESSAGE_FORMAT_FLATTEN]: 'FLATTEN',
  [MessageFormat.MESSAGE_FORMAT_BINARY]: 'BINARY',
  [MessageFormat.UNRECOGNIZED]: undefined,
};

function formatOf(f: MessageFormat): Format {
  const format = FORMATS[f];
  if (!format) throw new SpecError(`message format "${f}" is not one of TEXT, CSV, JSON, FLATTEN, BINARY`, 'format');
  return format;
}

/** UNSPECIFIED means the seed's defaults: DEFAULT (key and value) for TEXT/BINARY, VALUE otherwise. */
function modeOf(m: MessageMode, format: Format): Mode {
  const wholeParts = format === 'TEXT' || format === 'BINARY';
  switch (m) {
    case MessageMode.MESSAGE_MODE_UNSPECIFIED:
      return wholeParts ? 'DEFAULT' : 'VALUE';
    case MessageMode.MESSAGE_MODE_KEY:
      return 'KEY';
    case MessageMode.MESSAGE_MODE_VALUE:
      return 'VALUE';
    case MessageMode.MESSAGE_MODE_DEFAULT:
      if (!wholeParts)
        throw new SpecError(`mode DEFAULT (key and value) applies to TEXT and BINARY only; use VALUE or KEY with ${format}`, 'mode');
      return 'DEFAULT';
    default:
      throw new SpecError(`message mode "${m}" is not one of KEY, VALUE, DEFAULT`, 'mode');
  }
}

const EPOCH_UNITS = new Set(['', 'epoch_s', 'epoch_ms', 'epoch_us']);

/**
 * Which columns the current record has filled (`seenAt[i] === stamp`) and from which path,
 * to refuse two fields that flatten to one column; and what the record asks of the schema.
 * Reset per record by bumping `stamp` and truncating the arrays, so nothing is allocated.
 */
interface FlattenScratch {
  stamp: number;
  seenAt: number[];
  seenPath: string[];
  newFields: NewField[];
  widenings: Widening[];
  /** Flattening below level 1: the fields seen so far, by key, from the top (see FieldNode). */
  readonly fields: Map<string, FieldNode>;
}

/**
 * A field met while flattening below level 1, resolved once: its column name, its path and its
 * column. Records of one topic repeat their keys, so the names (`device_os`) and paths
 * (`device.os`) are built once per field instead of per record, and the column lookup with
 * them. Untrusted input may bring endless new keys: past FIELD_NODES_PER_LEVEL a level's
 * fields are resolved per record and not kept.
 */
interface FieldNode {
  readonly name: string;
  readonly path: string;
  readonly column: number | undefined;
  children: Map<string, FieldNode> | undefined;
}

const FIELD_NODES_PER_LEVEL = 4096;

export function compilePlan(input: PlanInput): Plan {
  const { schema, mapping } = input;
  const format = formatOf(mapping.format);
  const mode = modeOf(mapping.mode, format);
  const limits: PlanLimits = { maxRecordBytes: input.limits?.maxRecordBytes ?? 8 * 1024 * 1024 };
  const tz = specZone(mapping.timeZone ?? '', 'time_zone');
  const columns = columnsOf(schema);
  const byColumn = new Map(columns.map((c) => [c.name, c]));
  const sources = new Map<string, Source>();
  const epochUnits = new Map<string, EpochUnit>();

  const claim = (column: string, source: Source, why: string) => {
    if (!byColumn.has(column)) throw new SpecError(`${why} names column "${column}", which the table does not have`, column);
    if (sources.has(column))
      throw new SpecError(`column "${column}" is mapped more than once (one destination column takes one source)`, column);
    sources.set(column, source);
  };

  if (mapping.includeFixedColumns) {
    for (const f of FIXED_COLUMNS) claim(f, { kind: 'meta', meta: f }, 'fixed column');
  }

  const partitionColumn = mapping.partitionBy ? compilePartitionBy(mapping.partitionBy, tz, columns) : null;
  if (partitionColumn) claim(partitionColumn.column, { kind: 'partition' }, 'partition_by');

  // Unset is seed 000's default, 1.
  let flattenLevel = Math.trunc(mapping.flattenLevel ?? 1);
  if (flattenLevel < 0 || flattenLevel > MAX_FLATTEN_LEVEL)
    throw new SpecError(`flatten_level ${mapping.flattenLevel} is outside 0..${MAX_FLATTEN_LEVEL}`, 'flatten_level');
  // FLATTEN maps top-level keys at least; 0 (proto3's unset) reads as the seed's default 1.
  if (format === 'FLATTEN' && flattenLevel === 0) flattenLevel = 1;

  const csvNames = mapping.csv?.columns?.length ? [...mapping.csv.columns] : null;
  const explicit = mapping.fields ?? [];
  const usedPaths = new Set<string>();
  for (const fm of explicit) {
    const path = fm.path === '' ? fm.column : fm.path;
    if (usedPaths.has(path))
      throw new SpecError(`source field "${path}" is mapped to more than one column (one source field maps to one column)`, path);
    usedPaths.add(path);
    if (!EPOCH_UNITS.has(fm.format))
      throw new SpecError(`column "${fm.column}": format "${fm.format}" is not one of epoch_s, epoch_ms, epoch_us`, fm.column);
    if (fm.format) epochUnits.set(fm.column, fm.format as EpochUnit);
    const col = byColumn.get(fm.column);
    if (col && fm.type && fm.type.replace(/\s/g, '') !== formatType(col).replace(/\s/g, '')) {
      throw new SpecError(`column "${fm.column}": the mapping says ${fm.type} but the table column is ${formatType(col)}`, fm.column);
    }
    claim(fm.column, sourceOfPath(path, format, csvNames, fm.column), `field mapping for "${path}"`);
  }

  let byName: Map<string, number> | null = null;
  let csv: Plan['csv'] = null;
  const free = columns.filter((c) => !sources.has(c.name));
  if (explicit.length === 0) {
    // FLATTEN, and JSON at a flatten level ≥ 1 (seed 000's parsed layers), map fields by name.
    // JSON at level 0 is seed 000's "no parsing": the whole message in one column, like TEXT.
    if (format === 'FLATTEN' || (format === 'JSON' && flattenLevel >= 1)) {
      byName = new Map();
      for (const c of free) {
        sources.set(c.name, { kind: 'flat' });
        byName.set(c.name, c.index);
      }
    } else if (format === 'CSV') {
      const names = csvNames ?? free.map((c) => c.name);
      names.forEach((n, i) => {
        if (byColumn.has(n) && !sources.has(n)) sources.set(n, { kind: 'csv', index: i });
      });
    } else {
      // The whole part in a `value`/`key` column, or (JSON at level 0, seed 000) `__value__`/`__key__`.
      for (const part of ['key', 'value'] as const) {
        const reads = mode === 'DEFAULT' || mode.toLowerCase() === part;
        for (const column of [part, `__${part}__`]) {
          if (!byColumn.has(column) || sources.has(column)) continue;
          sources.set(column, reads ? { kind: 'part', part } : { kind: 'none' });
        }
      }
    }
  }
  if (format === 'CSV') {
    const names = csvNames ?? free.map((c) => c.name);
    const delimiter = mapping.csv?.delimiter || ',';
    const quote = mapping.csv?.quote || '"';
    if (quote.length !== 1) throw new SpecError(`csv quote must be one character, got "${quote}"`, 'csv.quote');
    if (delimiter === quote || delimiter.includes('\n') || delimiter.includes('\r'))
      throw new SpecError(`csv delimiter "${delimiter}" cannot be the quote or a line break`, 'csv.delimiter');
    csv = { delimiter, quote, width: names.length, names };
  }

  const plans: ColumnPlan[] = columns.map((c) => {
    const source = sources.get(c.name) ?? { kind: 'none' };
    if (source.kind === 'none' && c.required) {
      throw new SpecError(`column "${c.name}" is required but nothing maps to it`, c.name);
    }
    const epochUnit = epochUnits.get(c.name) ?? 'epoch_ms';
    return { ...c, source, epochUnit, coerce: coercer({ column: c.name, type: c.type, required: c.required, zone: tz, epochUnit }) };
  });

  const parsesPart = format === 'JSON' || format === 'FLATTEN' || format === 'CSV';
  const unknownFields =
    format === 'FLATTEN' ? 'refuse' : mapping.schemaEvolution === SchemaEvolution.SCHEMA_EVOLUTION_NONE ? 'count' : 'evolve';
  const needsDocument = plans.some((p) => p.source.kind === 'path');
  if (needsDocument && format !== 'JSON' && format !== 'FLATTEN') {
    throw new SpecError(`JSON field paths need format JSON or FLATTEN, not ${format}`, 'format');
  }
  return {
    format,
    mode,
    columns: plans,
    flattenLevel,
    limits,
    zone: tz,
    parsedPart: parsesPart ? (mode === 'KEY' ? 'key' : 'value') : null,
    byName,
    unknownFields,
    scratch: { stamp: 0, seenAt: plans.map(() => -1), seenPath: plans.map(() => ''), newFields: [], widenings: [], fields: new Map() },
    csv,
    partitionColumn,
    partitionTuple: compilePartitionSpec(input.partitionSpec, columns),
    partitionSources: partitionSources(input.partitionSpec, columns),
    needsDocument,
    changes: compileChanges(mapping, schema, plans, format),
  };
}

function formatType(c: Column): string {
  const t = c.type;
  return t.kind === 'decimal' ? `decimal(${t.precision},${t.scale})` : t.kind === 'fixed' ? `fixed[${t.length}]` : t.kind;
}

function sourceOfPath(path: string, format: Format, csvNames: string[] | null, column: string): Source {
  if ((META_FIELDS as readonly string[]).includes(path)) return { kind: 'meta', meta: path as MetaField };
  if (format === 'CSV') {
    const index = csvNames?.indexOf(path) ?? -1;
    if (index < 0) throw new SpecError(`column "${column}": "${path}" is neither a meta field nor one of csv.columns`, column);
    return { kind: 'csv', index };
  }
  if (format === 'TEXT' || format === 'BINARY') {
    throw new SpecError(`column "${column}": format ${format} has no fields; map a meta field (${META_FIELDS.join(', ')})`, column);
  }
  return { kind: 'path', steps: compilePath(path) };
}

/** Mutable per-plan scratch, so the per-record path allocates only the row. */
const csvScratch: (string | null)[] = [];

/**
 * The most headers a record may carry. Each is copied into the error topic's record or the
 * error table's `headers` JSON, and every one costs a string per record in the row's
 * `__headers__`; Kafka itself sets no count, so a producer could make one record carry a
 * million. Beyond this the record is dirty data (`too_many_headers`), routed by the policy.
 */
export const MAX_RECORD_HEADERS = 1000;

/**
 * Turns one record into a row, or returns the RecordError saying why not. Never throws
 * for anything about the record; a throw here is a bug.
 */
export function transformRecord(plan: Plan, rec: KafkaRecord, ctx: RecordContext): Row | RecordError {
  // A JSON integer JSON.parse rounded would be stored: read the record again exactly (decode.ts).
  const rereads = plan.parsedPart !== null && plan.format !== 'CSV';
  return readRecord(rec, rereads, (exact) => buildRow(plan, rec, ctx, exact));
}

/**
 * What transformRecord and transformChanges share: the header limit, a second, exact read when
 * a number was rounded, and every failure as the record's RecordError (a throw is a bug).
 */
function readRecord<T>(rec: KafkaRecord, rereads: boolean, read: (exact: boolean) => T): T | RecordError {
  if (rec.headers.length > MAX_RECORD_HEADERS)
    return new RecordError(
      'too_many_headers',
      `the record has ${rec.headers.length} headers, more than the ${MAX_RECORD_HEADERS} a record may carry`,
    ).at(rec);
  try {
    try {
      return read(false);
    } catch (e) {
      if (e instanceof InexactNumber && rereads) return read(true);
      throw e;
    }
  } catch (e) {
    if (e instanceof RecordError) return e.at(rec);
    // Defensive: a RangeError from pathological input (e.g. stack depth) stays a record error.
    const why = e instanceof Error ? e.message : String(e);
    return new RecordError('unreadable', `record could not be read: ${why}`).at(rec);
  }
}

/**
 * The row of a record, or (a change stream's) of one image of it: `image` is the parsed
 * object the columns are read from instead of the record's own parsed part.
 */
function buildRow(plan: Plan, rec: KafkaRecord, ctx: RecordContext, exact: boolean, image?: Record<string, unknown>): Row {
  const cols = plan.columns;
  const row: Row = new Array(cols.length);
  let doc: unknown;
  let fields: (string | null)[] | undefined;
  let keyText: string | null | undefined;
  let valueText: string | null | undefined;

  if (image !== undefined) {
    doc = image;
    if (plan.byName !== null) spreadFlattened(plan, image, row, 'value', ctx);
  } else if (plan.parsedPart !== null) {
    const bytes = plan.parsedPart === 'key' ? rec.key : rec.value;
    const part = plan.parsedPart;
    if (bytes === undefined || bytes === null) {
      // JSON keeps a tombstone as a NULL value column; CSV and FLATTEN have nothing to split.
      if (plan.format !== 'JSON' || plan.needsDocument || plan.byName !== null)
        throw new RecordError(
          'null_value',
          `${part} is null (a tombstone); ${plan.format} needs a ${plan.format === 'CSV' ? 'CSV line' : 'JSON object'}`,
        );
      if (part === 'key') keyText = null;
      else valueText = null;
    } else {
      const text = decodeText(bytes, part, plan.limits.maxRecordBytes);
      if (part === 'key') keyText = text;
      else valueText = text;
      if (plan.format === 'CSV') {
        if (text.length === 0) throw new RecordError('empty', `${part} is empty, expected a CSV line`);
        fields = parseCsvRecord(text, plan.csv!, csvScratch);
        if (fields.length !== plan.csv!.width) {
          throw new RecordError(
            'invalid_csv',
            `${part} has ${fields.length} CSV fields, expected ${plan.csv!.width} (${plan.csv!.names.join(', ')})`,
          );
        }
      } else {
        doc = exact ? parseJsonExact(text, part) : parseJson(text, part);
        if (plan.byName !== null) spreadFlattened(plan, doc, row, part, ctx);
      }
    }
  }

  for (let i = 0; i < cols.length; i++) {
    const c = cols[i];
    const s = c.source;
    switch (s.kind) {
      case 'flat':
        row[i] = plan.unknownFields === 'evolve' ? coerceOrWiden(plan, c, row[i]) : c.coerce(row[i]);
        break;
      case 'path':
        row[i] = c.coerce(resolvePath(doc, s.steps));
        break;
      case 'csv':
        row[i] = c.coerce(fields![s.index]);
        break;
      case 'part': {
        const known = s.part === 'key' ? keyText : valueText;
        row[i] = c.coerce(known !== undefined ? known : partValue(plan, rec, s.part, c));
        break;
      }
      case 'meta':
        row[i] = c.coerce(metaValue(plan, rec, s.meta, c));
        break;
      case 'partition':
        break; // after the other columns, which a field partition may read
      case 'none':
        row[i] = null;
        break;
    }
  }
  const sc = plan.scratch;
  if (sc.newFields.length > 0 || sc.widenings.length > 0) throw new SchemaGrowth([...sc.newFields], [...sc.widenings]);
  const pc = plan.partitionColumn;
  if (pc !== null) {
    row[pc.index] = cols[pc.index].coerce(pc.value(rec, row, ctx));
  }
  return row;
}

/** One change of a keyed table: the key's new row, or null when the change deletes the key. */
export interface ChangeRow {
  /** The canonical text of the key (keyText). */
  key: string;
  row: Row | null;
  /** The change's source position when the envelope gives one (Debezium's LSN, DTS's recordID), else 0. */
  position: number;
}

/**
 * A change stream's record (mapping.changes) as the changes it holds, into `out` (emptied
 * first), in the order they apply; a record may hold none (a Debezium tombstone) or several (a
 * Canal message, a key change's delete and insert). Returns the RecordError saying why the
 * record is refused (a SchemaGrowth when it asks for new columns), null when it is read.
 * Never throws for anything about the record.
 */
export function transformChanges(plan: Plan, rec: KafkaRecord, ctx: RecordContext, out: ChangeRow[]): RecordError | null {
  const read = readRecord(rec, true, (exact) => {
    out.length = 0;
    changesOf(plan, rec, ctx, exact, out);
    return null;
  });
  if (read !== null) out.length = 0;
  return read;
}

function changesOf(plan: Plan, rec: KafkaRecord, ctx: RecordContext, exact: boolean, out: ChangeRow[]): void {
  const cp = plan.changes!;
  let value: unknown = null;
  if (rec.value !== undefined && rec.value !== null) {
    const text = decodeText(rec.value, 'value', plan.limits.maxRecordBytes);
    value = exact ? parseJsonExact(text, 'value') : parseJson(text, 'value');
  }
  const changes = decodeChanges(cp.envelope, { value, key: () => recordKey(plan, rec, exact), keyColumns: cp.keyNames });
  for (const change of changes) {
    const position = change.sourcePosition === undefined ? 0 : Number(change.sourcePosition);
    if (change.op === 'upsert') {
      const row = buildRow(plan, rec, ctx, exact, change.image);
      const key = keyText(
        plan,
        cp.keyColumns.map((i) => row[i]),
      );
      out.push({ key, row, position });
    } else out.push({ key: deletedKey(plan, rec, change.image), row: null, position });
  }
}

/** The record's Kafka key for an envelope that needs it: parsed when it is JSON, else its text. */
function recordKey(plan: Plan, rec: KafkaRecord, exact: boolean): unknown {
  if (rec.key === undefined || rec.key === null) return null;
  const text = decodeText(rec.key, 'key', plan.limits.maxRecordBytes);
  try {
    return exact ? parseJsonExact(text, 'key') : parseJson(text, 'key');
  } catch {
    return text;
  }
}

/** The key a delete names, read from its image through the key columns' mappings and types. */
function deletedKey(plan: Plan, rec: KafkaRecord, image: Record<string, unknown>): string {
  const cp = plan.changes!;
  const values = cp.keyColumns.map((i) => {
    const c = plan.columns[i];
    const s = c.source;
    const raw = s.kind === 'path' ? resolvePath(image, s.steps) : s.kind === 'meta' ? metaValue(plan, rec, s.meta, c) : image[c.name];
    if (raw === null || raw === undefined)
      throw new RecordError('no_key', `the ${cp.envelope} delete has no value for key column "${c.name}"`, c.name);
    return c.coerce(raw);
  });
  return keyText(plan, values);
}

/**
 * A key's canonical text: its values, in key order, as a JSON array (longs and decimals
 * beyond ±2^53 as their digits, binary as hex). Equal keys always give equal text: each
 * column's coercion gives one shape per value.
 */
export function keyText(plan: Plan, values: readonly RowValue[]): string {
  let text = '[';
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (v === null || v === undefined) {
      const name = plan.columns[plan.changes!.keyColumns[i]].name;
      throw new RecordError('no_key', `the row has no value for key column "${name}"`, name);
    }
    if (i > 0) text += ',';
    text +=
      typeof v === 'bigint' ? v.toString() : v instanceof Uint8Array ? JSON.stringify(Buffer.from(v).toString('hex')) : JSON.stringify(v);
  }
  return `${text}]`;
}

/** A flattened value into its column; a value beyond the column's type asks for a permitted widening instead. */
function coerceOrWiden(plan: Plan, c: ColumnPlan, raw: unknown): RowValue {
  try {
    return c.coerce(raw);
  } catch (e) {
    if (!(e instanceof RecordError) || e.reason !== 'out_of_range') throw e;
    const to = widenedType(c.type, raw);
    if (to === null) throw e;
    plan.scratch.widenings.push({ column: c.name, to });
    return null;
  }
}

/**
 * Implicit flattening: place each flattened field in its column's slot. Two fields that
 * flatten to one column are refused naming both paths; a field without a column is
 * refused (FLATTEN), collected for schema evolution, or counted by name.
 */
function spreadFlattened(plan: Plan, doc: unknown, row: Row, part: string, ctx: RecordContext): void {
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) {
    throw new RecordError(
      'not_an_object',
      `${part} is ${doc === null ? 'null' : Array.isArray(doc) ? 'an array' : `a JSON ${typeof doc}`}, ${plan.format} at flatten level ${plan.flattenLevel} needs a JSON object`,
    );
  }
  const byName = plan.byName!;
  const sc = plan.scratch;
  sc.stamp++;
  sc.newFields.length = 0;
  sc.widenings.length = 0;
  const obj = doc as Record<string, unknown>;
  if (plan.flattenLevel === 1) {
    for (const key in obj) {
      let name = key;
      let idx = byName.get(key);
      if (idx === undefined && key.includes('.')) {
        name = columnName('', key);
        idx = byName.get(name);
      }
      if (idx === undefined) unmapped(plan, ctx, name, key, obj[key]);
      else place(plan, row, idx, key, obj[key]);
    }
    return;
  }
  spreadLevels(plan, row, ctx, obj, plan.flattenLevel, sc.fields, null);
}

const isJsonObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

/**
 * Flattening below level 1 (as flattenInto, the reference `flatten` uses for inference, names
 * and paths the fields): each field of `obj` into its column, objects above the last level
 * expanded, through the fields met before.
 */
function spreadLevels(
  plan: Plan,
  row: Row,
  ctx: RecordContext,
  obj: Record<string, unknown>,
  level: number,
  known: Map<string, FieldNode>,
  parent: FieldNode | null,
): void {
  for (const key in obj) {
    const value = obj[key];
    let node = known.get(key);
    if (node === undefined) {
      node = fieldNode(plan, parent, key);
      if (known.size < FIELD_NODES_PER_LEVEL) known.set(key, node);
    }
    if (level > 1 && isJsonObject(value)) {
      node.children ??= new Map();
      spreadLevels(plan, row, ctx, value, level - 1, node.children, node);
    } else if (node.column === undefined) unmapped(plan, ctx, node.name, node.path, value);
    else place(plan, row, node.column, node.path, value);
  }
}

function fieldNode(plan: Plan, parent: FieldNode | null, key: string): FieldNode {
  const dotted = key.includes('.');
  const name = parent === null && !dotted ? key : columnName(parent?.name ?? '', key);
  const step = dotted ? pathStep(key) : key;
  const path = parent === null ? step : `${parent.path}.${step}`;
  return { name, path, column: plan.byName!.get(name), children: undefined };
}

function place(plan: Plan, row: Row, idx: number, path: string, value: unknown): void {
  const sc = plan.scratch;
  if (sc.seenAt[idx] === sc.stamp) throw collision(plan, sc.seenPath[idx], path, plan.columns[idx].name);
  sc.seenAt[idx] = sc.stamp;
  sc.seenPath[idx] = path;
  row[idx] = value as RowValue; // raw until the column loop coerces it
}

function unmapped(plan: Plan, ctx: RecordContext, name: string, path: string, value: unknown): void {
  switch (plan.unknownFields) {
    case 'refuse':
      throw unknownField(path, name);
    case 'count':
      if (ctx.unmapped) ctx.unmapped.set(path, (ctx.unmapped.get(path) ?? 0) + 1);
      return;
    case 'evolve': {
      if (value === null || value === undefined) return; // no type to give it yet
      const fields = plan.scratch.newFields;
      for (const f of fields) if (f.name === name) throw collision(plan, f.path, path, name);
      fields.push({ name, path, value });
      return;
    }
  }
}

/**
 * Paths as the error shows them: a key with a dot in it quoted, so `"a.b"` and `a.b` differ.
 * Level 1 passes raw top-level keys (quoted here, on the error path only); deeper levels'
 * paths come from flattenInto, which quotes such keys already.
 */
const shownPath = (plan: Plan, path: string) => (plan.flattenLevel === 1 && path.includes('.') ? JSON.stringify(path) : path);

function collision(plan: Plan, first: string, second: string, column: string): RecordError {
  return new RecordError(
    'field_collision',
    `fields ${shownPath(plan, first)} and ${shownPath(plan, second)} both flatten to column "${column}"; map them with explicit fields`,
    column,
  );
}

function unknownField(path: string, name: string): RecordError {
  const as = path === name ? '' : ` (as "${name}")`;
  return new RecordError('unknown_field', `field "${path}"${as} has no column in the table`, name);
}

/** A key or value read whole (TEXT, BINARY, and the part JSON did not parse). */
function partValue(plan: Plan, rec: KafkaRecord, part: 'key' | 'value', c: ColumnPlan): unknown {
  const bytes = part === 'key' ? rec.key : rec.value;
  if (bytes === undefined || bytes === null) return null;
  if (plan.format === 'BINARY' || c.type.kind === 'binary' || c.type.kind === 'fixed') return stripBinary(bytes, part, plan);
  const text = decodeText(bytes, part, plan.limits.maxRecordBytes);
  if (plan.format === 'JSON') parseJson(text, part);
  return text;
}

function stripBinary(bytes: Buffer, part: string, plan: Plan): Buffer {
  if (bytes.length > plan.limits.maxRecordBytes) {
    throw new RecordError('too_large', `${part} is ${bytes.length} bytes, over the ${plan.limits.maxRecordBytes}-byte limit`);
  }
  return bytes;
}

function metaValue(plan: Plan, rec: KafkaRecord, meta: MetaField, c: ColumnPlan): unknown {
  switch (meta) {
    case 'topic':
      return rec.topic;
    case 'partition':
    case '__partition__':
      return rec.partition;
    case 'offset':
    case '__offset__':
      return rec.offset;
    case '__timestamp__':
      return rec.timestampMs;
    case '__key__':
    case '__value__': {
      const bytes = meta === '__key__' ? rec.key : rec.value;
      if (bytes === undefined || bytes === null) return null;
      const part = meta === '__key__' ? 'key' : 'value';
      if (c.type.kind === 'binary' || c.type.kind === 'fixed') return stripBinary(bytes, part, plan);
      return decodeText(bytes, part, plan.limits.maxRecordBytes);
    }
    case '__headers__':
      return headersJson(rec);
  }
}

/**
 * Headers as a JSON object of UTF-8 strings (null for a null value). A key that repeats
 * becomes an array of its values, so nothing is dropped.
 */
export function headersJson(rec: KafkaRecord): string {
  const out: Record<string, string | null | (string | null)[]> = {};
  for (const h of rec.headers) {
    const v = h.value === undefined || h.value === null ? null : stripBom(h.value).toString('utf8');
    const prev = out[h.key];
    if (prev === undefined) out[h.key] = v;
    else if (Array.isArray(prev)) prev.push(v);
    else out[h.key] = [prev, v];
  }
  return JSON.stringify(out);
}

/** The Iceberg partition tuple of a row (cached: consecutive rows usually share it). */
export function partitionOf(plan: Plan, row: Row): PartitionTuple {
  return plan.partitionTuple(row);
}
