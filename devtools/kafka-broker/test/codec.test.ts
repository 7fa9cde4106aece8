import { test } from 'node:test';
import assert from 'node:assert/strict';
import { gzipSync } from 'node:zlib';
import { crc32c } from '#kafka-broker/protocol/crc32c.js';
import { readVarint, varintSize, writeVarint } from '#kafka-broker/protocol/varint.js';
import { BATCH, encodeBatch, parseBatches, scanRecordTimestamps } from '#kafka-broker/protocol/record-batch.js';
import { InvalidBatchError, ErrorCode } from '#kafka-broker/protocol/errors.js';
import { Reader } from '#kafka-broker/protocol/reader.js';
import { Writer } from '#kafka-broker/protocol/writer.js';
import { PartitionLog } from '#kafka-broker/storage/partition-log.js';
import { selectProtocol } from '#kafka-broker/group/group.js';

test('crc32c matches the standard check values', () => {
  const cases: [string, number][] = [
    ['', 0],
    ['123456789', 0xe3069283],
    ['The quick brown fox jumps over the lazy dog', 0x22620404],
  ];
  for (const [input, expected] of cases) assert.equal(crc32c(Buffer.from(input)), expected, input);
});

test('zig-zag varints round-trip and have the expected sizes', () => {
  const cases: [number, number][] = [
    [0, 1],
    [-1, 1],
    [1, 1],
    [63, 1],
    [-64, 1],
    [64, 2],
    [-65, 2],
    [8191, 2],
    [8192, 3],
    [2 ** 31 - 1, 5],
    [-(2 ** 31), 5],
    [1_700_000_000_000, 6],
  ];
  for (const [value, size] of cases) {
    const buf = Buffer.alloc(10);
    const end = writeVarint(buf, 0, value);
    assert.equal(end, size, `size of ${value}`);
    assert.equal(varintSize(value), size);
    const c = { pos: 0 };
    assert.equal(readVarint(buf, c), value);
    assert.equal(c.pos, size);
  }
});

test('encoded batches parse back with their counts, timestamps and a valid CRC', () => {
  const batch = encodeBatch([
    { key: 'a', value: 'one', timestamp: 5000 },
    { value: 'two', timestamp: 3000, headers: { h: 'x' } },
    { key: null, value: null, timestamp: 9000 },
  ]);
  const [info] = parseBatches(Buffer.concat([batch]));
  assert.equal(info.recordCount, 3);
  assert.equal(info.maxTimestamp, 9000);
  const seen: [number, number][] = [];
  scanRecordTimestamps(batch, (o, ts) => (seen.push([o, ts]), false));
  assert.deepEqual(seen, [
    [0, 5000],
    [1, 3000],
    [2, 9000],
  ]);
});

test('corrupt batches are refused with the Kafka error to answer', () => {
  const good = encodeBatch([{ value: 'v', timestamp: 1 }]);
  const flipped = Buffer.from(good);
  flipped[flipped.length - 1] ^= 0xff;
  const oldMagic = Buffer.from(good);
  oldMagic.writeInt8(1, BATCH.MAGIC);
  const cases: [string, Buffer, number][] = [
    ['crc mismatch', flipped, ErrorCode.CORRUPT_MESSAGE],
    ['truncated batch', good.subarray(0, good.length - 3), ErrorCode.CORRUPT_MESSAGE],
    ['short header', good.subarray(0, 20), ErrorCode.CORRUPT_MESSAGE],
    ['legacy magic', oldMagic, ErrorCode.UNSUPPORTED_FOR_MESSAGE_FORMAT],
  ];
  for (const [name, bytes, code] of cases) {
    assert.throws(
      () => parseBatches(bytes),
      (e: unknown) => e instanceof InvalidBatchError && e.errorCode === code,
      name,
    );
  }
});

test('reader refuses truncated fields and lying array counts', () => {
  assert.throws(() => new Reader(Buffer.from([0, 5, 65])).string(), /truncated string/);
  assert.throws(() => new Reader(Buffer.from([0x7f, 0, 0, 0])).array((r) => r.int8()), /exceeds frame/);
  const w = new Writer().string('héllo').int64(-2).nullableString(null).bytes(Buffer.alloc(600, 7));
  const r = new Reader(Buffer.concat(w.finish()));
  assert.equal(r.string(), 'héllo');
  assert.equal(r.int64(), -2);
  assert.equal(r.nullableString(), null);
  assert.deepEqual(r.bytes(), Buffer.alloc(600, 7));
});

/** Builds a gzip-compressed copy of an uncompressed batch (same records, codec bit set). */
function gzipBatch(plain: Buffer): Buffer {
  const records = gzipSync(plain.subarray(BATCH.RECORDS));
  const out = Buffer.concat([plain.subarray(0, BATCH.RECORDS), records]);
  out.writeInt32BE(out.length - 12, BATCH.LENGTH);
  out.writeInt16BE(1, BATCH.ATTRIBUTES);
  out.writeUInt32BE(crc32c(out, BATCH.ATTRIBUTES), BATCH.CRC);
  return out;
}

test('timestamp lookup finds the first offset at or after t even when timestamps are out of order', () => {
  const log = new PartitionLog('t', 0);
  // offsets 0-2 | 3-5 (gzip) | 6-7: timestamps deliberately unsorted across and within batches
  log.append(
    encodeBatch([
      { value: 'a', timestamp: 1000 },
      { value: 'b', timestamp: 5000 },
      { value: 'c', timestamp: 3000 },
    ]),
  );
  log.append(
    gzipBatch(
      encodeBatch([
        { value: 'd', timestamp: 2000 },
        { value: 'e', timestamp: 7000 },
        { value: 'f', timestamp: 4000 },
      ]),
    ),
  );
  log.append(
    encodeBatch([
      { value: 'g', timestamp: 6000 },
      { value: 'h', timestamp: 9000 },
    ]),
  );
  const cases: [number, number | null][] = [
    [0, 0],
    [1000, 0],
    [1001, 1],
    [5000, 1],
    [5001, 4],
    [6500, 4],
    [7001, 7],
    [9000, 7],
    [9001, null],
  ];
  for (const [t, expected] of cases) assert.equal(log.offsetForTimestamp(t)?.offset ?? null, expected, `t=${t}`);
  // After retention the lookup never answers an offset below the log start.
  log.deleteBefore(2);
  assert.equal(log.offsetForTimestamp(1000)?.offset, 2);
  log.deleteBefore(5);
  assert.equal(log.offsetForTimestamp(5000)?.offset, 6);
  assert.equal(log.logStartOffset, 5);
  assert.equal(log.highWatermark, 8);
});

test('reads start at the batch holding the offset and always return at least one batch', () => {
  const log = new PartitionLog('t', 0);
  const sizes = [10, 10, 10].map((n, i) =>
    log.append(encodeBatch(Array.from({ length: n }, (_, j) => ({ value: `${i}-${j}`, timestamp: 1 })))),
  );
  assert.deepEqual(sizes, [0, 10, 20]);
  assert.equal(log.read(15, 1).batches.length, 1);
  assert.equal(log.read(15, 1).batches[0].readBigInt64BE(0), 10n);
  assert.equal(log.read(0, 1e9).batches.length, 3);
  assert.equal(log.read(30, 1e9).batches.length, 0);
});

test('protocol selection takes the most preferred protocol all members support', () => {
  const m = (...names: string[]) => ({ protocols: names.map((name) => ({ name, metadata: Buffer.alloc(0) })) });
  const cases: [ReturnType<typeof m>[], string | null][] = [
    [[m('range')], 'range'],
    [[m('range', 'roundrobin'), m('roundrobin', 'range'), m('roundrobin')], 'roundrobin'],
    [[m('range', 'roundrobin'), m('range', 'roundrobin')], 'range'],
    [[m('range'), m('sticky')], null],
  ];
  for (const [members, expected] of cases) assert.equal(selectProtocol(members), expected);
});
