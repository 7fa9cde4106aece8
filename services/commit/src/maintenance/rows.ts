/**
 * Reading rows back out of Parquet data files for compaction, through DuckDB (already the
 * project's Parquet engine), converted to the cell shapes the shared Parquet writer takes:
 * long and decimal as bigint, date as days, time and timestamps as microseconds, uuid as
 * text, binary as bytes.
 */
import {
  type DuckDBBlobValue,
  type DuckDBDateValue,
  type DuckDBDecimalValue,
  DuckDBInstance,
  type DuckDBTimestampTZValue,
  type DuckDBTimestampValue,
  type DuckDBTimeValue,
  type DuckDBValue,
} from '@duckdb/node-api';
import type { CellValue, WriterColumn } from '#shared/parquet/writer.js';
import type { PrimitiveType } from '#shared/iceberg/single-value.js';

let instance: Promise<DuckDBInstance> | undefined;
const duck = () => (instance ??= DuckDBInstance.create(':memory:', { threads: '2' }));

const quoteIdent = (s: string) => `"${s.replaceAll('"', '""')}"`;
const quoteString = (s: string) => `'${s.replaceAll("'", "''")}'`;

/** DuckDB result value → writer cell, for one column type. */
export function toCell(type: PrimitiveType): (v: DuckDBValue) => CellValue {
  switch (type.kind) {
    case 'long':
      return (v) => (v === null ? null : BigInt(v as bigint | number));
    case 'decimal':
      return (v) => (v === null ? null : (v as DuckDBDecimalValue).value);
    case 'date':
      return (v) => (v === null ? null : (v as DuckDBDateValue).days);
    case 'time':
      return (v) => (v === null ? null : Number((v as DuckDBTimeValue).micros));
    case 'timestamp':
      return (v) => (v === null ? null : Number((v as DuckDBTimestampValue).micros));
    case 'timestamptz':
      return (v) => (v === null ? null : Number((v as DuckDBTimestampTZValue).micros));
    case 'uuid':
      return (v) => (v === null ? null : String(v));
    case 'binary':
    case 'fixed':
      return (v) => (v === null ? null : (v as DuckDBBlobValue).bytes);
    default:
      return (v) => v as CellValue;
  }
}

/**
 * All rows of local Parquet files, in the given column order. Columns a file lacks (added
 * to the schema later) read as null (`union_by_name`).
 */
export async function readRows(paths: readonly string[], columns: readonly WriterColumn[]): Promise<CellValue[][]> {
  const conn = await (await duck()).connect();
  try {
    const list = `[${paths.map(quoteString).join(', ')}]`;
    const select = columns.map((c) => quoteIdent(c.name)).join(', ');
    const reader = await conn.runAndReadAll(`SELECT ${select} FROM read_parquet(${list}, union_by_name = true)`);
    const convert = columns.map((c) => toCell(c.type));
    return reader.getRows().map((row) => row.map((v, i) => convert[i](v)));
  } finally {
    conn.closeSync();
  }
}

/** A row read back with where it was: the index of its file among the paths read, and its position there. */
export interface RowAt {
  file: number;
  pos: number;
  row: CellValue[];
}

/**
 * readRows, each row with its file and position (what position deletes name), in file order
 * then position order. Read in one pass over all the files, so a column only some of them
 * have reads as null in the others, as in readRows.
 */
export async function readRowsAt(paths: readonly string[], columns: readonly WriterColumn[]): Promise<RowAt[]> {
  const conn = await (await duck()).connect();
  try {
    const list = `[${paths.map(quoteString).join(', ')}]`;
    const select = columns.map((c) => quoteIdent(c.name)).join(', ');
    const reader = await conn.runAndReadAll(
      `SELECT ${FILE_COLUMN}, file_row_number, ${select}
       FROM read_parquet(${list}, union_by_name = true, filename = ${quoteString(FILE_COLUMN)}, file_row_number = true)`,
    );
    const fileOf = new Map(paths.map((p, i) => [p, i]));
    const convert = columns.map((c) => toCell(c.type));
    return reader
      .getRows()
      .map(([file, pos, ...cells]) => ({ file: fileOf.get(String(file))!, pos: Number(pos), row: cells.map((v, i) => convert[i](v)) }))
      .sort((a, b) => a.file - b.file || a.pos - b.pos);
  } finally {
    conn.closeSync();
  }
}

/** The column readRowsAt reads each row's file name into (not a name a table column takes). */
const FILE_COLUMN = '__sluice_file__';
