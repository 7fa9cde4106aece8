/**
 * The benchmark's record shapes (issue 15 measures three), each with the one column list both
 * sides of the comparison use: the Sluice table's columns and the DuckDB baseline's reader, so
 * the two write the same table.
 *
 *   narrow  ~150-byte JSON objects, nine top-level fields, flatten level 1
 *   wide    ~600-byte JSON objects, 21 fields over two levels, flatten level 2
 *   csv     the narrow shape's fields as one CSV line per message (ISO timestamps)
 */

const COUNTRIES = ['DE', 'FR', 'US', 'JP', 'BR'];
const CITIES = ['Berlin', 'Paris', 'New York', 'Tokyo', 'São Paulo'];
const EVENTS = ['click', 'view', 'buy', 'scroll'];
const TIERS = ['free', 'silver', 'gold'];
const MODELS = ['Pixel 7 Pro', 'iPhone 15', 'Galaxy S23 Ultra', 'ThinkPad X1 Carbon Gen 11'];
const BASE_TS = 1_689_282_787_000;

interface Column {
  name: string;
  /** Iceberg type of the Sluice table column. */
  iceberg: string;
  /** The baseline's expression for the column over what its reader reads. */
  duckdbSelect: string;
}

export interface Shape {
  name: 'narrow' | 'wide' | 'csv';
  /** Message i; values vary per record so the Parquet files do not compress to nothing. */
  record(i: number): string;
  columns: readonly Column[];
  /** The job spec's `source` format fields and `mapping.flattenLevel`. */
  source: { format: 'JSON' | 'CSV'; csv?: { columns: string[] } };
  flattenLevel: number;
  /** The baseline's DuckDB reader of the file kcat wrote (one message per line). */
  reader(path: string): string;
}

const quote = (text: string) => `'${text.replace(/'/g, "''")}'`;
const readJson = (path: string, columns: Record<string, string>) =>
  `read_json(${quote(path)}, format = 'newline_delimited', columns = {${Object.entries(columns)
    .map(([name, type]) => `${quote(name)}: ${quote(type)}`)
    .join(', ')}})`;

/** Epoch milliseconds read as BIGINT; both sides store a timestamptz. */
const msToTimestamptz = (expr: string, name: string) => `make_timestamp(${expr} * 1000)::TIMESTAMPTZ AS ${name}`;

export function eventJson(i: number): string {
  return (
    `{"id":${i},"user":"user_${String(i % 100_000).padStart(6, '0')}","event":"${EVENTS[i % 4]}","amount":${(i % 10_000) / 100},` +
    `"ts":${BASE_TS + i},"country":"${COUNTRIES[i % 5]}","ok":${i % 3 === 0},"session":"s${(i * 2654435761) % 4294967296}","page":"/p/${i % 1000}"}`
  );
}

const NARROW_COLUMNS: readonly Column[] = [
  { name: 'id', iceberg: 'long', duckdbSelect: 'id' },
  { name: 'user', iceberg: 'string', duckdbSelect: '"user"' },
  { name: 'event', iceberg: 'string', duckdbSelect: 'event' },
  { name: 'amount', iceberg: 'double', duckdbSelect: 'amount' },
  { name: 'ts', iceberg: 'timestamptz', duckdbSelect: msToTimestamptz('ts', 'ts') },
  { name: 'country', iceberg: 'string', duckdbSelect: 'country' },
  { name: 'ok', iceberg: 'boolean', duckdbSelect: 'ok' },
  { name: 'session', iceberg: 'string', duckdbSelect: 'session' },
  { name: 'page', iceberg: 'string', duckdbSelect: 'page' },
];

const NARROW_READ = {
  id: 'BIGINT',
  user: 'VARCHAR',
  event: 'VARCHAR',
  amount: 'DOUBLE',
  ts: 'BIGINT',
  country: 'VARCHAR',
  ok: 'BOOLEAN',
  session: 'VARCHAR',
  page: 'VARCHAR',
};

export function wideEventJson(i: number): string {
  const user = String(i % 100_000).padStart(6, '0');
  const item = i % 5000;
  return JSON.stringify({
    id: i,
    ts: BASE_TS + i,
    event: EVENTS[i % 4],
    amount: (i % 10_000) / 100,
    currency: i % 2 === 0 ? 'EUR' : 'USD',
    ok: i % 3 === 0,
    user: { id: `u_${user}`, name: `Customer ${user}`, tier: TIERS[i % 3], email: `customer${user}@example.com` },
    device: { os: i % 2 === 0 ? 'android' : 'ios', model: MODELS[i % 4], app_version: `5.${i % 20}.${i % 7}`, locale: 'de-DE' },
    geo: { country: COUNTRIES[i % 5], city: CITIES[i % 5], lat: 52.52 + (i % 100) / 1000, lon: 13.405 - (i % 100) / 1000 },
    session: `s${(i * 2654435761) % 4294967296}-${(i * 40503) % 65536}`,
    page: `/products/category-${i % 40}/item-${item}?variant=${i % 9}`,
    referrer: `https://www.example.com/search?q=item+${item}&page=${i % 12}&utm_source=newsletter`,
    user_agent: 'Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Mobile Safari/537.36',
  });
}

const WIDE_COLUMNS: readonly Column[] = [
  { name: 'id', iceberg: 'long', duckdbSelect: 'id' },
  { name: 'ts', iceberg: 'timestamptz', duckdbSelect: msToTimestamptz('ts', 'ts') },
  { name: 'event', iceberg: 'string', duckdbSelect: 'event' },
  { name: 'amount', iceberg: 'double', duckdbSelect: 'amount' },
  { name: 'currency', iceberg: 'string', duckdbSelect: 'currency' },
  { name: 'ok', iceberg: 'boolean', duckdbSelect: 'ok' },
  { name: 'user_id', iceberg: 'string', duckdbSelect: '"user".id AS user_id' },
  { name: 'user_name', iceberg: 'string', duckdbSelect: '"user".name AS user_name' },
  { name: 'user_tier', iceberg: 'string', duckdbSelect: '"user".tier AS user_tier' },
  { name: 'user_email', iceberg: 'string', duckdbSelect: '"user".email AS user_email' },
  { name: 'device_os', iceberg: 'string', duckdbSelect: 'device.os AS device_os' },
  { name: 'device_model', iceberg: 'string', duckdbSelect: 'device.model AS device_model' },
  { name: 'device_app_version', iceberg: 'string', duckdbSelect: 'device.app_version AS device_app_version' },
  { name: 'device_locale', iceberg: 'string', duckdbSelect: 'device.locale AS device_locale' },
  { name: 'geo_country', iceberg: 'string', duckdbSelect: 'geo.country AS geo_country' },
  { name: 'geo_city', iceberg: 'string', duckdbSelect: 'geo.city AS geo_city' },
  { name: 'geo_lat', iceberg: 'double', duckdbSelect: 'geo.lat AS geo_lat' },
  { name: 'geo_lon', iceberg: 'double', duckdbSelect: 'geo.lon AS geo_lon' },
  { name: 'session', iceberg: 'string', duckdbSelect: 'session' },
  { name: 'page', iceberg: 'string', duckdbSelect: 'page' },
  { name: 'referrer', iceberg: 'string', duckdbSelect: 'referrer' },
  { name: 'user_agent', iceberg: 'string', duckdbSelect: 'user_agent' },
];

const WIDE_READ = {
  id: 'BIGINT',
  ts: 'BIGINT',
  event: 'VARCHAR',
  amount: 'DOUBLE',
  currency: 'VARCHAR',
  ok: 'BOOLEAN',
  user: 'STRUCT(id VARCHAR, name VARCHAR, tier VARCHAR, email VARCHAR)',
  device: 'STRUCT(os VARCHAR, model VARCHAR, app_version VARCHAR, locale VARCHAR)',
  geo: 'STRUCT(country VARCHAR, city VARCHAR, lat DOUBLE, lon DOUBLE)',
  session: 'VARCHAR',
  page: 'VARCHAR',
  referrer: 'VARCHAR',
  user_agent: 'VARCHAR',
};

/** The narrow event as a CSV line: the same fields in the same order, the time as ISO 8601. */
export function eventCsv(i: number): string {
  const e = JSON.parse(eventJson(i)) as Record<string, string | number | boolean>;
  return NARROW_COLUMNS.map((c) => (c.name === 'ts' ? new Date(Number(e.ts)).toISOString() : String(e[c.name]))).join(',');
}

const CSV_COLUMNS: readonly Column[] = NARROW_COLUMNS.map((c) => (c.name === 'ts' ? { ...c, duckdbSelect: 'ts' } : c));

export const SHAPES: Record<Shape['name'], Shape> = {
  narrow: {
    name: 'narrow',
    record: eventJson,
    columns: NARROW_COLUMNS,
    source: { format: 'JSON' },
    flattenLevel: 1,
    reader: (path) => readJson(path, NARROW_READ),
  },
  wide: {
    name: 'wide',
    record: wideEventJson,
    columns: WIDE_COLUMNS,
    source: { format: 'JSON' },
    flattenLevel: 2,
    reader: (path) => readJson(path, WIDE_READ),
  },
  csv: {
    name: 'csv',
    record: eventCsv,
    columns: CSV_COLUMNS,
    source: { format: 'CSV', csv: { columns: CSV_COLUMNS.map((c) => c.name) } },
    flattenLevel: 1,
    reader: (path) =>
      `read_csv(${quote(path)}, header = false, delim = ',', quote = '', columns = {${CSV_COLUMNS.map(
        (c) => `${quote(c.name)}: ${quote(c.name === 'ts' ? 'TIMESTAMPTZ' : duckdbType(c.iceberg))}`,
      ).join(', ')}})`,
  },
};

function duckdbType(iceberg: string): string {
  const types: Record<string, string> = { long: 'BIGINT', string: 'VARCHAR', double: 'DOUBLE', boolean: 'BOOLEAN' };
  const type = types[iceberg];
  if (!type) throw new Error(`no DuckDB type for ${iceberg}`);
  return type;
}

/** The `table` section of a job spec (cli/src/spec.ts) for a shape. */
export function tableSpec(shape: Shape, database: string, name: string) {
  return { database, name, columns: shape.columns.map((c) => ({ name: c.name, type: c.iceberg, required: c.name === 'id' })) };
}
