/**
 * The ERROR_TABLE policy's rows: the core describes a refused record as an ErrorTableRow
 * (policy.ts); this maps it onto the error table's actual columns, checked once when the
 * stream opens, so a table created with the core's errorTableColumns (or a compatible
 * variant: timestamps as long milliseconds, key and value as string, no headers column as
 * error tables made before it existed) just works and an
 * incompatible one is refused up front, naming the column.
 *
 * An error table that cannot take refused records is an ErrorTableShapeError:
 * FAILED_PRECONDITION, since the job's mapping is fine and the table is not.
 */
import { headersText } from '#shared/error-table.js';
import { SluiceError } from '#shared/errors.js';
import type { Table } from '#shared/gen/sluice/v1/catalog.js';
import type { TableRef } from '#shared/gen/sluice/v1/types.js';
import { writerColumns, type CellValue, type WriterColumn } from '#shared/parquet/writer.js';
import { status } from '@grpc/grpc-js';
import { SpecError, type ErrorTableRow, type PartitionTuple } from './core/index.js';
import { compilePartitionSpec } from './core/partition.js';
import { columnsOf } from './core/schema.js';
import { tableFiles, type PartitionedFiles, type FileSettings } from './files.js';

export class ErrorTableShapeError extends SluiceError {
  constructor(
    message: string,
    /** The error table, as `database.table`. */
    readonly table: string,
  ) {
    super(status.FAILED_PRECONDITION, message, { table });
    this.name = 'ErrorTableShapeError';
  }
}

/** The error table's writer side (ERROR_TABLE policy only). */
export interface ErrorTableSink {
  ref: TableRef;
  toRow: (r: ErrorTableRow) => CellValue[];
  partitionOf: (row: CellValue[]) => PartitionTuple;
  files: PartitionedFiles;
}

/**
 * The writer side of error table `ref` (as the catalog returned it), checked once when the
 * stream opens: its columns must hold refused records and its partition spec must apply to
 * them; otherwise it is refused naming the table.
 */
export function errorTableSink(ref: TableRef, table: Table, workerId: string, settings: FileSettings): ErrorTableSink {
  const name = `${ref.database}.${ref.table}`;
  let toRow: ErrorTableSink['toRow'];
  let partitionOf: ErrorTableSink['partitionOf'];
  try {
    toRow = errorRowMapper(name, writerColumns(table.schema!));
    partitionOf = compilePartitionSpec(table.partitionSpec, columnsOf(table.schema!)) as ErrorTableSink['partitionOf'];
  } catch (e) {
    if (e instanceof ErrorTableShapeError) throw e;
    // The table's own partition spec or schema does not work: its fault, not the mapping's.
    if (e instanceof SpecError) throw new ErrorTableShapeError(e.message, name);
    throw new ErrorTableShapeError(`error table ${name}: ${(e as Error).message}`, name);
  }
  return { ref, toRow, partitionOf, files: tableFiles(table, workerId, settings) };
}

type Cell = (r: ErrorTableRow) => CellValue;

/** How one column reads an ErrorTableRow, by column name and type; null when incompatible. */
function cellFor(c: WriterColumn): Cell | null {
  const t = c.type.kind;
  switch (c.name) {
    case 'source_topic':
      return t === 'string' ? (r) => r.source_topic : null;
    case 'reason':
      return t === 'string' ? (r) => r.reason : null;
    case 'source_partition':
      return t === 'int' || t === 'long' ? (r) => r.source_partition : null;
    case 'source_offset':
      return t === 'long' ? (r) => r.source_offset : null;
    case 'source_timestamp':
      if (t === 'timestamptz' || t === 'timestamp') return (r) => r.source_timestamp * 1000; // ms → µs
      if (t === 'long') return (r) => r.source_timestamp;
      return null;
    case 'headers':
      // An error table made before the column existed simply lacks it (the default below never runs for it).
      return t === 'string' && !c.required ? (r) => headersText(r.headers) : null;
    case 'key':
    case 'value': {
      const part = c.name;
      if (c.required) return null; // a tombstone or keyless record has no key/value to give
      if (t === 'binary') return (r) => r[part];
      if (t === 'string') return (r) => (r[part] === null ? null : Buffer.from(r[part]!).toString('utf8'));
      return null;
    }
    default:
      // A column the policy knows nothing about stays empty, which only works if it is optional.
      return c.required ? null : () => null;
  }
}

/** Compiles the mapping ErrorTableRow → error-table row; throws naming the first bad column. */
export function errorRowMapper(table: string, columns: readonly WriterColumn[]): (r: ErrorTableRow) => CellValue[] {
  const cells = columns.map((c) => {
    const cell = cellFor(c);
    if (!cell) {
      throw new ErrorTableShapeError(
        `error table ${table}: column "${c.name}" (${c.type.kind}${c.required ? ', required' : ''}) cannot hold refused records; ` +
          'expected source_topic string, source_partition int, source_offset long, source_timestamp timestamptz, key binary, value binary, reason string, headers string',
        table,
      );
    }
    return cell;
  });
  return (r) => cells.map((cell) => cell(r));
}
