import { crc32c } from './crc32c.js';
import { decompress, isKnownCodec } from '#shared/kafka-compression.js';
import { ErrorCode, InvalidBatchError } from './errors.js';
import { readVarint, varintSize, writeVarint, type Cursor } from './varint.js';

// Byte positions of the record batch v2 header (all big-endian).
export const BATCH = {
  BASE_OFFSET: 0,
  LENGTH: 8, // counts bytes after this field
  LEADER_EPOCH: 12,
  MAGIC: 16,
  CRC: 17, // covers ATTRIBUTES .. end
  ATTRIBUTES: 21,
  LAST_OFFSET_DELTA: 23,
  FIRST_TIMESTAMP: 27,
  MAX_TIMESTAMP: 35,
  PRODUCER_ID: 43,
  PRODUCER_EPOCH: 51,
  BASE_SEQUENCE: 53,
  RECORD_COUNT: 57,
  RECORDS: 61,
} as const;
export const LOG_OVERHEAD = 12; // base offset + length

const ATTR_CODEC_MASK = 0x07;
const ATTR_TRANSACTIONAL = 0x10;
const ATTR_CONTROL = 0x20;

/** What the broker needs to know about a batch without touching its records. */
export interface BatchInfo {
  /** The batch bytes (a view into the frame they arrived in, or into a segment file). */
  bytes: Buffer;
  lastOffsetDelta: number;
  recordCount: number;
  maxTimestamp: number;
  producerId: bigint;
  producerEpoch: number;
  baseSequence: number;
  transactional: boolean;
}

/**
 * Splits a produce request's records field into batches and validates each (magic 2, length,
 * CRC-32C, codec, record count). Throws InvalidBatchError with the Kafka error code to answer with.
 */
export function parseBatches(records: Buffer): BatchInfo[] {
  const out: BatchInfo[] = [];
  let pos = 0;
  while (pos < records.length) {
    if (records.length - pos < BATCH.RECORDS) {
      throw new InvalidBatchError(`record batch header truncated at byte ${pos}`, ErrorCode.CORRUPT_MESSAGE);
    }
    const magic = records.readInt8(pos + BATCH.MAGIC);
    if (magic !== 2) {
      throw new InvalidBatchError(
        `message format v${magic} at byte ${pos}: only record batch v2 is supported`,
        ErrorCode.UNSUPPORTED_FOR_MESSAGE_FORMAT,
      );
    }
    const size = LOG_OVERHEAD + records.readInt32BE(pos + BATCH.LENGTH);
    if (size < BATCH.RECORDS || pos + size > records.length) {
      throw new InvalidBatchError(
        `record batch at byte ${pos} declares ${size} bytes, ${records.length - pos} present`,
        ErrorCode.CORRUPT_MESSAGE,
      );
    }
    const bytes = records.subarray(pos, pos + size);
    out.push(inspectBatch(bytes, pos));
    pos += size;
  }
  return out;
}

function inspectBatch(bytes: Buffer, at: number): BatchInfo {
  const expected = bytes.readUInt32BE(BATCH.CRC);
  const actual = crc32c(bytes, BATCH.ATTRIBUTES);
  if (expected !== actual) {
    throw new InvalidBatchError(
      `record batch at byte ${at}: CRC mismatch (header ${expected}, computed ${actual})`,
      ErrorCode.CORRUPT_MESSAGE,
    );
  }
  const attributes = bytes.readInt16BE(BATCH.ATTRIBUTES);
  if (!isKnownCodec(attributes & ATTR_CODEC_MASK)) {
    throw new InvalidBatchError(
      `record batch at byte ${at}: unknown compression codec ${attributes & ATTR_CODEC_MASK}`,
      ErrorCode.CORRUPT_MESSAGE,
    );
  }
  const recordCount = bytes.readInt32BE(BATCH.RECORD_COUNT);
  const lastOffsetDelta = bytes.readInt32BE(BATCH.LAST_OFFSET_DELTA);
  if (recordCount <= 0 || lastOffsetDelta !== recordCount - 1) {
    throw new InvalidBatchError(
      `record batch at byte ${at}: ${recordCount} records but last offset delta ${lastOffsetDelta}`,
      ErrorCode.INVALID_RECORD,
    );
  }
  if (attributes & ATTR_CONTROL) {
    throw new InvalidBatchError(`record batch at byte ${at}: control batches are not accepted from producers`, ErrorCode.INVALID_RECORD);
  }
  return {
    bytes,
    lastOffsetDelta,
    recordCount,
    maxTimestamp: Number(bytes.readBigInt64BE(BATCH.MAX_TIMESTAMP)),
    producerId: bytes.readBigInt64BE(BATCH.PRODUCER_ID),
    producerEpoch: bytes.readInt16BE(BATCH.PRODUCER_EPOCH),
    baseSequence: bytes.readInt32BE(BATCH.BASE_SEQUENCE),
    transactional: (attributes & ATTR_TRANSACTIONAL) !== 0,
  };
}

/** Reads the fields of a stored batch header that the log index keeps. */
export function batchBaseOffset(bytes: Buffer): number {
  return Number(bytes.readBigInt64BE(BATCH.BASE_OFFSET));
}
export function batchLastOffsetDelta(bytes: Buffer): number {
  return bytes.readInt32BE(BATCH.LAST_OFFSET_DELTA);
}
export function batchMaxTimestamp(bytes: Buffer): number {
  return Number(bytes.readBigInt64BE(BATCH.MAX_TIMESTAMP));
}

/**
 * Calls visit(offset, timestamp) for each record of a batch, in order, until it returns true.
 * Decompresses when needed; used for timestamp lookups only, never on the fetch path.
 */
export function scanRecordTimestamps(bytes: Buffer, visit: (offset: number, timestamp: number) => boolean): boolean {
  const baseOffset = batchBaseOffset(bytes);
  const firstTimestamp = Number(bytes.readBigInt64BE(BATCH.FIRST_TIMESTAMP));
  const count = bytes.readInt32BE(BATCH.RECORD_COUNT);
  const codec = bytes.readInt16BE(BATCH.ATTRIBUTES) & ATTR_CODEC_MASK;
  const records = decompress(codec, bytes.subarray(BATCH.RECORDS));
  const c: Cursor = { pos: 0 };
  for (let i = 0; i < count; i++) {
    const length = readVarint(records, c);
    const end = c.pos + length;
    c.pos += 1; // record attributes
    const timestampDelta = readVarint(records, c);
    const offsetDelta = readVarint(records, c);
    if (visit(baseOffset + offsetDelta, firstTimestamp + timestampDelta)) return true;
    c.pos = end;
  }
  return false;
}

export interface RecordInput {
  key?: Buffer | string | null;
  value: Buffer | string | null;
  headers?: Record<string, Buffer | string>;
  timestamp?: number;
}

function toBuf(v: Buffer | string | null | undefined): Buffer | null {
  if (v === null || v === undefined) return null;
  return typeof v === 'string' ? Buffer.from(v) : v;
}

/**
 * Encodes records as one uncompressed v2 batch with base offset 0 (the log assigns the real one).
 * Used by the programmatic append API.
 */
export function encodeBatch(records: readonly RecordInput[], now = Date.now()): Buffer {
  if (records.length === 0) throw new RangeError('cannot encode an empty record batch');
  const firstTimestamp = records[0].timestamp ?? now;
  let maxTimestamp = firstTimestamp;
  const prepared = records.map((r, i) => {
    const timestamp = r.timestamp ?? now;
    if (timestamp > maxTimestamp) maxTimestamp = timestamp;
    const key = toBuf(r.key);
    const value = toBuf(r.value);
    const headers = Object.entries(r.headers ?? {}).map(([k, v]) => [Buffer.from(k), toBuf(v) as Buffer] as const);
    const tsDelta = timestamp - firstTimestamp;
    let body = 1 + varintSize(tsDelta) + varintSize(i);
    body += key ? varintSize(key.length) + key.length : 1;
    body += value ? varintSize(value.length) + value.length : 1;
    body += varintSize(headers.length);
    for (const [hk, hv] of headers) body += varintSize(hk.length) + hk.length + varintSize(hv.length) + hv.length;
    return { tsDelta, key, value, headers, body };
  });
  const size = BATCH.RECORDS + prepared.reduce((n, p) => n + varintSize(p.body) + p.body, 0);
  const buf = Buffer.alloc(size);
  buf.writeBigInt64BE(0n, BATCH.BASE_OFFSET);
  buf.writeInt32BE(size - LOG_OVERHEAD, BATCH.LENGTH);
  buf.writeInt32BE(-1, BATCH.LEADER_EPOCH);
  buf.writeInt8(2, BATCH.MAGIC);
  buf.writeInt16BE(0, BATCH.ATTRIBUTES);
  buf.writeInt32BE(records.length - 1, BATCH.LAST_OFFSET_DELTA);
  buf.writeBigInt64BE(BigInt(firstTimestamp), BATCH.FIRST_TIMESTAMP);
  buf.writeBigInt64BE(BigInt(maxTimestamp), BATCH.MAX_TIMESTAMP);
  buf.writeBigInt64BE(-1n, BATCH.PRODUCER_ID);
  buf.writeInt16BE(-1, BATCH.PRODUCER_EPOCH);
  buf.writeInt32BE(-1, BATCH.BASE_SEQUENCE);
  buf.writeInt32BE(records.length, BATCH.RECORD_COUNT);
  let pos: number = BATCH.RECORDS;
  prepared.forEach((p, i) => {
    pos = writeVarint(buf, pos, p.body);
    buf[pos++] = 0;
    pos = writeVarint(buf, pos, p.tsDelta);
    pos = writeVarint(buf, pos, i);
    pos = writeBytesField(buf, pos, p.key);
    pos = writeBytesField(buf, pos, p.value);
    pos = writeVarint(buf, pos, p.headers.length);
    for (const [hk, hv] of p.headers) {
      pos = writeBytesField(buf, pos, hk);
      pos = writeBytesField(buf, pos, hv);
    }
  });
  buf.writeUInt32BE(crc32c(buf, BATCH.ATTRIBUTES), BATCH.CRC);
  return buf;
}

function writeBytesField(buf: Buffer, pos: number, b: Buffer | null): number {
  if (b === null) return writeVarint(buf, pos, -1);
  pos = writeVarint(buf, pos, b.length);
  b.copy(buf, pos);
  return pos + b.length;
}

/** One record of a stored batch: its absolute offset, key, and its bytes (length prefix included). */
export interface RawRecord {
  offset: number;
  key: Buffer | null;
  raw: Buffer;
}

export function isControlBatch(bytes: Buffer): boolean {
  return (bytes.readInt16BE(BATCH.ATTRIBUTES) & ATTR_CONTROL) !== 0;
}

/** The records of a batch (decompressed), each with its raw bytes for re-encoding unchanged. */
export function batchRecords(bytes: Buffer): RawRecord[] {
  const baseOffset = batchBaseOffset(bytes);
  const count = bytes.readInt32BE(BATCH.RECORD_COUNT);
  const codec = bytes.readInt16BE(BATCH.ATTRIBUTES) & ATTR_CODEC_MASK;
  const records = decompress(codec, bytes.subarray(BATCH.RECORDS));
  const out: RawRecord[] = [];
  const c: Cursor = { pos: 0 };
  for (let i = 0; i < count; i++) {
    const start = c.pos;
    const length = readVarint(records, c);
    const end = c.pos + length;
    c.pos += 1; // attributes
    readVarint(records, c); // timestamp delta
    const offsetDelta = readVarint(records, c);
    const keyLength = readVarint(records, c);
    const key = keyLength < 0 ? null : records.subarray(c.pos, c.pos + keyLength);
    out.push({ offset: baseOffset + offsetDelta, key, raw: records.subarray(start, end) });
    c.pos = end;
  }
  return out;
}

/**
 * The batch with only the given records (a subset of batchRecords(bytes), in order), as log
 * compaction leaves it: same base offset, last offset delta, timestamps and producer fields,
 * records uncompressed, count and CRC updated. Offsets inside keep their gaps.
 */
export function retainRecords(bytes: Buffer, kept: readonly RawRecord[]): Buffer {
  const size = BATCH.RECORDS + kept.reduce((n, r) => n + r.raw.length, 0);
  const out = Buffer.alloc(size);
  bytes.copy(out, 0, 0, BATCH.RECORDS);
  out.writeInt32BE(size - LOG_OVERHEAD, BATCH.LENGTH);
  out.writeInt16BE(bytes.readInt16BE(BATCH.ATTRIBUTES) & ~ATTR_CODEC_MASK, BATCH.ATTRIBUTES);
  out.writeInt32BE(kept.length, BATCH.RECORD_COUNT);
  let pos: number = BATCH.RECORDS;
  for (const r of kept) pos += r.raw.copy(out, pos);
  out.writeUInt32BE(crc32c(out, BATCH.ATTRIBUTES), BATCH.CRC);
  return out;
}

/** Control record types (the key's second int16). */
export const ControlType = { ABORT: 0, COMMIT: 1 } as const;

/** A batch's transactional flag and producer id, read from its header. */
export function batchProducer(bytes: Buffer): { transactional: boolean; producerId: bigint } {
  return {
    transactional: (bytes.readInt16BE(BATCH.ATTRIBUTES) & ATTR_TRANSACTIONAL) !== 0,
    producerId: bytes.readBigInt64BE(BATCH.PRODUCER_ID),
  };
}

/** The type of a control batch's (single) record: ControlType.ABORT or COMMIT. */
export function controlType(bytes: Buffer): number {
  const [record] = batchRecords(bytes);
  // key: version int16, type int16, after the key-length varint
  const key = record?.key;
  return key && key.length >= 4 ? key.readInt16BE(2) : -1;
}

/**
 * A transaction marker as the transaction coordinator writes it: one control record (key:
 * version 0 and the type; value: version 0 and the coordinator epoch) in a transactional control
 * batch of the producer, stamped with the broker's clock.
 */
export function encodeControlBatch(producerId: bigint, producerEpoch: number, type: number, timestamp = Date.now()): Buffer {
  const key = Buffer.alloc(4);
  key.writeInt16BE(0, 0);
  key.writeInt16BE(type, 2);
  const value = Buffer.alloc(6); // version 0, coordinator epoch 0
  const batch = encodeBatch([{ key, value, timestamp }], timestamp);
  batch.writeInt16BE(ATTR_TRANSACTIONAL | ATTR_CONTROL, BATCH.ATTRIBUTES);
  batch.writeBigInt64BE(producerId, BATCH.PRODUCER_ID);
  batch.writeInt16BE(producerEpoch, BATCH.PRODUCER_EPOCH);
  batch.writeUInt32BE(crc32c(batch, BATCH.ATTRIBUTES), BATCH.CRC);
  return batch;
}
