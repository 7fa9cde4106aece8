/**
 * A data file's column statistics as the COPY that wrote it reports them (DuckDB's
 * `RETURN_STATS`): the Parquet writer computes them while it encodes the columns, so reading
 * them costs nothing, where the aggregate over the file's table (writer.ts, the reference) is
 * another pass over every row.
 *
 * The COPY gives each column's compressed size, null count and value count as numbers, and its
 * bounds as text. A bound is taken only where its text is certainly the exact value the
 * aggregate would give; otherwise the column's statistics come from the aggregate:
 *
 * - strings: the text itself, unless it is 250 bytes or longer (the COPY cuts bounds at 256
 *   bytes and leaves out those it cannot cut) or is missing while the column has values;
 * - integers, booleans (`0`/`1`), dates (`yyyy-mm-dd`) and timestamps
 *   (`yyyy-mm-dd hh:mm:ss[.ffffff]`, `+00` for timestamptz, which the writer's connection
 *   prints in UTC): parsed exactly, anything else (a year beyond four digits, BC) is not taken;
 * - doubles: a decimal literal (DuckDB prints the shortest text that reads back as the same
 *   double), except zero, whose sign the text may not keep, and columns with NaN, whose count the
 *   COPY does not give;
 * - every other type (float, decimal, time, uuid, binary): the aggregate.
 *
 * shared/test/parquet/copy-stats.test.ts holds these to the aggregate over random files.
 *
 * What it saves, per file: the aggregate's pass over the rows and the `parquet_metadata` read
 * that gave the column sizes, about 5 and 2 ms of fixed cost a small file (a probe of 22-column
 * files of 4,096 rows). `npm run bench -- parquet-writer` at 20,000 rows a file, best of 9, two
 * interleaved runs each: narrow 1.60 / 1.42 → 1.29 / 1.29 µs of CPU a row; wide 6.45 / 4.04 →
 * 3.83 / 5.18, too noisy that day to read.
 */
import { DuckDBMapValue, type DuckDBValue } from '@duckdb/node-api';
import type { ColumnStats } from '../gen/sluice/v1/types.js';
import { serializeSingleValue, type PrimitiveType, type SingleValue } from '../iceberg/single-value.js';
import { daysFromCivil } from '../time.js';

/** Per column (by name), the COPY's statistics by their names (`min`, `null_count`, ...), as text. */
export type CopyStatistics = ReadonlyMap<string, ReadonlyMap<string, string>>;

/** A bound's text this long may have been cut by the COPY. */
const MAX_STRING_BOUND_BYTES = 250;

/** RETURN_STATS' `column_statistics` value, by column name. */
export function copyStatistics(value: DuckDBValue): CopyStatistics {
  const out = new Map<string, Map<string, string>>();
  if (!(value instanceof DuckDBMapValue)) return out;
  for (const { key, value: stats } of value.entries) {
    if (!(stats instanceof DuckDBMapValue)) continue;
    out.set(columnNameOfKey(String(key)), new Map(stats.entries.map((e) => [String(e.key), String(e.value)])));
  }
  return out;
}

/** The COPY names a column as a quoted identifier (`"a""b"` for a"b). */
function columnNameOfKey(key: string): string {
  return key.length >= 2 && key.startsWith('"') && key.endsWith('"') ? key.slice(1, -1).replaceAll('""', '"') : key;
}

const DATE = /^(\d{4})-(\d{2})-(\d{2})$/;
const TIMESTAMP = /^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?(\+00)?$/;
const INTEGER = /^-?\d{1,19}$/;
const DECIMAL_LITERAL = /^-?\d+(?:\.\d+)?(?:e[+-]?\d+)?$/;

/** A bound's text as the column type's value, or null when it may not be the exact bound. */
export function boundOfText(type: PrimitiveType, text: string): SingleValue | null {
  switch (type.kind) {
    case 'string':
      return Buffer.byteLength(text) < MAX_STRING_BOUND_BYTES && !text.includes('\uFFFD') ? text : null;
    case 'boolean':
      return text === '1' || text === 'true' ? true : text === '0' || text === 'false' ? false : null;
    case 'int': {
      if (!INTEGER.test(text)) return null;
      const n = Number(text);
      return n >= -2147483648 && n <= 2147483647 ? n : null;
    }
    case 'long': {
      if (!INTEGER.test(text)) return null;
      const n = BigInt(text);
      return n >= -(2n ** 63n) && n < 2n ** 63n ? n : null;
    }
    case 'double': {
      if (!DECIMAL_LITERAL.test(text)) return null;
      const n = Number(text);
      return Number.isFinite(n) && n !== 0 ? n : null;
    }
    case 'date': {
      const m = DATE.exec(text);
      return m === null ? null : daysFromCivil(Number(m[1]), Number(m[2]), Number(m[3]));
    }
    case 'timestamp':
    case 'timestamptz': {
      const m = TIMESTAMP.exec(text);
      if (m === null || (m[8] !== undefined) !== (type.kind === 'timestamptz')) return null;
      const days = daysFromCivil(Number(m[1]), Number(m[2]), Number(m[3]));
      const seconds = Number(m[4]) * 3600 + Number(m[5]) * 60 + Number(m[6]);
      const micros = Number((m[7] ?? '').padEnd(6, '0'));
      return BigInt(days) * 86_400_000_000n + BigInt(seconds) * 1_000_000n + BigInt(micros);
    }
    default:
      return null;
  }
}

/**
 * A column's statistics from the COPY's (`stats`), in a file of `rows` rows; null when only the
 * aggregate can give them exactly (see the top).
 */
export function statsFromCopy(
  column: { fieldId: number; type: PrimitiveType },
  stats: ReadonlyMap<string, string> | undefined,
  rows: number,
): ColumnStats | null {
  if (stats === undefined || stats.get('has_nan') === 'true') return null;
  const nulls = Number(stats.get('null_count'));
  if (Number(stats.get('num_values')) !== rows || !Number.isInteger(nulls)) return null;
  const base = {
    fieldId: column.fieldId,
    columnSize: Number(stats.get('column_size_bytes') ?? 0),
    valueCount: rows,
    nullValueCount: nulls,
    nanValueCount: 0,
  };
  if (nulls === rows) return { ...base, lowerBound: Buffer.alloc(0), upperBound: Buffer.alloc(0) };
  const min = stats.get('min');
  const max = stats.get('max');
  const lower = min === undefined ? null : boundOfText(column.type, min);
  const upper = max === undefined ? null : boundOfText(column.type, max);
  if (lower === null || upper === null) return null;
  return { ...base, lowerBound: serializeSingleValue(column.type, lower), upperBound: serializeSingleValue(column.type, upper) };
}
