/**
 * The benchmark's events: ~150-byte JSON objects with nine top-level fields, and the one
 * column list both sides of the comparison use (the Sluice table's columns and the DuckDB
 * baseline's read_json columns), so the two write the same table.
 */

const COUNTRIES = ['DE', 'FR', 'US', 'JP', 'BR'];
const EVENTS = ['click', 'view', 'buy', 'scroll'];
const BASE_TS = 1_689_282_787_000;

/** Event number i; values vary per record so the Parquet files do not compress to nothing. */
export function eventJson(i: number): string {
  return (
    `{"id":${i},"user":"user_${String(i % 100_000).padStart(6, '0')}","event":"${EVENTS[i % 4]}","amount":${(i % 10_000) / 100},` +
    `"ts":${BASE_TS + i},"country":"${COUNTRIES[i % 5]}","ok":${i % 3 === 0},"session":"s${(i * 2654435761) % 4294967296}","page":"/p/${i % 1000}"}`
  );
}

interface Column {
  name: string;
  /** Iceberg type of the Sluice table column. */
  iceberg: string;
  /** How DuckDB reads the JSON field, and the expression that turns it into the column. */
  duckdbRead: string;
  duckdbSelect: string;
}

export const COLUMNS: readonly Column[] = [
  { name: 'id', iceberg: 'long', duckdbRead: 'BIGINT', duckdbSelect: 'id' },
  { name: 'user', iceberg: 'string', duckdbRead: 'VARCHAR', duckdbSelect: '"user"' },
  { name: 'event', iceberg: 'string', duckdbRead: 'VARCHAR', duckdbSelect: 'event' },
  { name: 'amount', iceberg: 'double', duckdbRead: 'DOUBLE', duckdbSelect: 'amount' },
  // Epoch milliseconds in the JSON; both sides store a timestamptz.
  { name: 'ts', iceberg: 'timestamptz', duckdbRead: 'BIGINT', duckdbSelect: 'make_timestamp(ts * 1000)::TIMESTAMPTZ AS ts' },
  { name: 'country', iceberg: 'string', duckdbRead: 'VARCHAR', duckdbSelect: 'country' },
  { name: 'ok', iceberg: 'boolean', duckdbRead: 'BOOLEAN', duckdbSelect: 'ok' },
  { name: 'session', iceberg: 'string', duckdbRead: 'VARCHAR', duckdbSelect: 'session' },
  { name: 'page', iceberg: 'string', duckdbRead: 'VARCHAR', duckdbSelect: 'page' },
];

/** The `table` section of a job spec (cli/src/spec.ts) for these events. */
export function tableSpec(database: string, name: string) {
  return { database, name, columns: COLUMNS.map((c) => ({ name: c.name, type: c.iceberg, required: c.name === 'id' })) };
}
