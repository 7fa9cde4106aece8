/**
 * Parquet data files with Iceberg field ids, zstd-compressed, plus the DataFile
 * description (record count, size, per-column stats, partition) a manifest needs. Used by
 * the transformation service for new files and by the commit service's compaction.
 *
 * Writer chosen by measurement (200k rows of a 10-column schema: long, string, int,
 * double, boolean, timestamp, date, decimal(10,2), string, long; Node 20, 2 cores):
 *
 *   candidate                                   rows/s    file bytes  zstd  field ids
 *   DuckDB, data chunks + COPY ... FIELD_IDS    613,000    1,479,835   yes   yes
 *   DuckDB, row appender + COPY                 150,000    1,479,835   yes   yes
 *   parquet-wasm + apache-arrow (field meta)    112,000    3,434,390   yes   yes
 *   hyparquet-writer (SNAPPY)                   156,000    5,246,280   no*   via explicit schema
 *   (* only SNAPPY/UNCOMPRESSED built in; no zstd compressor among the dependencies)
 * DuckDB's data-chunk path is 4x the next candidate and its zstd files are the smallest.
 *
 * So rows are buffered column-wise in JS, moved into an in-memory DuckDB table one
 * 2048-row data chunk at a time, and written with
 * `COPY ... (FORMAT parquet, COMPRESSION zstd, FIELD_IDS {...}, RETURN_STATS)` on close. Column
 * sizes and statistics come back from the COPY itself (copy-stats.ts).
 *
 * Rows may also arrive as text tokens (token-chunk.ts, the transformation's fast path): one
 * INSERT per chunk splits and casts them in DuckDB, without a JS value per cell; it runs off the
 * main thread (a libuv worker) while the next chunk is scanned. Rows through data chunks (append) cost 6.3 µs
 * a wide row to append (0.5 µs per string cell: one N-API call each).
 *
 * CPU of the whole process (all threads) per row, appends and close together, 200k rows of
 * the pipeline bench's shapes as chunks of 4,096 token rows (wide: 22 columns, 16 strings;
 * narrow: 9), best and median of 5-7 interleaved files, Node 20, 2 cores;
 * `npm run bench -- parquet-writer` measures the writer as it is:
 *
 *   writer                                                 wide µs/row      narrow µs/row
 *   2 DuckDB threads, INSERTs committed one by one         4.3-4.9 (5.0-5.6)  1.7-1.8 (1.8-2.0)
 *   1 thread, INSERTs in one open transaction, zstd 1      3.1-3.5 (3.6-3.7)  1.1-1.2 (1.2-1.3)
 *
 * By part (wide, best of 4-8, separate scripts over the same chunks): INSERT 2.3-2.5 µs a
 * row committed one by one, 1.4-1.7 inside one transaction (each commit copied the chunk into
 * the table again; splitting and casting alone is 0.7); COPY 1.4-1.6 at zstd's default level
 * (3), 1.2-1.3 at level 1, whose files were smaller too (wide 3.06 → 2.70 MB, narrow
 * 1.88 → 1.54 MB); the statistics aggregate 0.35-0.4; parquet_metadata 0.01. A second DuckDB
 * thread cost 0.4-1.0 µs a wide row more than it saved, and raised the narrow peak. Peak RSS
 * over the process's start, one file of 64 MiB estimated (110,592 wide rows, or 400k narrow):
 * wide 219-222 MB before, 217-222 after; narrow 152-155 before, 110-112 after.
 *
 * Not taken (same chunks, 1 thread, zstd 1): the tokens kept in JS until close and split
 * straight into the COPY (a `UNION ALL` of segments of 16k rows; statistics read back from the
 * file, 0.5-0.6 µs a row): wide 3.2-3.5 against the transaction's 3.5-3.8 in the same script,
 * narrow 1.0-1.15 against 1.3-1.4, but all of it on the flush's path instead of beside the scan,
 * with a higher peak, and rows appended between chunks would need the table anyway. A `VALUES`
 * list of all chunks splits them at once (the 410 MB peak found before); a `UNION ALL` of one
 * segment per chunk costs 0.5-0.7 µs a row to prepare, and 3.3 µs to COPY on two threads (1.9
 * on one). A regular table instead of a TEMP one: INSERT 3.6 against 2.5. Without bloom
 * filters: COPY 0.1 µs cheaper, kept (Iceberg's readers use them). Row groups of 1M rows: no
 * cheaper.
 *
 * Column statistics, whichever way the rows came, are those the COPY reports (RETURN_STATS)
 * where their text is certainly exact, and a DuckDB aggregate over the table for the rest
 * (copy-stats.ts says which, and what the aggregate over every column cost): strings and
 * binaries compare by their bytes, Iceberg's order.
 *
 * Types: boolean, int, long, float, double, decimal(P,S), date, time, timestamp,
 * timestamptz, string, uuid, binary. fixed[L] is refused (unwritableFixed): DuckDB has no
 * fixed-length blob, and BINARY in its place breaks Iceberg's Java readers.
 * Nested struct/list/map columns are not written: the core keeps nested JSON as string.
 */
import { stat } from 'node:fs/promises';
import {
  BIGINT,
  BLOB,
  BOOLEAN,
  DATE,
  DECIMAL,
  DOUBLE,
  DuckDBBlobValue,
  DuckDBDataChunk,
  DuckDBDateValue,
  DuckDBDecimalValue,
  DuckDBInstance,
  DuckDBTimestampTZValue,
  DuckDBTimestampValue,
  DuckDBTimeValue,
  DuckDBUUIDValue,
  FLOAT,
  INTEGER,
  TIME,
  TIMESTAMP,
  TIMESTAMPTZ,
  UUID,
  VARCHAR,
  type DuckDBAppender,
  type DuckDBConnection,
  type DuckDBPreparedStatement,
  type DuckDBType,
  type DuckDBValue,
} from '@duckdb/node-api';
import type { ColumnStats, DataFile, PartitionValue, Schema } from '../gen/sluice/v1/types.js';
import { parsePrimitive, type PrimitiveType, serializeSingleValue, type SingleValue } from '../iceberg/single-value.js';
import { type CopyStatistics, copyStatistics, statsFromCopy } from './copy-stats.js';
import { NULL_TOKEN, TOKEN_END, type TokenChunk } from './token-chunk.js';
import { unwritableFixed } from './unwritable.js';

export type CellValue = null | boolean | number | bigint | string | Uint8Array;

export interface WriterColumn {
  fieldId: number;
  name: string;
  type: PrimitiveType;
  required: boolean;
}

export interface OpenOptions {
  /** Absolute path of the file to create (its directory must exist). */
  path: string;
  columns: readonly WriterColumn[];
  partition?: PartitionValue[];
  specId?: number;
}

const CHUNK_ROWS = 2048;
/**
 * zstd's level for the files: 1 costs less CPU than DuckDB's default (3) and made smaller
 * files of the pipeline bench's shapes (measured at the top).
 */
const ZSTD_LEVEL = 1;

/**
 * Distinct values a column's dictionary may hold in a row group before DuckDB writes its values
 * plainly. DuckDB's default kept columns of tens of thousands of distinct values (ids, session
 * keys, amounts) dictionary-encoded, which costs CPU and, under zstd, bytes.
 * `npm run bench -- parquet-writer` at 50,000 rows a file, best of 5, three interleaved rounds,
 * µs of CPU a row and file bytes:
 *
 *   limit      wide µs/row         wide bytes   narrow µs/row       narrow bytes
 *   default    3.79 / 3.85 / 4.18    744,522    1.11 / 1.16 / 1.15    413,123
 *   500        3.02 / 3.50 / 3.84    708,382    0.94 / 1.01 / 0.98    372,809
 *   2,000      3.52 / 3.23 / 3.87    708,382    0.98 / 1.01 / 0.96    376,983
 *   8,000      4.10 / 3.77 / 3.32    708,382    1.10 / 1.07 / 1.03    376,983
 *
 * 2,000 keeps the dictionary for enumerations of up to that many values (pages, product codes)
 * and gives up the rest.
 */
const DICTIONARY_SIZE_LIMIT = 2000;

/** Top-level primitive columns of an Iceberg schema, for the writer. */
export function writerColumns(schema: Schema): WriterColumn[] {
  return schema.fields.map((f) => {
    const kind = f.type?.kind;
    if (kind?.$case !== 'primitive') throw new Error(`column "${f.name}": only primitive columns can be written to Parquet here`);
    if (!(f.id > 0)) throw new Error(`column "${f.name}" has no field id; the catalog assigns ids before files are written`);
    const type = parsePrimitive(kind.value);
    if (type.kind === 'fixed') throw new Error(unwritableFixed(f.name, kind.value));
    return { fieldId: f.id, name: f.name, type, required: f.required };
  });
}

let shared: Promise<DuckDBInstance> | null = null;
/**
 * One in-memory DuckDB per process; each open writer has a connection and table of its own (a
 * TableSlot, kept for the next file of the same columns). One thread:
 * a statement runs on the thread that calls it (a libuv worker, so writers still run side by
 * side), and a second DuckDB thread bought wall time on a COPY at more CPU than it saved
 * (measured at the top).
 */
function duck(): Promise<DuckDBInstance> {
  shared ??= DuckDBInstance.create(':memory:', { threads: '1' });
  return shared;
}

/**
 * A connection with its temporary table for one column list (names and DuckDB types), and the
 * table's token INSERT once prepared. A file's rows live in a transaction on it that is never
 * committed, so once the file is written and the transaction rolled back the table is empty and
 * the slot serves the next file of the same columns.
 *
 * Why: a file's fixed cost was mostly setting these up. CPU a file of 100 wide rows (22
 * columns), 40 files a round, six interleaved rounds, Node 20, 2 cores: 10.9-16.7 ms with a
 * new connection, table and INSERT each, 7.4-11.0 ms with them kept (the rest is the COPY's own
 * start, about 2 ms of it for RETURN_STATS, and the rollback). By statement, 200 such files: the
 * INSERT's prepare 2.5-3.1 ms and its first run 2 ms more than a later one, CREATE TEMP TABLE
 * 1.0, DROP 0.7, connect 0.35. The pipeline bench's wide shape writes some 68 files per 1M
 * records (the open-file budget rolls most of them early), narrow and CSV 16-17.
 */
interface TableSlot {
  readonly conn: DuckDBConnection;
  readonly table: string;
  /** The CREATE TEMP TABLE's column list: the slot serves writers of exactly these columns. */
  readonly columnList: string;
  insertTokens: DuckDBPreparedStatement | null;
}

/** Slots between files; beyond this many the oldest is closed (a job's schema changed, a stream ended). */
const MAX_IDLE_SLOTS = 8;
const idleSlots: TableSlot[] = [];
let tableSeq = 0;

async function takeSlot(columnList: string): Promise<TableSlot> {
  // The most recently kept first: its memory is the likeliest still mapped.
  for (let i = idleSlots.length - 1; i >= 0; i--) if (idleSlots[i].columnList === columnList) return idleSlots.splice(i, 1)[0];
  const conn = await (await duck()).connect();
  const table = `sluice_w${++tableSeq}`;
  try {
    // A temporary table: inserts into it cost about two thirds of a table's (measured in the
    // comment at the top), and it is the connection's own.
    await conn.run(`CREATE TEMP TABLE ${table} (${columnList})`);
  } catch (e) {
    conn.closeSync();
    throw e;
  }
  return { conn, table, columnList, insertTokens: null };
}

/** Closes the slot's connection, and with it its temporary table. */
function closeSlot(slot: TableSlot): void {
  slot.insertTokens?.destroySync();
  slot.conn.closeSync();
}

function keepSlot(slot: TableSlot): void {
  // The INSERT keeps DuckDB's copies of the last chunk's column buffers (megabytes of a wide
  // chunk) until they are bound again: an idle slot holds none of them.
  slot.insertTokens?.clearBindings();
  idleSlots.push(slot);
  if (idleSlots.length > MAX_IDLE_SLOTS) closeSlot(idleSlots.shift()!);
}

const quoteIdent = (s: string) => `"${s.replaceAll('"', '""')}"`;
const quoteString = (s: string) => `'${s.replaceAll("'", "''")}'`;

function duckType(t: PrimitiveType): DuckDBType {
  switch (t.kind) {
    case 'boolean':
      return BOOLEAN;
    case 'int':
      return INTEGER;
    case 'long':
      return BIGINT;
    case 'float':
      return FLOAT;
    case 'double':
      return DOUBLE;
    case 'decimal':
      return DECIMAL(t.precision, t.scale);
    case 'date':
      return DATE;
    case 'time':
      return TIME;
    case 'timestamp':
      return TIMESTAMP;
    case 'timestamptz':
      return TIMESTAMPTZ;
    case 'string':
      return VARCHAR;
    case 'uuid':
      return UUID;
    case 'binary':
    case 'fixed':
      return BLOB;
  }
}

/** Row value → DuckDB value for one column type (precomputed per column). */
function toDuck(t: PrimitiveType): (v: CellValue) => DuckDBValue {
  switch (t.kind) {
    case 'long':
      return (v) => (typeof v === 'bigint' ? v : BigInt(v as number));
    case 'decimal': {
      const { precision, scale } = t;
      return (v) => new DuckDBDecimalValue(v as bigint, precision, scale);
    }
    case 'date':
      return (v) => new DuckDBDateValue(v as number);
    case 'time':
      return (v) => new DuckDBTimeValue(BigInt(v as number));
    case 'timestamp':
      return (v) => new DuckDBTimestampValue(BigInt(v as number));
    case 'timestamptz':
      return (v) => new DuckDBTimestampTZValue(BigInt(v as number));
    case 'uuid':
      return (v) => DuckDBUUIDValue.fromUint128(BigInt(`0x${(v as string).replaceAll('-', '')}`));
    case 'binary':
    case 'fixed':
      return (v) => new DuckDBBlobValue(v as Uint8Array);
    default:
      return (v) => v as DuckDBValue;
  }
}

/** A bound as DuckDB returns it, in the shape single-value serialization takes. */
function singleValue(v: DuckDBValue): SingleValue {
  if (v instanceof DuckDBDecimalValue) return v.value;
  if (v instanceof DuckDBDateValue) return v.days;
  if (v instanceof DuckDBTimeValue || v instanceof DuckDBTimestampValue || v instanceof DuckDBTimestampTZValue) return v.micros;
  if (v instanceof DuckDBUUIDValue) return v.toString();
  if (v instanceof DuckDBBlobValue) return v.bytes;
  return v as SingleValue;
}

/** A token (token-chunk.ts) as a value of the column's type, in SQL over the token `t`. */
function tokenCast(t: PrimitiveType, token: string): string {
  const value = `nullif(${token}, chr(${NULL_TOKEN}))`;
  switch (t.kind) {
    case 'string':
      return value;
    case 'boolean':
      return `CAST(${value} AS BOOLEAN)`;
    case 'int':
      return `CAST(${value} AS INTEGER)`;
    case 'long':
      return `CAST(${value} AS BIGINT)`;
    case 'double':
      return `CAST(${value} AS DOUBLE)`;
    case 'date':
      return `(DATE '1970-01-01' + CAST(${value} AS INTEGER))`;
    case 'timestamp':
      return `make_timestamp(CAST(${value} AS BIGINT))`;
    case 'timestamptz':
      return `make_timestamptz(CAST(${value} AS BIGINT))`;
    default:
      throw new Error(`${t.kind} columns take no tokens`);
  }
}

/** The INSERT of a token chunk: parameter i+1 is column i's tokens, split on TOKEN_END. */
function tokenInsert(table: string, columns: readonly WriterColumn[]): string {
  const split = columns.map((_, i) => `unnest(string_split(decode($${i + 1}), chr(${TOKEN_END}))) AS t${i}`).join(', ');
  const values = columns.map((c, i) => tokenCast(c.type, `t${i}`)).join(', ');
  return `INSERT INTO ${table} SELECT ${values} FROM (SELECT ${split})`;
}

/**
 * The bytes a row takes in DuckDB before its variable-length data: each column's fixed width
 * (a string or blob is a 16-byte header, its bytes beyond that are counted per value). What
 * the open rows cost in memory (the transformation's open-file budget) and what files roll on.
 */
function fixedWidth(t: PrimitiveType): number {
  switch (t.kind) {
    case 'boolean':
      return 1;
    case 'int':
    case 'float':
    case 'date':
      return 4;
    case 'decimal':
      return t.precision > 18 ? 16 : 8;
    case 'string':
    case 'uuid':
    case 'binary':
    case 'fixed':
      return 16;
    default:
      return 8;
  }
}

/** A value's bytes beyond its column's fixed width. */
function variableSize(v: CellValue): number {
  if (typeof v === 'string') return v.length;
  if (v instanceof Uint8Array) return v.length;
  return 0;
}

export class ParquetFileWriter {
  private readonly convert: ((v: CellValue) => DuckDBValue)[];
  private readonly types: DuckDBType[];
  private readonly required: number[];
  /** Each row's fixed bytes in DuckDB, and the columns whose values add bytes of their own. */
  private readonly rowWidth: number;
  private readonly variable: number[];
  /** Rows appended (not tokens) waiting for their data chunk; made on the first such row. */
  private buffer: DuckDBValue[][] | null = null;
  private buffered = 0;
  /** That INSERT while it runs (off the main thread): the connection takes nothing else until it settles. */
  private inserting: Promise<void> | null = null;
  /** Why the writer cannot take more rows: a token chunk's INSERT failed (its transaction is aborted). */
  private failed: Error | null = null;
  private rows = 0;
  private variableBytes = 0;
  private closed = false;

  private constructor(
    private readonly opts: OpenOptions,
    private readonly slot: TableSlot,
    private readonly appender: DuckDBAppender,
  ) {
    this.convert = opts.columns.map((c) => toDuck(c.type));
    this.types = opts.columns.map((c) => duckType(c.type));
    this.required = opts.columns.flatMap((c, i) => (c.required ? [i] : []));
    this.rowWidth = opts.columns.reduce((sum, c) => sum + fixedWidth(c.type), 0);
    this.variable = opts.columns.flatMap((c, i) => (c.type.kind === 'string' || c.type.kind === 'binary' ? [i] : []));
  }

  static async open(opts: OpenOptions): Promise<ParquetFileWriter> {
    if (opts.columns.length === 0) throw new Error('a Parquet file needs at least one column');
    const slot = await takeSlot(opts.columns.map((c) => `${quoteIdent(c.name)} ${duckType(c.type).toString()}`).join(', '));
    try {
      // Every row goes in inside one transaction that is never committed: the COPY and the
      // statistics read the transaction's own rows, and release() rolls them back. Committed
      // one INSERT at a time, each chunk was copied again into the table at its commit.
      await slot.conn.run('BEGIN TRANSACTION');
      const appender = await slot.conn.createAppender(slot.table, null, 'temp');
      return new ParquetFileWriter(opts, slot, appender);
    } catch (e) {
      closeSlot(slot);
      throw e;
    }
  }

  get path(): string {
    return this.opts.path;
  }
  get recordCount(): number {
    return this.rows;
  }
  /** Bytes the rows appended so far take in memory, as DuckDB holds them (an estimate; the file is smaller). */
  get estimatedBytes(): number {
    return this.rows * this.rowWidth + this.variableBytes;
  }

  /** Appends one row (values in column order, in the core's row shapes). */
  append(row: readonly CellValue[]): void {
    if (this.closed) throw new Error(`writer for ${this.opts.path} is closed`);
    if (this.inserting !== null) throw new Error(`writer for ${this.opts.path}: settle() the token chunk in flight before appending rows`);
    if (this.failed !== null) throw this.failed;
    // Checked before anything is counted, so a refused row leaves no trace in the counts.
    for (const i of this.required) {
      if (row[i] === null || row[i] === undefined)
        throw new Error(`column "${this.opts.columns[i].name}" is required but row ${this.rows} has null`);
    }
    const n = this.convert.length;
    const at = this.buffered;
    // Files of the fast path never append a row: their columns of 2,048 slots were the largest
    // JS allocation left on the wide shape (a sampling heap profile of the pipeline bench).
    this.buffer ??= this.opts.columns.map(() => new Array(CHUNK_ROWS));
    for (let i = 0; i < n; i++) {
      const v = row[i] ?? null;
      this.variableBytes += variableSize(v);
      this.buffer[i][at] = v === null ? null : this.convert[i](v);
    }
    this.rows++;
    if (++this.buffered === CHUNK_ROWS) this.flushChunk();
  }

  /**
   * Appends a chunk of token rows (token-chunk.ts), one column buffer per writer column, in
   * one statement: DuckDB splits each buffer and casts the tokens to the column's type. The
   * tokens must be valid for their types (the fast path only writes what it checked); a
   * required column must have no null token.
   *
   * Returns once the statement has its copies of the buffers and runs: the caller may refill
   * the chunk while DuckDB inserts off the main thread. The next use of the writer waits for it
   * (settle()), and fails if it failed; so does every use after it (the rows' transaction is
   * aborted), and only abort() remains.
   */
  async appendTokens(chunk: TokenChunk): Promise<void> {
    if (this.closed) throw new Error(`writer for ${this.opts.path} is closed`);
    if (chunk.width !== this.convert.length)
      throw new Error(`a token chunk of ${chunk.width} columns cannot go into ${this.opts.path}, which has ${this.convert.length}`);
    if (chunk.rows === 0) return;
    await this.settle();
    // Rows appended before stay before: the appender's rows reach the table first.
    this.flushChunk();
    this.appender.flushSync();
    // Prepared on the slot's first token chunk, for every file the slot serves.
    const insert = (this.slot.insertTokens ??= await this.slot.conn.prepare(tokenInsert(this.slot.table, this.opts.columns)));
    for (let i = 0; i < chunk.width; i++) insert.bindBlob(i + 1, chunk.column(i));
    const inserting = insert.run().then(() => undefined);
    inserting.catch(() => undefined); // reported by settle(), never as an unhandled rejection
    this.inserting = inserting;
    this.rows += chunk.rows;
    for (const i of this.variable) this.variableBytes += chunk.column(i).length - (chunk.rows - 1); // less the separators
  }

  /** Waits for the token chunk in flight (appendTokens), if any; throws what it failed with. */
  async settle(): Promise<void> {
    if (this.failed !== null) throw this.failed;
    const inserting = this.inserting;
    if (inserting === null) return;
    this.inserting = null;
    try {
      await inserting;
    } catch (e) {
      // The transaction is aborted with it: nothing more can go into this file.
      this.failed = new Error(`writer for ${this.opts.path}: a token chunk failed: ${(e as Error).message}`, { cause: e });
      throw this.failed;
    }
  }

  private flushChunk(): void {
    if (this.buffered === 0) return;
    const n = this.buffered;
    const buffer = this.buffer!;
    const cols = n === CHUNK_ROWS ? buffer : buffer.map((c) => c.slice(0, n));
    const chunk = DuckDBDataChunk.create(this.types, n);
    chunk.setColumns(cols);
    this.appender.appendDataChunk(chunk);
    this.buffer = null;
    this.buffered = 0;
  }

  /** Writes the file and describes it. The writer cannot be used afterwards. */
  async close(): Promise<DataFile> {
    if (this.closed) throw new Error(`writer for ${this.opts.path} is already closed`);
    this.closed = true;
    try {
      await this.settle();
      this.flushChunk();
      this.appender.flushSync();
      this.appender.closeSync();
      const ids = this.opts.columns.map((c) => `${quoteIdent(c.name)}: ${c.fieldId}`).join(', ');
      const copied = await this.slot.conn.runAndReadAll(
        `COPY ${this.slot.table} TO ${quoteString(this.opts.path)} (FORMAT parquet, COMPRESSION zstd, COMPRESSION_LEVEL ${ZSTD_LEVEL}, DICTIONARY_SIZE_LIMIT ${DICTIONARY_SIZE_LIMIT}, FIELD_IDS {${ids}}, RETURN_STATS)`,
      );
      const statistics = copyStatistics(copied.getRows()[0]?.[copied.columnNames().indexOf('column_statistics')] ?? null);
      const { size } = await stat(this.opts.path);
      return {
        filePath: this.opts.path,
        fileFormat: 'PARQUET',
        specId: this.opts.specId ?? 0,
        partition: this.opts.partition ?? [],
        recordCount: this.rows,
        fileSizeInBytes: size,
        columnStats: await this.columnStats(statistics),
        splitOffsets: [],
      };
    } finally {
      await this.release();
    }
  }

  /** Drops buffered rows without writing a file (e.g. the job failed). */
  async abort(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.settle().catch(() => undefined); // what the chunk in flight did no longer matters
    try {
      this.appender.closeSync();
    } catch {
      // The appender may hold rows that violate nothing; closing it is best effort.
    }
    await this.release();
  }

  private async release(): Promise<void> {
    try {
      // Drops the rows (never committed), also when a failed statement aborted the transaction:
      // the table is empty again for the slot's next file.
      await this.slot.conn.run('ROLLBACK');
    } catch (e) {
      closeSlot(this.slot);
      throw e;
    }
    keepSlot(this.slot);
  }

  /**
   * Each column's statistics: as the COPY reported them where they are exact (copy-stats.ts),
   * the others from one aggregate over the table, the reference: value, null and NaN counts and
   * bounds. NaN never enters the bounds; strings and binaries compare by their bytes (DuckDB's
   * order, and Iceberg's).
   */
  private async columnStats(statistics: CopyStatistics): Promise<ColumnStats[]> {
    const stats = this.opts.columns.map((c) => statsFromCopy(c, statistics.get(c.name), this.rows));
    const rest = this.opts.columns.filter((_, i) => stats[i] === null);
    if (rest.length === 0) return stats as ColumnStats[];
    const aggregated = await this.aggregateStats(rest, statistics);
    return stats.map((s) => s ?? aggregated.shift()!);
  }

  private async aggregateStats(columns: readonly WriterColumn[], statistics: CopyStatistics): Promise<ColumnStats[]> {
    const select = columns.flatMap((c) => {
      const name = quoteIdent(c.name);
      const floating = c.type.kind === 'float' || c.type.kind === 'double';
      const keep = floating ? ` FILTER (WHERE NOT isnan(${name}))` : '';
      return [`count(${name})`, floating ? `count(*) FILTER (WHERE isnan(${name}))` : '0', `min(${name})${keep}`, `max(${name})${keep}`];
    });
    const reader = await this.slot.conn.runAndReadAll(`SELECT count(*), ${select.join(', ')} FROM ${this.slot.table}`);
    const [row] = reader.getRows();
    const total = Number(row[0]);
    return columns.map((c, i) => {
      const [count, nan, min, max] = row.slice(1 + i * 4, 5 + i * 4);
      const bound = (v: DuckDBValue) => (v === null ? Buffer.alloc(0) : serializeSingleValue(c.type, singleValue(v)));
      return {
        fieldId: c.fieldId,
        columnSize: Number(statistics.get(c.name)?.get('column_size_bytes') ?? 0),
        valueCount: total,
        nullValueCount: total - Number(count),
        nanValueCount: Number(nan),
        lowerBound: bound(min),
        upperBound: bound(max),
      };
    });
  }
}

/**
 * Opens a new file whenever the current one reaches the target size (by estimated
 * uncompressed bytes scaled by the compression ratio seen so far), so files land near the
 * target. Closed files accumulate in `finished` until collected.
 *
 * A rolled file is written (its COPY, off the main thread) while rows go on into the next:
 * awaited, the COPY of each early-rolled file stalled the stream about 35 ms, some 46 times
 * in a wide pipeline-bench run. One file at a time is written per writer, so `finished` keeps
 * the rows' order and the memory held is the open file plus at most the one being written.
 * A write that fails is thrown by the writer's next use (an append, a roll, close()), so it
 * reaches the stream before any file of the writer is handed over.
 */
export class RollingParquetWriter {
  private current: ParquetFileWriter | null = null;
  private seq = 0;
  private ratio = 0.35; // compressed/uncompressed guess until a file has been written
  /** The rolled file being written, if any. */
  private writing: Promise<void> | null = null;
  /** Why a rolled file could not be written: thrown by every later use. */
  private failed: Error | null = null;
  readonly finished: DataFile[] = [];

  constructor(
    private readonly base: Omit<OpenOptions, 'path'>,
    private readonly pathFor: (seq: number) => string,
    private readonly targetBytes: number,
  ) {}

  /** Appends rows, rolling to a new file whenever the current one is full. */
  async appendAll(rows: readonly (readonly CellValue[])[]): Promise<void> {
    if (this.failed !== null) throw this.failed;
    await this.current?.settle();
    for (const row of rows) {
      // No await per row unless a file opens or rolls: this is the reference path's loop.
      (this.current ?? (await this.open())).append(row);
      if (this.full) await this.roll();
    }
  }

  /** Appends a chunk of token rows to the current file, then rolls it if it is full. */
  async appendTokens(chunk: TokenChunk): Promise<void> {
    if (this.failed !== null) throw this.failed;
    if (chunk.rows === 0) return;
    await (this.current ?? (await this.open())).appendTokens(chunk);
    if (this.full) await this.roll();
  }

  /** Opens the next file (there is none open). */
  private async open(): Promise<ParquetFileWriter> {
    this.current = await ParquetFileWriter.open({ ...this.base, path: this.pathFor(this.seq++) });
    return this.current;
  }

  /** Whether the open file has reached the target size (its estimate scaled by the compression seen). */
  private get full(): boolean {
    return this.current !== null && this.current.estimatedBytes * this.ratio >= this.targetBytes;
  }

  /** Estimated bytes of the rows in the open file: what it holds in memory until rolled. */
  get openBytes(): number {
    return this.current?.estimatedBytes ?? 0;
  }

  /**
   * Starts writing the open file out (it joins `finished` once written; written() waits for
   * that); the next row opens a new one.
   */
  async rollOpenFile(): Promise<void> {
    if (this.failed !== null) throw this.failed;
    if (this.current !== null) await this.roll();
  }

  /** Waits until no rolled file is being written. Never throws: a failure is thrown by the next use. */
  async written(): Promise<void> {
    await this.writing;
  }

  private async roll(): Promise<void> {
    const w = this.current!;
    this.current = null;
    await this.writing;
    if (this.failed !== null) {
      await w.abort();
      throw this.failed;
    }
    const estimated = w.estimatedBytes;
    // Settles only after this assignment, and the next roll waits for it: the one in flight.
    this.writing = w.close().then(
      (file) => {
        if (estimated > 0) this.ratio = file.fileSizeInBytes / estimated;
        this.finished.push(file);
        this.writing = null;
      },
      (e: unknown) => {
        this.failed = new Error(`data file ${w.path} could not be written: ${(e as Error).message}`, { cause: e });
        this.writing = null;
      },
    );
  }

  /** Closes the open file, if any, and returns every file written since the last call. */
  async close(): Promise<DataFile[]> {
    if (this.current !== null) await this.roll();
    await this.writing;
    if (this.failed !== null) throw this.failed;
    return this.finished.splice(0);
  }

  /** Drops the open file's rows; a rolled file being written is waited for (discarding it is the caller's). */
  async abort(): Promise<void> {
    await this.writing;
    await this.current?.abort();
    this.current = null;
  }
}
