/**
 * The shape of an ERROR_TABLE policy's table: one row per refused record, with where it came
 * from and why. Transformation writes these rows; the CLI creates the table with these columns.
 */

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
}

/** The error table's Iceberg columns (name, type, required), for the catalog to create it. */
export const errorTableColumns: { name: keyof ErrorTableRow; type: string; required: boolean }[] = [
  { name: 'source_topic', type: 'string', required: true },
  { name: 'source_partition', type: 'int', required: true },
  { name: 'source_offset', type: 'long', required: true },
  { name: 'source_timestamp', type: 'timestamptz', required: false },
  { name: 'key', type: 'binary', required: false },
  { name: 'value', type: 'binary', required: false },
  { name: 'reason', type: 'string', required: true },
];
