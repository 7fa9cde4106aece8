/**
 * The ERROR_TABLE policy's rows: the core describes a refused record as an ErrorTableRow
 * (policy.ts); this maps it onto the error table's actual columns, checked once when the
 * stream opens, so a table created with the core's errorTableColumns (or a compatible
 * variant: timestamps as long milliseconds, key and value as string) just works and an
 * incompatible one is refused up front, naming the column.
 */
import type { ErrorTableRow } from './core/index.js';
import type { CellValue, WriterColumn } from '#shared/parquet/writer.js';

export class ErrorTableShapeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ErrorTableShapeError';
  }
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
          'expected source_topic string, source_partition int, source_offset long, source_timestamp timestamptz, key binary, value binary, reason string',
      );
    }
    return cell;
  });
  return (r) => cells.map((cell) => cell(r));
}
