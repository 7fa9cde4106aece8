/**
 * Column statistics from the COPY's RETURN_STATS (copy-stats.ts) against the reference, an
 * aggregate over the same rows: where the COPY's are taken, they are the aggregate's, byte for
 * byte; where they may not be exact, they are not taken.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  DuckDBDateValue,
  DuckDBInstance,
  DuckDBTimestampTZValue,
  DuckDBTimestampValue,
  type DuckDBConnection,
  type DuckDBValue,
} from '@duckdb/node-api';
import { parsePrimitive, serializeSingleValue, type PrimitiveType, type SingleValue } from '#shared/iceberg/single-value.js';
import { boundOfText, copyStatistics, statsFromCopy } from '#shared/parquet/copy-stats.js';
import { seededRandom } from '#test-support/random.js';

let dir: string;
let db: DuckDBConnection;
before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sluice-copy-stats-'));
  db = await (await DuckDBInstance.create(':memory:', { threads: '1' })).connect();
});
after(() => rmSync(dir, { recursive: true, force: true }));

describe('boundOfText', () => {
  const cases: [string, string, SingleValue | null][] = [
    ['string', 'abc', 'abc'],
    ['string', 'é'.repeat(124), 'é'.repeat(124)],
    ['string', 'é'.repeat(125), null], // 250 bytes: the COPY may have cut it
    ['string', 'a'.repeat(256), null],
    ['string', 'a\uFFFDb', null],
    ['boolean', '0', false],
    ['boolean', '1', true],
    ['boolean', 'yes', null],
    ['int', '-2147483648', -2147483648],
    ['int', '2147483648', null],
    ['long', '-9223372036854775808', -9223372036854775808n],
    ['long', '9223372036854775808', null],
    ['long', '1.5', null],
    ['double', '2.25', 2.25],
    ['double', '-1e+300', -1e300],
    ['double', '9e-07', 9e-7],
    ['double', '0.0', null], // -0.0 and 0.0 print alike
    ['double', '-0.0', null],
    ['double', 'inf', null],
    ['double', 'nan', null],
    ['date', '1970-01-02', 1],
    ['date', '1969-12-31', -1],
    ['date', '10000-01-01', null],
    ['date', '0044-03-15 (BC)', null],
    ['timestamp', '1970-01-01 00:00:01', 1_000_000n],
    ['timestamp', '2023-11-14 22:13:20.123456', 1_699_999_999_999_999n + 123_457n],
    ['timestamp', '1969-12-31 23:59:59.5', -500_000n],
    ['timestamp', '2023-11-14 22:13:20+00', null],
    ['timestamptz', '2023-11-14 22:13:20.1+00', 1_700_000_000_100_000n],
    ['timestamptz', '2023-11-14 22:13:20.1', null],
    ['timestamptz', '2023-11-14 22:13:20.1+01', null],
    ['decimal(10,2)', '1.50', null],
    ['binary', '\\x01', null],
  ];
  for (const [type, text, want] of cases)
    test(`${type} ${JSON.stringify(text.length > 20 ? `${text.slice(0, 8)}… (${text.length})` : text)} → ${String(want)}`, () => {
      assert.deepEqual(boundOfText(parsePrimitive(type), text), want);
    });
});

/** A column of random values, as SQL literals (or NULL), and its type. */
interface RandomColumn {
  name: string;
  type: PrimitiveType;
  literals: string[];
}

const sqlString = (s: string) => `'${s.replaceAll("'", "''")}'`;

function randomColumns(next: () => number, rows: number): RandomColumn[] {
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(next() * xs.length)];
  const nullShare = pick([0, 0.1, 0.5, 1]);
  const column = (name: string, type: string, value: () => string): RandomColumn => ({
    name,
    type: parsePrimitive(type),
    literals: Array.from({ length: rows }, () => (next() < nullShare ? 'NULL' : value())),
  });
  const stringLength = pick([4, 40, 130, 260]);
  const chars = ['a', 'z', 'é', '€', '😀', "'", '"', ' '];
  const randomString = () => Array.from({ length: Math.floor(next() * stringLength) }, () => pick(chars)).join('');
  const micros = () => Math.floor((next() - 0.3) * 4e15);
  return [
    column('s', 'string', () => sqlString(randomString())),
    column('b', 'boolean', () => (next() < 0.5 ? 'true' : 'false')),
    column('i', 'int', () => `${Math.floor((next() - 0.5) * 2 ** 32)}::INTEGER`),
    column('l', 'long', () => `${BigInt(Math.floor((next() - 0.5) * 2 ** 53)) * BigInt(pick([1, 1000]))}::BIGINT`),
    column('d', 'double', () => {
      const special = pick(['0', '-0.0', 'nan', '']);
      if (next() < 0.05 && special !== '') return `'${special}'::DOUBLE`;
      return `${(next() - 0.5) * 10 ** Math.floor(next() * 40 - 20)}::DOUBLE`;
    }),
    column('day', 'date', () => `(DATE '1970-01-01' + ${Math.floor((next() - 0.5) * 40_000)}::INTEGER)`),
    column('ts', 'timestamp', () => `make_timestamp(${micros()}::BIGINT)`),
    column('tstz', 'timestamptz', () => `make_timestamptz(${micros()}::BIGINT)`),
    column('amount', 'decimal(10,2)', () => `${Math.floor((next() - 0.5) * 1e6)}::DECIMAL(10,2)`),
  ];
}

/** The aggregate's bound in the shape serialization takes (writer.ts's singleValue, for these types). */
function single(v: DuckDBValue): SingleValue {
  if (v instanceof DuckDBDateValue) return v.days;
  if (v instanceof DuckDBTimestampValue || v instanceof DuckDBTimestampTZValue) return v.micros;
  return v as SingleValue;
}

test('statistics taken from the COPY are the aggregate’s, over 40 random files', async () => {
  const next = seededRandom(42);
  let taken = 0;
  let left = 0;
  for (let trial = 0; trial < 40; trial++) {
    const rows = 1 + Math.floor(next() * 300);
    const columns = randomColumns(next, rows);
    const duckTypes: Record<string, string> = { string: 'VARCHAR', boolean: 'BOOLEAN', int: 'INTEGER', long: 'BIGINT', double: 'DOUBLE' };
    const values = Array.from({ length: rows }, (_, r) => `(${columns.map((c) => c.literals[r]).join(', ')})`).join(', ');
    const names = columns.map((c) => `"${c.name}"`).join(', ');
    await db.run(`CREATE OR REPLACE TEMP TABLE t AS SELECT * FROM (VALUES ${values}) v(${names})`);
    for (const c of columns) if (duckTypes[c.type.kind]) await db.run(`ALTER TABLE t ALTER "${c.name}" TYPE ${duckTypes[c.type.kind]}`);
    const path = join(dir, `t${trial}.parquet`);
    const copied = await db.runAndReadAll(`COPY t TO '${path}' (FORMAT parquet, RETURN_STATS)`);
    const statistics = copyStatistics(copied.getRows()[0][copied.columnNames().indexOf('column_statistics')]);
    const sizes = await db.runAndReadAll(
      `SELECT path_in_schema, SUM(total_compressed_size)::BIGINT FROM parquet_metadata('${path}') GROUP BY path_in_schema`,
    );
    const sizeOf = new Map(sizes.getRows().map(([name, size]) => [String(name), Number(size)]));
    for (const [fieldId, c] of columns.entries()) {
      const got = statsFromCopy({ fieldId, type: c.type }, statistics.get(c.name), rows);
      if (got === null) {
        left++;
        continue;
      }
      taken++;
      const name = `"${c.name}"`;
      const keep = c.type.kind === 'double' ? ` FILTER (WHERE NOT isnan(${name}))` : '';
      const [[count, nans, min, max]] = (
        await db.runAndReadAll(
          `SELECT count(${name}), count(*) FILTER (WHERE ${c.type.kind === 'double' ? `isnan(${name})` : 'false'}), min(${name})${keep}, max(${name})${keep} FROM t`,
        )
      ).getRows();
      const bound = (v: DuckDBValue) => (v === null ? Buffer.alloc(0) : serializeSingleValue(c.type, single(v)));
      const where = `file ${trial}, column ${c.name}`;
      assert.equal(got.valueCount, rows, where);
      assert.equal(got.nullValueCount, rows - Number(count), where);
      assert.equal(got.nanValueCount, Number(nans), where);
      assert.ok(got.lowerBound.equals(bound(min)), `${where}: lower bound ${got.lowerBound.toString('hex')}`);
      assert.ok(got.upperBound.equals(bound(max)), `${where}: upper bound ${got.upperBound.toString('hex')}`);
      assert.equal(got.columnSize, sizeOf.get(c.name), where);
    }
  }
  // Most columns are described by the COPY; the rest (decimals, NaN, zeros, long strings) are not.
  assert.ok(taken > 200 && left > 40, `${taken} taken, ${left} left to the aggregate`);
});

test('a file of several row groups: the COPY’s statistics cover all of them', async () => {
  // 300k rows make three row groups; the extremes sit in the first and the last.
  await db.run(
    `CREATE OR REPLACE TEMP TABLE t AS SELECT CASE WHEN i = 299999 THEN -1 ELSE i END::BIGINT AS n, 'k' || lpad(i::VARCHAR, 6, '0') AS s FROM range(300000) r(i)`,
  );
  const path = join(dir, 'row-groups.parquet');
  const copied = await db.runAndReadAll(`COPY t TO '${path}' (FORMAT parquet, RETURN_STATS)`);
  const groups = await db.runAndReadAll(`SELECT count(DISTINCT row_group_id)::INTEGER FROM parquet_metadata('${path}')`);
  assert.ok(Number(groups.getRows()[0][0]) > 1, 'more than one row group');
  const statistics = copyStatistics(copied.getRows()[0][copied.columnNames().indexOf('column_statistics')]);
  const n = statsFromCopy({ fieldId: 1, type: parsePrimitive('long') }, statistics.get('n'), 300_000)!;
  const s = statsFromCopy({ fieldId: 2, type: parsePrimitive('string') }, statistics.get('s'), 300_000)!;
  assert.deepEqual(
    [n.lowerBound, n.upperBound],
    [serializeSingleValue(parsePrimitive('long'), -1n), serializeSingleValue(parsePrimitive('long'), 299998n)],
  );
  assert.deepEqual([s.lowerBound.toString(), s.upperBound.toString()], ['k000000', 'k299999']);
});
