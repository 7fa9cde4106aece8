/**
 * The Parquet footer reader: what it reads from files our writer produces, and that anything
 * else (truncated, garbage, crafted) fails with a FooterError, never hangs or throws otherwise.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { parsePrimitive } from '#shared/iceberg/single-value.js';
import { FooterError, PhysicalType, parseFooter, readParquetFooter, topLevelColumns } from '#shared/parquet/footer.js';
import { ParquetFileWriter } from '#shared/parquet/writer.js';
import { createStorage } from '#shared/storage/index.js';
import { tempDir, type TempDir } from '#test-support/temp.js';

let dir: TempDir;
let path: string;
let bytes: Uint8Array;
const storage = createStorage();

before(async () => {
  dir = tempDir('footer');
  path = join(dir.path, 'f.parquet');
  const types = ['boolean', 'int', 'long', 'double', 'decimal(10,2)', 'date', 'timestamptz', 'string', 'uuid', 'binary'];
  const writer = await ParquetFileWriter.open({
    path,
    columns: types.map((t, i) => ({ fieldId: i + 1, name: `c${i}`, type: parsePrimitive(t), required: i === 0 })),
  });
  for (let i = 0; i < 3; i++)
    writer.append([true, i, BigInt(i), 1.5, 123n, 19000, 1000, 's', '123e4567-e89b-12d3-a456-426614174000', null]);
  await writer.close();
  bytes = readFileSync(path);
});
after(() => dir.remove());

test("reads the row count and the columns' field ids and physical types of a file our writer wrote, from its footer", async () => {
  const footer = await readParquetFooter(storage, path, bytes.length);
  assert.equal(footer.numRows, 3);
  const columns = topLevelColumns(footer).map(({ element: e, nested }) => [e.name, e.fieldId, e.type, nested]);
  assert.deepEqual(columns, [
    ['c0', 1, PhysicalType.BOOLEAN, false],
    ['c1', 2, PhysicalType.INT32, false],
    ['c2', 3, PhysicalType.INT64, false],
    ['c3', 4, PhysicalType.DOUBLE, false],
    ['c4', 5, PhysicalType.INT64, false],
    ['c5', 6, PhysicalType.INT32, false],
    ['c6', 7, PhysicalType.INT64, false],
    ['c7', 8, PhysicalType.BYTE_ARRAY, false],
    ['c8', 9, PhysicalType.FIXED_LEN_BYTE_ARRAY, false],
    ['c9', 10, PhysicalType.BYTE_ARRAY, false],
  ]);
  const decimal = topLevelColumns(footer)[4].element;
  assert.deepEqual([decimal.precision, decimal.scale], [10, 2]);
  assert.equal(topLevelColumns(footer)[8].element.typeLength, 16);
});

test('files that are not Parquet are refused with the reason', async () => {
  const cases: [string, Uint8Array, RegExp][] = [
    ['text', new TextEncoder().encode('root:x:0:0:root:/root:/bin/bash\n'), /does not start with the Parquet magic/],
    ['too short', new TextEncoder().encode('PAR1PAR1'), /too short for Parquet/],
    ['head only', Buffer.concat([bytes.subarray(0, bytes.length - 4), Buffer.from('XXXX')]), /does not end with the Parquet magic/],
    ['truncated', Buffer.concat([bytes.subarray(0, 4), bytes.subarray(bytes.length - 8)]), /footer length \d+ does not fit/],
    [
      'a footer of garbage',
      Buffer.concat([Buffer.from('PAR1'), Buffer.alloc(40, 0xff), Buffer.from([40, 0, 0, 0]), Buffer.from('PAR1')]),
      /footer/,
    ],
  ];
  for (const [name, content, reason] of cases) {
    const p = join(dir.path, `${name}.bin`);
    writeFileSync(p, content);
    await assert.rejects(
      readParquetFooter(storage, p, content.length),
      (e: unknown) => e instanceof FooterError && reason.test(e.message),
      name,
    );
  }
});

test('a damaged footer fails with a FooterError: every truncation and many random byte flips', () => {
  const length = new DataView(bytes.buffer, bytes.byteOffset).getUint32(bytes.length - 8, true);
  const footer = bytes.subarray(bytes.length - 8 - length, bytes.length - 8);
  for (let n = 0; n < footer.length; n++) assert.throws(() => parseFooter(footer.subarray(0, n)), FooterError, `truncated at ${n}`);
  let seed = 7;
  const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  for (let i = 0; i < 2000; i++) {
    const damaged = Uint8Array.from(footer);
    for (let k = 0; k < 3; k++) damaged[Math.floor(random() * damaged.length)] = Math.floor(random() * 256);
    try {
      const parsed = parseFooter(damaged);
      topLevelColumns(parsed);
    } catch (e) {
      assert.ok(e instanceof FooterError, `flip ${i}: ${(e as Error).message}`);
    }
  }
});
