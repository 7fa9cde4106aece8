/**
 * The records field of a Fetch response: record batches (magic 2) decoded into FetchedRecords,
 * with transaction markers and aborted transactions' records left out (read_committed).
 *
 * Wire grammar (all integers big-endian; varints zig-zag):
 *
 *   RecordBatch => baseOffset: int64, batchLength: int32, partitionLeaderEpoch: int32,
 *                  magic: int8 (2), crc: uint32, attributes: int16, lastOffsetDelta: int32,
 *                  baseTimestamp: int64, maxTimestamp: int64, producerId: int64,
 *                  producerEpoch: int16, baseSequence: int32, recordCount: int32,
 *                  records: Record* (compressed as a whole when attributes & 7 != 0)
 *   attributes   => bits 0-2 codec (none, gzip, snappy, lz4, zstd), bit 3 timestamp type
 *                  (1: LogAppendTime, every record stamped maxTimestamp), bit 4 transactional,
 *                  bit 5 control
 *   Record       => length: varint, attributes: int8, timestampDelta: varlong,
 *                  offsetDelta: varint, keyLength: varint (-1: null), key: bytes,
 *                  valueLength: varint (-1: null), value: bytes, headerCount: varint,
 *                  Header*
 *   Header       => keyLength: varint, key: utf8, valueLength: varint (-1: null), value: bytes
 *   control record key => version: int16, type: int16 (0: ABORT, 1: COMMIT)
 *
 * The CRC is not checked: TCP and the broker (which checks every produced batch) already
 * guard the bytes, and librdkafka's default (check.crcs=false) and kafkajs agree.
 */
import { decompress, isKnownCodec } from '#shared/kafka-compression.js';
import type { FetchedRecords, RecordHeader } from './fetched-records.js';

const HEADER_BYTES = 61; // through recordCount
const LOG_OVERHEAD = 12; // baseOffset + batchLength
const MAGIC_AT = 16;
const ATTR_CODEC = 0x07;
const ATTR_LOG_APPEND_TIME = 0x08;
const ATTR_TRANSACTIONAL = 0x10;
const ATTR_CONTROL = 0x20;
const CONTROL_ABORT = 0;

/**
 * A batch that cannot be read: the offset it starts at, what is wrong with it and, once the
 * Fetch response's decoder knows it, the partition ("orders/3").
 */
export class RecordBatchError extends Error {
  constructor(
    readonly offset: number,
    readonly problem: string,
    readonly partition = '',
  ) {
    super(`${partition ? `${partition}: ` : ''}record batch at offset ${offset}: ${problem}`);
    this.name = 'RecordBatchError';
  }
}

/** An aborted transaction of the fetched range, as the Fetch response lists it. */
export interface AbortedTransaction {
  /** The producer id as a decimal string (ids are int64; compared, never computed with). */
  readonly producerId: string;
  readonly firstOffset: number;
}

/** int64 at `at` as a number (offsets and timestamps stay far below 2^53). */
export function int64(buf: Buffer, at: number): number {
  return buf.readInt32BE(at) * 0x1_0000_0000 + buf.readUInt32BE(at + 4);
}

/** The decoding position of one buffer; a varint moves it. One per call, not per record. */
class Cursor {
  at: number;
  constructor(
    readonly buf: Buffer,
    at: number,
    readonly end: number,
    readonly batchOffset: number,
  ) {
    this.at = at;
  }

  varint(): number {
    let b = this.byte();
    let raw = b & 0x7f;
    let scale = 128;
    while (b & 0x80) {
      b = this.byte();
      raw += (b & 0x7f) * scale;
      scale *= 128;
      if (scale > 2 ** 70) throw new RecordBatchError(this.batchOffset, `a varint runs over 10 bytes at byte ${this.at}`);
    }
    return raw % 2 === 0 ? raw / 2 : -(raw + 1) / 2;
  }

  private byte(): number {
    if (this.at >= this.end) throw new RecordBatchError(this.batchOffset, 'a record runs past the end of its batch');
    return this.buf[this.at++];
  }

  /** Skips n bytes (a key or value), which must lie inside the batch. */
  skip(n: number): void {
    if (n > this.end - this.at) throw new RecordBatchError(this.batchOffset, 'a record runs past the end of its batch');
    this.at += n;
  }
}

/** What the records field held: the records to use and where its last complete batch ends. */
export interface DecodedRecords {
  /** One past the last offset of the last complete batch (markers and aborted batches count); null: none. */
  nextOffset: number | null;
}

/**
 * Adds the records of every complete batch in `buf[start, end)` to `out`, leaving out
 * control batches and the batches of aborted transactions. A batch cut short at the end (the
 * broker stops at the size limit mid-batch) is not an error: it is fetched whole next time.
 */
export function decodeRecordBatches(
  buf: Buffer,
  start: number,
  end: number,
  aborted: readonly AbortedTransaction[] | null,
  out: FetchedRecords,
): DecodedRecords {
  // read_committed (Java consumer's algorithm): an aborted transaction becomes current once a
  // batch reaches its first offset, and stays so for its producer until that producer's ABORT marker.
  const pending = aborted && aborted.length > 0 ? [...aborted].sort((a, b) => a.firstOffset - b.firstOffset) : null;
  const abortedProducers = new Set<string>();
  let nextOffset: number | null = null;
  let pos = start;
  while (end - pos >= LOG_OVERHEAD) {
    const baseOffset = int64(buf, pos);
    const size = LOG_OVERHEAD + buf.readInt32BE(pos + 8);
    if (size > end - pos) break; // the partial batch at the end
    // A complete batch that is malformed throws rather than ending the loop like a partial one:
    // its nextOffset would never move, and the caller would fetch the same bytes forever.
    // The magic byte sits at 16 in old message sets too (offset, size, crc, magic), so a small
    // v0/v1 message is named for what it is before its size looks wrong for a v2 batch.
    const magic = size > MAGIC_AT ? buf.readInt8(pos + MAGIC_AT) : 2;
    if (magic !== 2)
      throw new RecordBatchError(
        baseOffset,
        `magic ${magic} (message format v0/v1); Sluice reads record batches of magic 2 (Kafka 0.11 and later)`,
      );
    if (size < HEADER_BYTES)
      throw new RecordBatchError(baseOffset, `its length field says ${size - LOG_OVERHEAD} bytes, less than a batch header`);
    const attributes = buf.readInt16BE(pos + 21);
    const lastOffset = baseOffset + buf.readInt32BE(pos + 23);
    const batchEnd = pos + size;
    if (pending !== null) {
      while (pending.length > 0 && pending[0].firstOffset <= lastOffset) abortedProducers.add(pending.shift()!.producerId);
    }
    const transactional = (attributes & ATTR_TRANSACTIONAL) !== 0;
    const producer = transactional && abortedProducers.size > 0 ? buf.readBigInt64BE(pos + 43).toString() : null;
    if (attributes & ATTR_CONTROL) {
      if (producer !== null && controlType(buf, pos, batchEnd, baseOffset) === CONTROL_ABORT) abortedProducers.delete(producer);
    } else if (producer === null || !abortedProducers.has(producer)) {
      decodeRecords(buf, pos, batchEnd, baseOffset, attributes, out);
    }
    nextOffset = lastOffset + 1;
    pos = batchEnd;
  }
  return { nextOffset };
}

function decodeRecords(buf: Buffer, pos: number, batchEnd: number, baseOffset: number, attributes: number, out: FetchedRecords): void {
  const codec = attributes & ATTR_CODEC;
  const baseTimestamp = int64(buf, pos + 27);
  const logAppendTime = (attributes & ATTR_LOG_APPEND_TIME) !== 0 ? int64(buf, pos + 35) : null;
  const count = buf.readInt32BE(pos + 57);
  let data = buf;
  let at = pos + HEADER_BYTES;
  let end = batchEnd;
  if (codec !== 0) {
    if (!isKnownCodec(codec)) throw new RecordBatchError(baseOffset, `unknown compression codec ${codec}`);
    try {
      data = decompress(codec, buf.subarray(at, batchEnd));
    } catch (err) {
      throw new RecordBatchError(baseOffset, `its records do not decompress (codec ${codec}): ${(err as Error).message}`);
    }
    at = 0;
    end = data.length;
  }
  const c = new Cursor(data, at, end, baseOffset);
  for (let i = 0; i < count; i++) {
    const length = c.varint();
    const recordEnd = c.at + length;
    if (length < 0 || recordEnd > end) throw new RecordBatchError(baseOffset, `record ${i} runs past the end of its batch`);
    c.skip(1); // record attributes (unused)
    const timestampDelta = c.varint();
    const offsetDelta = c.varint();
    const keyLength = c.varint();
    const keyStart = c.at;
    if (keyLength > 0) c.skip(keyLength);
    const valueLength = c.varint();
    const valueStart = c.at;
    if (valueLength > 0) c.skip(valueLength);
    const headerCount = c.varint();
    const headers = headerCount > 0 ? readHeaders(c, headerCount) : null;
    if (c.at !== recordEnd)
      throw new RecordBatchError(baseOffset, `record ${i} declares ${length} bytes but holds ${c.at - recordEnd + length}`);
    out.add(
      baseOffset + offsetDelta,
      logAppendTime ?? baseTimestamp + timestampDelta,
      data,
      keyStart,
      keyLength < 0 ? -1 : keyLength,
      valueStart,
      valueLength < 0 ? -1 : valueLength,
      headers,
    );
  }
}

function readHeaders(c: Cursor, count: number): RecordHeader[] {
  const headers: RecordHeader[] = [];
  for (let h = 0; h < count; h++) {
    const keyLength = c.varint();
    const keyStart = c.at;
    c.skip(Math.max(0, keyLength));
    const key = c.buf.toString('utf8', keyStart, keyStart + Math.max(0, keyLength));
    const valueLength = c.varint();
    const valueStart = c.at;
    let value: Buffer | null = null;
    if (valueLength >= 0) {
      c.skip(valueLength);
      value = c.buf.subarray(valueStart, valueStart + valueLength);
    }
    headers.push({ key, value });
  }
  return headers;
}

/** A control batch's record type (0: ABORT, 1: COMMIT), from its single record's key. */
function controlType(buf: Buffer, pos: number, batchEnd: number, baseOffset: number): number {
  const c = new Cursor(buf, pos + HEADER_BYTES, batchEnd, baseOffset);
  c.varint(); // length
  c.skip(1); // attributes
  c.varint(); // timestamp delta
  c.varint(); // offset delta
  const keyLength = c.varint();
  if (keyLength < 4) throw new RecordBatchError(baseOffset, 'a control record without its type');
  return buf.readInt16BE(c.at + 2);
}
