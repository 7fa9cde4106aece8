/**
 * The shape of an ERROR_TABLE policy's table: one row per refused record, with where it came
 * from and why. Transformation writes these rows; the CLI creates the table with these columns.
 */

import type { KafkaHeader } from './gen/sluice/v1/types.js';

/** One row of the error table (columns of errorTableColumns). */
export interface ErrorTableRow {
  source_topic: string;
  source_partition: number;
  source_offset: number;
  /** Epoch milliseconds (Kafka's unit); a timestamptz column wants microseconds. */
  source_timestamp: number;
  key: Buffer | null;
  value: Buffer | null;
  reason: string;
  /** The source record's Kafka headers, in order (a key may repeat). */
  headers: readonly KafkaHeader[];
}

/**
 * The headers column's text: a JSON array of `{"key", "value"}` in the record's order, a value
 * that is not UTF-8 given as `{"key", "base64"}` instead, a header without a value as
 * `{"key"}`. A string column rather than an Iceberg map or list of structs because our Parquet
 * writer writes primitive columns only, and JSON text is lossless (keys repeat and keep their
 * order, bytes survive) and readable by every engine's JSON functions (DuckDB `json_extract`,
 * Spark `from_json`, Trino `json_parse`). Empty headers are NULL.
 */
export function headersText(headers: readonly KafkaHeader[]): string | null {
  if (headers.length === 0) return null;
  const out = headers.map(({ key, value }) => {
    if (value === undefined) return { key };
    const text = UTF8.decode(value);
    // A lossy decode (invalid bytes became U+FFFD) does not re-encode to the same bytes.
    return Buffer.from(text).equals(value) ? { key, value: text } : { key, base64: value.toString('base64') };
  });
  return JSON.stringify(out);
}

const UTF8 = new TextDecoder('utf-8');

/** The error table's Iceberg columns (name, type, required), for the catalog to create it. */
export const errorTableColumns: { name: keyof ErrorTableRow; type: string; required: boolean }[] = [
  { name: 'source_topic', type: 'string', required: true },
  { name: 'source_partition', type: 'int', required: true },
  { name: 'source_offset', type: 'long', required: true },
  { name: 'source_timestamp', type: 'timestamptz', required: false },
  { name: 'key', type: 'binary', required: false },
  { name: 'value', type: 'binary', required: false },
  { name: 'reason', type: 'string', required: true },
  { name: 'headers', type: 'string', required: false },
];
