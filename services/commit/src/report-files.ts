/**
 * What a report may ask the coordinator to commit (DESIGN.md, "Reported files are checked
 * before admission"). A data file in a report must lie under the reported table's
 * `data/` directory, carry the reporting worker's id in its name (the name the
 * transformation gives its files, shared/src/data-files.ts), exist with the reported size, and
 * be Parquet whose footer holds the reported row count and columns that fit the table's
 * schema (or the schema the report evolved it to), with partition values for the table's
 * partition fields. A report with any other file is refused
 * whole, naming the file and the reason, before anything of it is admitted.
 *
 * The decisions are pure functions over a path, a footer and a schema; `checkReportedFiles`
 * does the I/O: one GetTable, then per file a stat and a read of the file's first 4 bytes
 * and its footer, never its data.
 */
import type { ReportDataFilesRequest } from '#shared/gen/sluice/v1/commit.js';
import type { DataFile, PartitionSpec, Schema, TableRef } from '#shared/gen/sluice/v1/types.js';
import { DATA_DIR, isDataFileNameOf } from '#shared/data-files.js';
import { invalidArgument, notFound, permissionDenied, type SluiceError } from '#shared/errors.js';
import { parsePrimitive, type PrimitiveType } from '#shared/iceberg/single-value.js';
import {
  FooterError,
  PHYSICAL_TYPE_NAMES,
  PhysicalType,
  type ParquetFooter,
  readParquetFooter,
  Repetition,
  type SchemaElement,
  topLevelColumns,
} from '#shared/parquet/footer.js';
import { isSafeSegment, normalizeLocation, StorageError, type Storage } from '#shared/storage/index.js';
import type { CatalogClient } from './catalog.js';
import { tableName } from './catalog.js';

/** Why a file is refused: `outside` (PERMISSION_DENIED) when it is not the table's to commit. */
export interface FileRefusal {
  kind: 'outside' | 'invalid';
  reason: string;
}

/** At most this much of a caller's text is quoted back. */
const QUOTE_MAX = 64;
export const quoted = (s: string): string => JSON.stringify(s.length > QUOTE_MAX ? `${s.slice(0, QUOTE_MAX)}…` : s);

/**
 * Where a reported file may be: under `<table location>/data/`, through path segments that
 * are plain names (also once percent-decoded, as a mounted location is), named as the
 * reporting worker names its files.
 */
export function checkFilePath(tableLocation: string, workerId: string, filePath: string): FileRefusal | undefined {
  const dataDir = `${normalizeLocation(tableLocation)}/${DATA_DIR}/`;
  let file: string;
  try {
    file = normalizeLocation(filePath);
  } catch {
    // Relative, or with dot segments: not a place we can show to be inside the table.
    return { kind: 'outside', reason: 'is not an absolute location without dot segments' };
  }
  // The table's location is the catalog's, not the caller's: named in full.
  if (!file.startsWith(dataDir)) return { kind: 'outside', reason: `is not under the table's data directory ${JSON.stringify(dataDir)}` };
  const segments = file.slice(dataDir.length).split('/');
  for (const segment of segments) {
    let decoded: string;
    try {
      decoded = decodeURIComponent(segment);
    } catch {
      decoded = '';
    }
    // Decoded, a segment may hold a slash (Iceberg escapes one in a partition value as %2F), but
    // none of its parts may climb: a mounted location decodes %2E%2E as '..'.
    if (!isSafeSegment(segment) || decoded === '' || !decoded.split(/[\\/]/).every(isSafeSegment))
      return { kind: 'outside', reason: `has the path segment ${quoted(segment)}, which is not a plain name` };
  }
  const name = segments[segments.length - 1];
  if (!isDataFileNameOf(name, workerId))
    return { kind: 'invalid', reason: `is not a file of worker ${quoted(workerId)} (its files are named <worker>-<n>.parquet)` };
  return undefined;
}

/** The fields of a report's file that need no I/O: format, counts, sizes. */
export function checkFileFields(f: DataFile): string | undefined {
  if (f.fileFormat.toLowerCase() !== 'parquet') return `has format ${quoted(f.fileFormat)}; only Parquet data files are committed`;
  if (!(f.recordCount >= 0)) return `has a negative record_count ${f.recordCount}`;
  if (!(f.fileSizeInBytes > 0)) return `has file_size_in_bytes ${f.fileSizeInBytes}; a Parquet file has at least 12 bytes`;
  return undefined;
}

/**
 * Whether a file's partition fits the table's spec: the spec's id, one value per partition
 * field with its field id, in order (the manifest stores them by position), and a directory
 * `<field name>=<value>` per field below data/, as the transformation lays files out. Values
 * are not compared with the directory names: rendering them is the transformation core's.
 * Call after checkFilePath accepted the location.
 */
export function checkPartition(f: DataFile, spec: PartitionSpec | undefined, tableLocation: string): string | undefined {
  const fields = spec?.fields ?? [];
  const specId = spec?.specId ?? 0;
  if (f.specId !== specId) return `has partition spec id ${f.specId}; the table's is ${specId}`;
  const got = f.partition.map((p) => p.fieldId).join(', ');
  const want = fields.map((p) => p.fieldId).join(', ');
  if (got !== want) return `has partition values for field ids [${got}]; the table's partition fields are [${want}]`;
  const dirs = normalizeLocation(f.filePath)
    .slice(`${normalizeLocation(tableLocation)}/${DATA_DIR}/`.length)
    .split('/')
    .slice(0, -1);
  const names = fields.map((p) => p.name);
  if (dirs.length !== names.length || dirs.some((d, i) => !d.startsWith(`${names[i]}=`)))
    return `is not in a partition directory ${names.map((n) => `${n}=…`).join('/') || '(none: the table is unpartitioned)'} below data/`;
  return undefined;
}

/** Whether a Parquet column can be read as a table column of this type (Iceberg's type promotions included). */
export function physicalFits(type: PrimitiveType, e: SchemaElement): boolean {
  const t = e.type;
  switch (type.kind) {
    case 'boolean':
      return t === PhysicalType.BOOLEAN;
    case 'int':
    case 'date':
      return t === PhysicalType.INT32;
    case 'long':
      return t === PhysicalType.INT32 || t === PhysicalType.INT64;
    case 'float':
      return t === PhysicalType.FLOAT;
    case 'double':
      return t === PhysicalType.FLOAT || t === PhysicalType.DOUBLE;
    case 'time':
    case 'timestamp':
    case 'timestamptz':
      return t === PhysicalType.INT64;
    case 'string':
    case 'binary':
      return t === PhysicalType.BYTE_ARRAY;
    case 'uuid':
      return t === PhysicalType.FIXED_LEN_BYTE_ARRAY && e.typeLength === 16;
    case 'fixed':
      return t === PhysicalType.FIXED_LEN_BYTE_ARRAY && e.typeLength === type.length;
    case 'decimal':
      return (
        (t === PhysicalType.INT32 ||
          t === PhysicalType.INT64 ||
          t === PhysicalType.FIXED_LEN_BYTE_ARRAY ||
          t === PhysicalType.BYTE_ARRAY) &&
        e.scale === type.scale &&
        (e.precision ?? Number.POSITIVE_INFINITY) <= type.precision
      );
  }
}

const describeElement = (e: SchemaElement): string => {
  const physical = e.type === undefined ? 'a group' : (PHYSICAL_TYPE_NAMES[e.type] ?? `type ${e.type}`);
  const decimal = e.scale !== undefined ? ` (precision ${e.precision}, scale ${e.scale})` : '';
  const length = e.typeLength !== undefined ? ` (length ${e.typeLength})` : '';
  return `${physical}${decimal}${length}`;
};

/**
 * Whether a file's footer fits the table: its row count is the reported one, and every
 * column has a field id of a primitive table column whose type reads its values; required
 * table columns are all present. Columns the file lacks read as null (older files).
 */
export function checkFooter(footer: ParquetFooter, recordCount: number, schema: Schema): string | undefined {
  if (footer.numRows !== recordCount) return `holds ${footer.numRows} rows, not the reported record_count ${recordCount}`;
  let columns: ReturnType<typeof topLevelColumns>;
  try {
    columns = topLevelColumns(footer);
  } catch (err) {
    return `has an unreadable Parquet footer: ${(err as Error).message}`;
  }
  const fields = new Map(schema.fields.map((f) => [f.id, f]));
  const seen = new Set<number>();
  for (const { element, nested } of columns) {
    const column = quoted(element.name);
    if (element.fieldId === undefined) return `has column ${column} without a field id`;
    const field = fields.get(element.fieldId);
    if (!field) return `has column ${column} with field id ${element.fieldId}, which is not a column of the table`;
    if (seen.has(element.fieldId)) return `has field id ${element.fieldId} twice`;
    seen.add(element.fieldId);
    const kind = field.type?.kind;
    if (nested || kind?.$case !== 'primitive' || element.repetition === Repetition.REPEATED)
      return `has column ${column} (field id ${element.fieldId}) as ${describeElement(element)}, which does not fit the table's ${quoted(field.name)}`;
    let type: PrimitiveType;
    try {
      type = parsePrimitive(kind.value);
    } catch {
      return `has column ${column} (field id ${element.fieldId}) for the table column ${quoted(field.name)} of an unknown type`;
    }
    if (!physicalFits(type, element))
      return `has column ${column} (field id ${element.fieldId}) as ${describeElement(element)}, which cannot be read as the table's ${quoted(field.name)} ${kind.value}`;
  }
  for (const f of schema.fields) if (f.required && !seen.has(f.id)) return `lacks the required column ${quoted(f.name)} (field id ${f.id})`;
  return undefined;
}

/** The refusal for file `index` of a report, naming it and the reason. */
function refuse(index: number, f: DataFile, kind: FileRefusal['kind'], reason: string): SluiceError {
  const message = `files[${index}] ${quoted(f.filePath)} ${reason}; nothing of this report is admitted`;
  const details = { field: `files[${index}].file_path` };
  return kind === 'outside' ? permissionDenied(message, details) : invalidArgument(message, details);
}

/** The I/O half for one file already past the path check: size, magic, footer. */
async function checkStoredFile(storage: Storage, f: DataFile, schema: Schema): Promise<string | undefined> {
  try {
    const info = await storage.stat(f.filePath);
    if (!info) return 'does not exist';
    if (info.size !== f.fileSizeInBytes) return `has ${info.size} bytes, not the reported file_size_in_bytes ${f.fileSizeInBytes}`;
    return checkFooter(await readParquetFooter(storage, f.filePath, info.size), f.recordCount, schema);
  } catch (err) {
    if (err instanceof FooterError) return `is not a readable Parquet file: ${err.message}`;
    if (err instanceof StorageError) return `cannot be read: ${err.message}`;
    throw err;
  }
}

/** Files checked at once: a report holds a few, one per partition value and roll. */
const PARALLEL = 8;

/**
 * Refuses the report (throws) unless every file in it may be committed to `ref`, the table
 * the report names (an error table's report is checked against the error table).
 */
/**
 * A data report's files hold at most one row per offset it covers: a record becomes at most
 * one row. So a file reported again (already committed, or another report's) cannot ride on a
 * report that covers nothing; an error table's report covers no offsets of its own and is
 * bounded by its data report instead.
 */
export function checkRowsCovered(report: Pick<ReportDataFilesRequest, 'files' | 'offsets'>): string | undefined {
  const rows = report.files.reduce((sum, f) => sum + f.recordCount, 0);
  const covered = report.offsets.reduce((sum, r) => sum + Math.max(0, r.endOffset - r.startOffset), 0);
  return rows > covered
    ? `the files hold ${rows} rows but the report covers ${covered} offsets; a record becomes at most one row`
    : undefined;
}

export async function checkReportedFiles(
  ctx: { catalog: CatalogClient; storage: Storage },
  ref: TableRef,
  report: ReportDataFilesRequest,
): Promise<void> {
  for (const [i, f] of report.files.entries()) {
    if (!f.filePath) throw invalidArgument(`files[${i}] has no file_path`, { field: `files[${i}].file_path` });
    const fields = checkFileFields(f);
    if (fields) throw refuse(i, f, 'invalid', fields);
  }
  if (report.files.length === 0) return;
  const { table } = await ctx.catalog.getTable({ ref });
  if (!table?.schema) throw notFound(`table ${tableName(ref)} does not exist`, { table: tableName(ref) });
  const places = new Set<string>();
  for (const [i, f] of report.files.entries()) {
    const misplaced = checkFilePath(table.location, report.workerId, f.filePath);
    if (misplaced) throw refuse(i, f, misplaced.kind, misplaced.reason);
    // Compared in normal form: `file:///x` and `/x` are one file.
    const place = normalizeLocation(f.filePath);
    if (places.has(place)) throw refuse(i, f, 'invalid', 'is reported twice');
    places.add(place);
    const partition = checkPartition(f, table.partitionSpec, table.location);
    if (partition) throw refuse(i, f, 'invalid', partition);
  }
  // Files written with the schema the report evolved the table to fit that schema; the
  // round checks that it fits the table (schema-merge.ts).
  const schema = report.schema ?? table.schema;
  for (let start = 0; start < report.files.length; start += PARALLEL) {
    const batch = report.files.slice(start, start + PARALLEL);
    const reasons = await Promise.all(batch.map((f) => checkStoredFile(ctx.storage, f, schema)));
    const bad = reasons.findIndex((r) => r !== undefined);
    if (bad >= 0) throw refuse(start + bad, batch[bad], 'invalid', reasons[bad]!);
  }
}
