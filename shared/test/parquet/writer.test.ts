import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { deserializeSingleValue, parsePrimitive } from '#shared/iceberg/single-value.js';
import { TokenChunk } from '#shared/parquet/token-chunk.js';
import { ParquetFileWriter, RollingParquetWriter, writerColumns, type WriterColumn } from '#shared/parquet/writer.js';

let dir: string;
let db: DuckDBConnection;
before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sluice-parquet-'));
  db = await (await DuckDBInstance.create(':memory:')).connect();
});
after(() => rmSync(dir, { recursive: true, force: true }));

const col = (fieldId: number, name: string, type: string, required = false): WriterColumn => ({
  fieldId,
  name,
  type: parsePrimitive(type),
  required,
});
const columns = [
  col(1, 'b', 'boolean'),
  col(2, 'i', 'int', true),
  col(3, 'l', 'long'),
  col(4, 'f', 'float'),
  col(5, 'd', 'double'),
  col(6, 'amount', 'decimal(10,2)'),
  col(7, 'day', 'date'),
  col(8, 'ts', 'timestamp'),
  col(9, 'tstz', 'timestamptz'),
  col(10, 's', 'string'),
  col(11, 'bin', 'binary'),
  col(12, 'u', 'uuid'),
  col(13, 't', 'time'),
];
const tsMicros = Date.UTC(2023, 6, 14, 1, 33, 0) * 1000;
const rows = [
  [
    true,
    1,
    9007199254740993n,
    1.5,
    2.25,
    1234n,
    19552,
    tsMicros,
    tsMicros,
    'json-1',
    new Uint8Array([1, 2]),
    'f79c3e09-677c-4bbd-a479-3f349cb785e7',
    3_600_000_000,
  ],
  [false, -7, -5, null, Number.NaN, -99n, 0, 0, tsMicros + 1, 'ab"c', null, null, 0],
  [null, 2147483647, null, -0.5, -1e300, null, null, null, null, null, new Uint8Array([0]), null, null],
];

test('writes zstd Parquet with Iceberg field ids that DuckDB reads back with the right types and values', async () => {
  const path = join(dir, 'all-types.parquet');
  const w = await ParquetFileWriter.open({
    path,
    columns,
    partition: [{ fieldId: 1000, name: 'pt', value: { kind: { $case: 'stringValue', value: 'x' } } }],
    specId: 1,
  });
  for (const r of rows) w.append(r);
  const file = await w.close();

  assert.equal(file.recordCount, 3);
  assert.equal(file.fileFormat, 'PARQUET');
  assert.equal(file.specId, 1);
  assert.equal(file.partition[0].name, 'pt');
  assert.ok(file.fileSizeInBytes > 0, 'file size');

  const schema = (
    await db.runAndReadAll(
      `SELECT name, field_id, type, converted_type FROM parquet_schema('${path}') WHERE field_id IS NOT NULL ORDER BY field_id`,
    )
  ).getRows();
  assert.deepEqual(
    schema.map((r) => [r[0], Number(r[1])]),
    columns.map((c) => [c.name, c.fieldId]),
  );
  const codecs = (await db.runAndReadAll(`SELECT DISTINCT compression FROM parquet_metadata('${path}')`)).getRows().map((r) => r[0]);
  assert.deepEqual(codecs, ['ZSTD']);

  const types = (await db.runAndReadAll(`SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM '${path}')`)).getRows();
  assert.deepEqual(Object.fromEntries(types), {
    b: 'BOOLEAN',
    i: 'INTEGER',
    l: 'BIGINT',
    f: 'FLOAT',
    d: 'DOUBLE',
    amount: 'DECIMAL(10,2)',
    day: 'DATE',
    ts: 'TIMESTAMP',
    tstz: 'TIMESTAMP WITH TIME ZONE',
    s: 'VARCHAR',
    bin: 'BLOB',
    u: 'UUID',
    t: 'TIME',
  });
  const back = (
    await db.runAndReadAll(
      `SELECT b, i, l, f, d::VARCHAR, amount::VARCHAR, day::VARCHAR, ts::VARCHAR, epoch_us(tstz), s, hex(bin), u::VARCHAR, t::VARCHAR FROM '${path}'`,
    )
  ).getRows();
  assert.deepEqual(back[0], [
    true,
    1,
    9007199254740993n,
    1.5,
    '2.25',
    '12.34',
    '2023-07-14',
    '2023-07-14 01:33:00',
    BigInt(tsMicros),
    'json-1',
    '0102',
    'f79c3e09-677c-4bbd-a479-3f349cb785e7',
    '01:00:00',
  ]);
  assert.deepEqual(back[1], [
    false,
    -7,
    -5n,
    null,
    'nan',
    '-0.99',
    '1970-01-01',
    '1970-01-01 00:00:00',
    BigInt(tsMicros + 1),
    'ab"c',
    null,
    null,
    '00:00:00',
  ]);
  assert.deepEqual(back[2], [null, 2147483647, null, -0.5, '-1e+300', null, null, null, null, null, '00', null, null]);
});

test('column stats: value, null and NaN counts and single-value bounds', async () => {
  const path = join(dir, 'stats.parquet');
  const w = await ParquetFileWriter.open({ path, columns });
  for (const r of rows) w.append(r);
  const file = await w.close();
  const byId = new Map(file.columnStats.map((s) => [s.fieldId, s]));
  const bounds = (id: number) => {
    const s = byId.get(id)!;
    const t = columns.find((c) => c.fieldId === id)!.type;
    return [deserializeSingleValue(t, s.lowerBound), deserializeSingleValue(t, s.upperBound)];
  };
  for (const s of file.columnStats) assert.equal(s.valueCount, 3, `value count of ${s.fieldId}`);
  assert.equal(byId.get(5)!.nanValueCount, 1);
  assert.equal(byId.get(3)!.nullValueCount, 1);
  assert.deepEqual(bounds(1), [false, true]);
  assert.deepEqual(bounds(2), [-7, 2147483647]);
  assert.deepEqual(bounds(3), [-5n, 9007199254740993n]);
  assert.deepEqual(bounds(5), [-1e300, 2.25]);
  assert.deepEqual(bounds(6), [-99n, 1234n]);
  assert.deepEqual(bounds(10), ['ab"c', 'json-1']);
  assert.deepEqual(bounds(11), [new Uint8Array([0]), new Uint8Array([1, 2])]);
  assert.ok(byId.get(10)!.columnSize > 0, 'column size');
});

test('a token chunk writes integers and scaled integers as their decimal text', () => {
  const values = [
    0, 7, -7, 10, 99_999_999, 100_000_000, 100_000_001, -100_000_000, 1_689_282_787_000_000, 9_007_199_254_740_991, -9_007_199_254_740_991,
  ];
  const chunk = new TokenChunk(2);
  for (const v of values) {
    chunk.beginRow();
    chunk.putInteger(0, v);
    const text = Buffer.from(`x${v}`);
    chunk.putScaled(1, text, 1, text.length, 3);
    chunk.endRow();
  }
  assert.deepEqual(chunk.column(0).toString('latin1').split('\x01'), values.map(String));
  assert.deepEqual(
    chunk.column(1).toString('latin1').split('\x01'),
    values.map((v) => `${v}000`),
  );
});

test('token chunks and rows interleave in order; a chunk is refilled while its INSERT runs', async () => {
  const w = new RollingParquetWriter(
    { columns: [col(1, 'id', 'long'), col(2, 'name', 'string'), col(3, 'ts', 'timestamptz')] },
    (n) => join(dir, `tokens-${n}.parquet`),
    1 << 30,
  );
  const chunk = new TokenChunk(3);
  const text = Buffer.from('id-');
  const tokens = async (from: number, to: number) => {
    for (let i = from; i < to; i++) {
      chunk.beginRow();
      chunk.putInteger(0, i);
      if (i % 7 === 0) chunk.putNull(1);
      else chunk.put(1, Buffer.concat([text, Buffer.from(String(i))]), 0, text.length + String(i).length);
      chunk.putInteger(2, i * 1_000_000);
      chunk.endRow();
    }
    await w.appendTokens(chunk); // returns while DuckDB inserts: the chunk is refilled at once
    chunk.clear();
  };
  await tokens(0, 3000);
  await tokens(3000, 5000);
  await w.appendAll([[5000, 'row', 5000 * 1_000_000]]);
  await tokens(5001, 6000);
  const [file] = await w.close();
  assert.equal(file.recordCount, 6000);
  const read = await db.runAndReadAll(
    `SELECT count(*), count(DISTINCT id), min(id), max(id), count(name), sum(CASE WHEN name = 'id-' || id THEN 1 ELSE 0 END), ` +
      `sum(CASE WHEN epoch(ts) = id THEN 1 ELSE 0 END), max(CASE WHEN id = 5000 THEN name END) FROM read_parquet('${file.filePath}')`,
  );
  const nulls = Array.from({ length: 6000 }, (_, i) => i).filter((i) => i % 7 === 0 && i !== 5000).length;
  assert.deepEqual(read.getRows()[0], [6000n, 6000n, 0n, 5999n, BigInt(6000 - nulls), BigInt(6000 - nulls - 1), 6000n, 'row']);
  const stats = new Map(file.columnStats.map((s) => [s.fieldId, s]));
  assert.equal(stats.get(2)!.nullValueCount, nulls);
  assert.deepEqual(deserializeSingleValue(parsePrimitive('long'), stats.get(1)!.upperBound), 5999n);
});

test('a token chunk DuckDB cannot cast fails the writer: settle, append and close say why, abort writes nothing', async () => {
  const path = join(dir, 'bad-tokens.parquet');
  const w = await ParquetFileWriter.open({ path, columns: [col(1, 'id', 'long'), col(2, 'name', 'string')] });
  w.append([1, 'row']);
  const chunk = new TokenChunk(2);
  const bad = Buffer.from('not-a-number');
  chunk.beginRow();
  chunk.put(0, bad, 0, bad.length);
  chunk.putNull(1);
  chunk.endRow();
  await w.appendTokens(chunk);
  await assert.rejects(w.settle(), /a token chunk failed: .*not-a-number/);
  assert.throws(() => w.append([2, 'row']), /a token chunk failed/);
  await assert.rejects(w.appendTokens(chunk), /a token chunk failed/);
  await assert.rejects(w.close(), /a token chunk failed/);
  await w.abort();
  assert.equal(existsSync(path), false);
  // The process's DuckDB is unharmed: the next writer works.
  const next = await ParquetFileWriter.open({ path: join(dir, 'after-bad.parquet'), columns: [col(1, 'id', 'long')] });
  next.append([7]);
  assert.equal((await next.close()).recordCount, 1);
});

test('files of the same columns one after another: each holds only its own rows, after a failed chunk and an abort too', async () => {
  const cols = [col(1, 'id', 'long'), col(2, 'name', 'string')];
  const chunkOf = (ids: readonly (number | string)[]) => {
    const chunk = new TokenChunk(2);
    for (const id of ids) {
      const text = Buffer.from(String(id));
      chunk.beginRow();
      chunk.put(0, text, 0, text.length);
      chunk.put(1, text, 0, text.length);
      chunk.endRow();
    }
    return chunk;
  };
  const range = (from: number, n: number) => Array.from({ length: n }, (_, i) => from + i);
  const idsOf = async (path: string) =>
    (await db.runAndReadAll(`SELECT id FROM read_parquet('${path}') ORDER BY id`)).getRows().map((r) => Number(r[0]));

  const first = await ParquetFileWriter.open({ path: join(dir, 'next-1.parquet'), columns: cols });
  await first.appendTokens(chunkOf(range(0, 100)));
  await first.settle();
  first.append([100, 'row']);
  assert.deepEqual(await idsOf((await first.close()).filePath), range(0, 101));

  // Its transaction aborted by a chunk DuckDB cannot cast, then rolled back.
  const failing = await ParquetFileWriter.open({ path: join(dir, 'next-2.parquet'), columns: cols });
  await failing.appendTokens(chunkOf([200, 'not-a-number']));
  await assert.rejects(failing.close(), /a token chunk failed/);
  await failing.abort();

  const aborted = await ParquetFileWriter.open({ path: join(dir, 'next-3.parquet'), columns: cols });
  await aborted.appendTokens(chunkOf(range(300, 5)));
  await aborted.settle();
  await aborted.abort();

  const last = await ParquetFileWriter.open({ path: join(dir, 'next-4.parquet'), columns: cols });
  await last.appendTokens(chunkOf(range(400, 10)));
  const file = await last.close();
  assert.equal(file.recordCount, 10);
  assert.deepEqual(await idsOf(file.filePath), range(400, 10));
  const stats = new Map(file.columnStats.map((s) => [s.fieldId, s]));
  assert.deepEqual(deserializeSingleValue(parsePrimitive('long'), stats.get(1)!.lowerBound), 400n);

  // The same names with another type are another table: a text id is not cast to a long.
  const text = await ParquetFileWriter.open({
    path: join(dir, 'next-5.parquet'),
    columns: [col(1, 'id', 'string'), col(2, 'name', 'string')],
  });
  await text.appendTokens(chunkOf(['a', 'b']));
  const textFile = await text.close();
  assert.deepEqual(
    (await db.runAndReadAll(`SELECT id FROM read_parquet('${textFile.filePath}') ORDER BY id`)).getRows().map((r) => r[0]),
    ['a', 'b'],
  );
});

test('writers open side by side keep their own rows', async () => {
  const cols = [col(1, 'id', 'long'), col(2, 'name', 'string')];
  const a = await ParquetFileWriter.open({ path: join(dir, 'side-a.parquet'), columns: cols });
  const b = await ParquetFileWriter.open({ path: join(dir, 'side-b.parquet'), columns: cols });
  const chunk = new TokenChunk(2);
  for (let k = 0; k < 3; k++) {
    for (const [w, name] of [
      [a, 'a'],
      [b, 'b'],
    ] as const) {
      for (let i = 0; i < 1000; i++) {
        chunk.beginRow();
        chunk.putInteger(0, k * 1000 + i);
        const text = Buffer.from(name);
        chunk.put(1, text, 0, text.length);
        chunk.endRow();
      }
      await w.appendTokens(chunk);
      chunk.clear();
      await w.settle();
      if (w === b) b.append([-1 - k, 'b-row']);
    }
  }
  const fileB = await b.close();
  const fileA = await a.close();
  const read = async (path: string) =>
    (
      await db.runAndReadAll(
        `SELECT count(*), count(DISTINCT id), string_agg(DISTINCT name, ',' ORDER BY name) FROM read_parquet('${path}')`,
      )
    ).getRows()[0];
  assert.deepEqual(await read(fileA.filePath), [3000n, 3000n, 'a']);
  assert.deepEqual(await read(fileB.filePath), [3003n, 3003n, 'b,b-row']);
  assert.equal(fileA.recordCount, 3000);
  assert.equal(fileB.recordCount, 3003);
});

test('a required column refuses null', async () => {
  const w = await ParquetFileWriter.open({ path: join(dir, 'req.parquet'), columns });
  assert.throws(() => w.append([null, null, null, null, null, null, null, null, null, null, null, null, null]), /column "i" is required/);
  await w.abort();
});

test('the rolling writer starts new files near the target size, and all rows land', async () => {
  const w = new RollingParquetWriter(
    { columns: [col(1, 'id', 'long'), col(2, 'payload', 'string')] },
    (n) => join(dir, `roll-${n}.parquet`),
    64 * 1024,
  );
  const batch = Array.from({ length: 20000 }, (_, i) => [i, `payload-${i}-${'x'.repeat(i % 50)}-${Math.sin(i)}`]);
  await w.appendAll(batch);
  const files = await w.close();
  assert.ok(files.length > 1, `expected several files, got ${files.length}`);
  assert.equal(
    files.reduce((n, f) => n + f.recordCount, 0),
    20000,
  );
  const list = files.map((f) => `'${f.filePath}'`).join(', ');
  const [[count, sum]] = (await db.runAndReadAll(`SELECT count(*), sum(id) FROM read_parquet([${list}])`)).getRows();
  assert.equal(count, 20000n);
  assert.equal(sum, BigInt((19999 * 20000) / 2));
});

test("rolled files are written while rows go on into the next, and are handed over in the rows' order", async () => {
  const w = new RollingParquetWriter(
    { columns: [col(1, 'id', 'long'), col(2, 'payload', 'string')] },
    (n) => join(dir, `order-${n}.parquet`),
    16 * 1024,
  );
  for (let from = 0; from < 12000; from += 1000)
    await w.appendAll(Array.from({ length: 1000 }, (_, i) => [from + i, `payload-${from + i}-${'y'.repeat((from + i) % 40)}`]));
  await w.rollOpenFile();
  await w.written();
  const files = await w.close();
  assert.ok(files.length > 4, `expected several files, got ${files.length}`);
  let next = 0;
  for (const f of files) {
    const [[min, max, count]] = (await db.runAndReadAll(`SELECT min(id), max(id), count(*) FROM read_parquet('${f.filePath}')`)).getRows();
    assert.deepEqual([min, max, count], [BigInt(next), BigInt(next + f.recordCount - 1), BigInt(f.recordCount)], f.filePath);
    next += f.recordCount;
  }
  assert.equal(next, 12000);
});

test("a rolled file that cannot be written fails the writer's next use and its close(), naming the file", async () => {
  const missing = join(dir, 'no-such-dir', 'first.parquet');
  const w = new RollingParquetWriter(
    { columns: [col(1, 'id', 'long')] },
    (n) => (n === 0 ? missing : join(dir, `after-failure-${n}.parquet`)),
    1 << 30,
  );
  await w.appendAll([[1], [2]]);
  await w.rollOpenFile(); // returns once the write has started; it fails off the main thread
  await w.written();
  const named = (e: unknown) => e instanceof Error && e.message.startsWith(`data file ${missing} could not be written: `);
  await assert.rejects(w.appendAll([[3]]), named);
  await assert.rejects(w.close(), named);
  await w.abort();
});

test('a fixed[L] column is refused: DuckDB would write it as BINARY, which Iceberg readers choke on', () => {
  const schema = {
    schemaId: 0,
    identifierFieldIds: [],
    fields: [{ id: 1, name: 'fx', required: false, doc: '', type: { kind: { $case: 'primitive' as const, value: 'fixed[4]' } } }],
  };
  assert.throws(() => writerColumns(schema), /^Error: column "fx" is fixed\[4\]: .*; use binary$/);
});
