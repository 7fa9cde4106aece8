/**
 * `sluice query`: SQL over what landed. Each `<database>.<table>` the query names becomes a
 * DuckDB view over the live data files of the table's current snapshot (or the one chosen
 * with a snapshot id or a point in time), read from the catalog's metadata — the same files
 * any Iceberg reader would see, nothing more.
 */
import { status as grpcStatus } from '@grpc/grpc-js';
import {
  DuckDBBlobValue,
  DuckDBInstance,
  DuckDBTypeId,
  JsonDuckDBValueConverter,
  type DuckDBConnection,
  type DuckDBDecimalType,
  type DuckDBValueConverter,
  type Json,
} from '@duckdb/node-api';
import { grpcCode } from '#shared/errors.js';
import type { Table } from '#shared/gen/sluice/v1/catalog.js';
import type { Schema } from '#shared/gen/sluice/v1/types.js';
import { parseMetadata } from '#shared/iceberg/metadata.js';
import { schemaToProto } from '#shared/iceberg/schema.js';
import type { TableMetadata } from '#shared/iceberg/types.js';
import { resolveSnapshot, snapshotFiles, type LiveDataFile } from '#shared/iceberg/scan.js';
import { IcebergError } from '#shared/iceberg/errors.js';
import { createStorage } from '#shared/storage/index.js';
import { cacheOptionsFromEnv, localCopies } from './object-cache.js';
import { columnRanges, fileMayMatch } from './prune.js';
import type { CatalogClient } from './context.js';
import { typeText } from './iceberg-types.js';
import { CliError } from './output.js';

export interface SnapshotSelector {
  snapshotId?: number;
  asOfMs?: number;
}

export interface QueryResult {
  columns: string[];
  rows: Record<string, unknown>[];
  /** The table snapshots the query read. */
  /** Per table: the snapshot read, the data files read, and those the WHERE clause let it skip (prune.ts). */
  tables: { table: string; snapshotId: number | null; files: number; skippedFiles: number }[];
}

const DUCKDB_TYPES: Record<string, string> = {
  boolean: 'BOOLEAN',
  int: 'INTEGER',
  long: 'BIGINT',
  float: 'FLOAT',
  double: 'DOUBLE',
  date: 'DATE',
  time: 'TIME',
  timestamp: 'TIMESTAMP',
  timestamptz: 'TIMESTAMPTZ',
  string: 'VARCHAR',
  uuid: 'UUID',
  binary: 'BLOB',
};

function duckdbType(icebergType: string): string {
  const decimal = /^decimal\((\d+),\s*(\d+)\)$/.exec(icebergType);
  if (decimal) return `DECIMAL(${decimal[1]},${decimal[2]})`;
  if (icebergType.startsWith('fixed[')) return 'BLOB';
  // Nested columns are stored as JSON text by the transformation core.
  return DUCKDB_TYPES[icebergType] ?? 'VARCHAR';
}

/** The schema a snapshot was written with (the current one when the snapshot does not say). */
function snapshotSchema(meta: TableMetadata, snapshot: { 'schema-id'?: number } | null | undefined): Schema {
  const id = snapshot?.['schema-id'] ?? meta['current-schema-id'];
  const json = meta.schemas.find((s) => s['schema-id'] === id) ?? meta.schemas.find((s) => s['schema-id'] === meta['current-schema-id'])!;
  return schemaToProto(json);
}

const quoteIdent = (name: string) => `"${name.replace(/"/g, '""')}"`;
const quoteString = (text: string) => `'${text.replace(/'/g, "''")}'`;

/** `db.table` pairs the SQL names, outside string literals and quoted identifiers. */
export function tableCandidates(sql: string): { database: string; table: string }[] {
  const bare = sql.replace(/'(?:[^']|'')*'/g, "''").replace(/"(?:[^"]|"")*"/g, '""');
  const found = new Map<string, { database: string; table: string }>();
  for (const match of bare.matchAll(/(?<![\w.])([A-Za-z_][A-Za-z0-9_]*)\.([A-Za-z_][A-Za-z0-9_]*)(?![\w.(])/g)) {
    const database = match[1].toLowerCase();
    const table = match[2].toLowerCase();
    found.set(`${database}.${table}`, { database, table });
  }
  return [...found.values()];
}

export async function runQuery(catalog: CatalogClient, sql: string, selector: SnapshotSelector = {}): Promise<QueryResult> {
  const tables: Table[] = [];
  const missing: string[] = [];
  for (const ref of tableCandidates(sql)) {
    try {
      const { table } = await catalog.getTable({ ref });
      if (table) tables.push(table);
    } catch (err) {
      // `alias.column` looks like `database.table` too; only real tables matter.
      if (grpcCode(err) !== grpcStatus.NOT_FOUND && grpcCode(err) !== grpcStatus.INVALID_ARGUMENT) throw err;
      missing.push(`${ref.database}.${ref.table}`);
    }
  }
  if (tables.length === 0) {
    // A mistyped table name is the usual cause: say which names were looked up.
    const looked = missing.length > 0 ? ` (no table ${missing.join(', ')})` : '';
    throw new CliError(
      `the query names no Sluice table${looked}; write tables as <database>.<table>, e.g. SELECT count(*) FROM shop.orders`,
    );
  }

  const storage = createStorage();
  const instance = await DuckDBInstance.create(':memory:');
  const connection = await instance.connect();
  try {
    const read: QueryResult['tables'] = [];
    const travels = selector.snapshotId !== undefined || selector.asOfMs !== undefined;
    for (const table of tables) {
      const name = `${table.ref!.database}.${table.ref!.table}`;
      const meta = parseMetadata(await storage.read(table.metadataLocation));
      let snapshot: ReturnType<typeof resolveSnapshot>;
      try {
        snapshot = resolveSnapshot(meta, selector);
      } catch (err) {
        // A --snapshot or --as-of that names no snapshot of the table is bad input (exit 2).
        if (err instanceof IcebergError) throw new CliError(`${name}: ${err.message}`, err.kind === 'not-found' ? 2 : 1);
        throw err;
      }
      // Time travel reads with the schema its snapshot was written with, as Iceberg does; the
      // present reads with the table's current schema.
      const schema = travels ? snapshotSchema(meta, snapshot) : table.schema;
      const scan = snapshot ? await snapshotFiles(storage, snapshot) : undefined;
      const live = scan?.dataFiles ?? [];
      // Files the WHERE clause rules out by their column bounds are neither fetched nor read.
      const ranges = tables.length === 1 ? columnRanges(sql, schema?.fields ?? []) : new Map();
      const dataFiles = live.filter((f) => fileMayMatch(ranges, f.dataFile.columnStats));
      const files = await localCopies(
        storage,
        dataFiles.map((f) => ({ location: f.dataFile.filePath, size: f.dataFile.fileSizeInBytes })),
        cacheOptionsFromEnv(),
      );
      const deletes = await deletedPositions(connection, storage, read.length, dataFiles, files, scan?.positionDeletes ?? []);
      const view = `${quoteIdent(table.ref!.database)}.${quoteIdent(table.ref!.table)}`;
      await connection.run(`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(table.ref!.database)}`);
      const columns = (schema?.fields ?? []).map((f) => ({ id: f.id, name: f.name, type: duckdbType(typeText(f.type)) }));
      if (files.length === 0) {
        await connection.run(`CREATE TABLE ${view} (${columns.map((c) => `${quoteIdent(c.name)} ${c.type}`).join(', ')})`);
      } else {
        // Columns are matched by Iceberg field id, never by name: a renamed column keeps its
        // values in files written before the rename, a column added later reads as NULL in older
        // files, and each is cast to the schema's type.
        const byFieldId = columns
          .map((c) => `${c.id}: {name: ${quoteString(c.name)}, type: ${quoteString(c.type)}, default_value: NULL}`)
          .join(', ');
        const source = `read_parquet([${files.map(quoteString).join(', ')}], schema = MAP {${byFieldId}}`;
        await connection.run(
          deletes === null
            ? `CREATE VIEW ${view} AS SELECT * FROM ${source})`
            : // Merge-on-read: rows a position delete names are left out (by local file and row number).
              `CREATE VIEW ${view} AS SELECT * EXCLUDE (${SLUICE_FILE}, file_row_number) FROM ${source}, filename = ${quoteString(SLUICE_FILE)}, file_row_number = true) d
               WHERE NOT EXISTS (SELECT 1 FROM ${deletes} x WHERE x.local = d.${SLUICE_FILE} AND x.pos = d.file_row_number)`,
        );
      }
      read.push({
        table: name,
        snapshotId: snapshot?.['snapshot-id'] ?? null,
        files: files.length,
        skippedFiles: live.length - files.length,
      });
    }
    let reader: Awaited<ReturnType<typeof connection.runAndReadAll>>;
    try {
      reader = await connection.runAndReadAll(sql);
    } catch (err) {
      throw new CliError(`query failed: ${(err as Error).message.split('\n')[0]}`);
    }
    return { columns: reader.columnNames(), rows: jsonRows(reader), tables: read };
  } finally {
    connection.closeSync();
    instance.closeSync();
  }
}

/** The column the merge-on-read view reads each row's file name into, before leaving it out. */
const SLUICE_FILE = '__sluice_file__';

/**
 * A keyed table's position deletes that apply to the data files read, as a DuckDB table
 * (local file path, position), or null when none apply. A delete applies to a data file of its
 * partition with a data sequence number up to its own (spec, "Scan Planning"); the file path
 * it names is the data file's location, which the table maps to the local copy read.
 */
async function deletedPositions(
  connection: DuckDBConnection,
  storage: ReturnType<typeof createStorage>,
  n: number,
  dataFiles: readonly LiveDataFile[],
  localPaths: readonly string[],
  positionDeletes: readonly LiveDataFile[],
): Promise<string | null> {
  if (positionDeletes.length === 0 || dataFiles.length === 0) return null;
  const deleteCopies = await localCopies(
    storage,
    positionDeletes.map((f) => ({ location: f.dataFile.filePath, size: f.dataFile.fileSizeInBytes })),
    cacheOptionsFromEnv(),
  );
  const files = `sluice_files_${n}`;
  const table = `sluice_deletes_${n}`;
  await connection.run(`CREATE TEMP TABLE ${files} (location VARCHAR, local VARCHAR, seq BIGINT)`);
  await connection.run(
    `INSERT INTO ${files} VALUES ${dataFiles.map((f, i) => `(${quoteString(f.dataFile.filePath)}, ${quoteString(localPaths[i])}, ${f.sequenceNumber ?? 0})`).join(', ')}`,
  );
  const reads = positionDeletes.map(
    (f, i) => `SELECT file_path, pos, ${f.sequenceNumber ?? 0} AS seq FROM read_parquet(${quoteString(deleteCopies[i])})`,
  );
  await connection.run(
    `CREATE TEMP TABLE ${table} AS SELECT f.local, x.pos FROM (${reads.join(' UNION ALL ')}) x JOIN ${files} f ON f.location = x.file_path WHERE x.seq >= f.seq`,
  );
  return table;
}

type Reader = Awaited<ReturnType<DuckDBConnection['runAndReadAll']>>;

/**
 * Rows for scripts, one JSON value per cell at every depth (inside lists, structs and maps
 * too): integers as numbers where a double holds them exactly, else as strings of their exact
 * digits; decimals up to 15 digits as numbers, wider ones as exact strings; binary as base64;
 * lists as arrays, structs as objects, maps as arrays of `{key, value}` (keys need not be
 * strings); dates, times and timestamps as DuckDB's text. Everything else as DuckDB's own JSON
 * conversion gives it, which renders BIGINT as strings and blobs with `\x` escapes.
 */
export const jsonCell: DuckDBValueConverter<Json> = (value, type, self) => {
  if (value === null) return null;
  switch (type.typeId) {
    case DuckDBTypeId.BIGINT:
    case DuckDBTypeId.UBIGINT:
    case DuckDBTypeId.HUGEINT:
    case DuckDBTypeId.UHUGEINT: {
      const n = Number(value);
      return Number.isSafeInteger(n) ? n : String(value);
    }
    case DuckDBTypeId.DECIMAL:
      return (type as DuckDBDecimalType).width <= 15 ? Number(String(value)) : String(value);
    case DuckDBTypeId.BLOB:
      return value instanceof DuckDBBlobValue ? Buffer.from(value.bytes).toString('base64') : String(value);
    default:
      // Nested types recurse through `self`, so their elements get the cases above.
      return JsonDuckDBValueConverter(value, type, self);
  }
};

function jsonRows(reader: Reader): Record<string, unknown>[] {
  return reader.convertRowObjects(jsonCell);
}

/** `--as-of`: epoch milliseconds or an ISO-8601 time. */
export function parseAsOf(text: string): number {
  if (/^\d+$/.test(text)) return Number(text);
  const ms = Date.parse(text);
  if (Number.isNaN(ms))
    throw new CliError(`--as-of ${JSON.stringify(text)} is not a time (epoch ms or ISO-8601, e.g. 2026-11-21T08:00:00Z)`, 2);
  return ms;
}
