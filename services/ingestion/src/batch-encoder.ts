/**
 * The wire bytes of a TransformRequest carrying one batch, written straight from a fetch's
 * record columns (kafka/fetched-records.ts): one pass sizes the message, one writes it, and
 * each key and value is copied once, from the fetch's buffers into the message. There is no RecordRun object and no protobuf
 * writer on the way. The reference it must agree with is the generated encoder over
 * `recordRuns` (shared/src/record-runs.ts); test/batch-encoder.test.ts decodes both.
 *
 * Wire grammar (proto/sluice/v1/transformation.proto; fields at their default are left out,
 * as the generated encoder does):
 *
 *   TransformRequest => batch(2): RecordBatch
 *   RecordBatch      => sequence(1): varint, covers(3): OffsetRange*, runs(4): RecordRun,
 *                       traceparent(5): string
 *   RecordRun        => topic(1): string, partition(2): varint, base_offset(3): varint,
 *                       offset_deltas(4): packed varint, timestamps_ms(5): packed double,
 *                       values(6): bytes, value_lengths(7): packed zigzag varint,
 *                       keys(8): bytes, key_lengths(9): packed zigzag varint,
 *                       headers(10): RecordHeaders*
 *   RecordHeaders    => index(1): varint, headers(2): KafkaHeader*
 *   KafkaHeader      => key(1): string, value(2): bytes (absent for a null value)
 */
import { endianness } from 'node:os';
import { OffsetRange } from '#shared/gen/sluice/v1/types.js';
import type { FetchedRecords, RecordHeader } from './kafka/fetched-records.js';

const LEN = 2; // wire type: length-delimited
/** Below this many bytes a byte loop beats Buffer.copy, which allocates a view of its source. */
const SHORT_COPY = 32;
const VARINT = 0;
/** The most room a request gets past its end for Writer.ranges' stretches. */
const STRETCH_ROOM = 128 << 10;
/** A Float64Array's bytes are the platform's order; protobuf's doubles are little-endian. */
const LITTLE_ENDIAN = endianness() === 'LE';
/** Where a batch's timestamps are gathered (Writer.doubles); grows to the largest batch. */
let scratch = new Float64Array(1024);
const tag = (field: number, wireType: number) => (field << 3) | wireType;

/** Bytes of a non-negative integer as a varint (up to 2^53). */
function varintSize(n: number): number {
  let size = 1;
  while (n >= 128) {
    n = Math.floor(n / 128);
    size++;
  }
  return size;
}

const zigzag = (n: number) => (n >= 0 ? n * 2 : -n * 2 - 1);
/** A length-delimited field's bytes: its tag, its length and the content. */
const fieldSize = (tagValue: number, contentBytes: number) => varintSize(tagValue) + varintSize(contentBytes) + contentBytes;

class Writer {
  at = 0;
  constructor(readonly buf: Buffer) {}

  varint(n: number): void {
    const buf = this.buf;
    while (n >= 128) {
      buf[this.at++] = (n % 128) | 0x80;
      n = Math.floor(n / 128);
    }
    buf[this.at++] = n;
  }

  /** A length-delimited field's tag and length; the content follows. */
  open(field: number, contentBytes: number): void {
    this.varint(tag(field, LEN));
    this.varint(contentBytes);
  }

  copy(b: Uint8Array): void {
    this.buf.set(b, this.at);
    this.at += b.length;
  }

  /** `length` bytes of `src` from `start`; short ones byte by byte (a copy call costs a view). */
  range(src: Buffer, start: number, length: number): void {
    const buf = this.buf;
    if (length < SHORT_COPY) {
      for (let i = 0; i < length; i++) buf[this.at + i] = src[start + i];
    } else src.copy(buf, this.at, start, start + length);
    this.at += length;
  }

  /**
   * The ranges `data[i]` from `starts[i]`, `lengths[i]` bytes (-1 and 0: none), for i = send[k],
   * k < n, one after another. Ranges that lie one after another in one buffer (a batch's values,
   * apart by a few bytes of record header) are copied as one stretch, and each is then moved
   * down over the gaps within the message (copyWithin: no view). A copy call per range costs a
   * view of its source, as much as the copy itself for a 150-byte value. A stretch may run past
   * the field into bytes written later, so it only grows while the buffer has room for it.
   */
  ranges(data: readonly Buffer[], starts: Int32Array, lengths: Int32Array, send: ArrayLike<number>, n: number): void {
    const buf = this.buf;
    for (let k = 0; k < n; ) {
      const i = send[k];
      const length = lengths[i];
      if (length <= 0) {
        k++;
        continue;
      }
      const src = data[i];
      const first = starts[i];
      const room = buf.length - this.at;
      let end = first + length;
      let last = k;
      for (let j = k + 1; j < n; j++) {
        const r = send[j];
        const len = lengths[r];
        if (len <= 0) {
          last = j;
          continue;
        }
        const start = starts[r];
        if (data[r] !== src || start < end || start + len - first > room) break;
        end = start + len;
        last = j;
      }
      if (last === k) {
        this.range(src, first, length);
        k++;
        continue;
      }
      const base = this.at - first; // where byte b of src landed: base + b
      src.copy(buf, this.at, first, end);
      for (; k <= last; k++) {
        const r = send[k];
        const len = lengths[r];
        if (len <= 0) continue;
        const from = base + starts[r];
        if (from !== this.at) buf.copyWithin(this.at, from, from + len);
        this.at += len;
      }
    }
  }

  utf8(s: string, bytes: number): void {
    this.at += this.buf.write(s, this.at, bytes, 'utf8');
  }

  /**
   * The doubles `from[send[k]]`, k < n, little-endian: gathered into a scratch array and copied
   * as one range. Writing them one by one boxed each timestamp (above 2^31, no small integer)
   * in a heap number.
   */
  doubles(from: Float64Array, send: ArrayLike<number>, n: number): void {
    if (scratch.length < n) scratch = new Float64Array(Math.max(n, scratch.length * 2));
    for (let k = 0; k < n; k++) scratch[k] = from[send[k]];
    if (LITTLE_ENDIAN) this.buf.set(new Uint8Array(scratch.buffer, 0, 8 * n), this.at);
    else for (let k = 0; k < n; k++) this.buf.writeDoubleLE(scratch[k], this.at + 8 * k);
    this.at += 8 * n;
  }
}

function headerSize({ key, value }: RecordHeader): number {
  const keyBytes = Buffer.byteLength(key);
  return (keyBytes > 0 ? fieldSize(tag(1, LEN), keyBytes) : 0) + (value ? fieldSize(tag(2, LEN), value.length) : 0);
}

function headersEntrySize(index: number, list: readonly RecordHeader[]): number {
  let size = index > 0 ? 1 + varintSize(index) : 0;
  for (const h of list) size += fieldSize(tag(2, LEN), headerSize(h));
  return size;
}

export interface EncodedBatch {
  /** The TransformRequest's bytes: the first bytes of what `alloc` gave. */
  request: Buffer;
  /** What the batch costs the in-flight budget: its keys and values plus `overheadBytes` per record and per batch. */
  inFlightBytes: number;
  /** The bytes of its keys and values. */
  payloadBytes: number;
}

/**
 * A TransformRequest holding batch `sequence`: its covers and, when `send` names records, one
 * run of `topic`/`partition` made of those records (indexes into `records`, in offset order as
 * a fetch returns them), and the batch span's `traceparent` ('' for none).
 */
export function encodeBatch(
  sequence: number,
  covers: readonly OffsetRange[],
  topic: string,
  partition: number,
  records: FetchedRecords | null,
  send: ArrayLike<number>,
  overheadBytes: number,
  traceparent = '',
  /** Where the request is written: a buffer of at least the bytes asked for (request-buffers.ts). */
  alloc: (bytes: number) => Buffer = Buffer.allocUnsafe,
): EncodedBatch {
  const n = records === null ? 0 : send.length;
  const coverBytes = covers.map((c) => Buffer.from(OffsetRange.encode(c).finish()));

  // Pass 1: sizes. The deltas are worked out again in pass 2 rather than kept in an array.
  const baseOffset = n > 0 ? records!.offsets[send[0]] : 0;
  let deltaBytes = 0;
  let valueBytes = 0;
  let valueLengthBytes = 0;
  let keyBytes = 0;
  let keyLengthBytes = 0;
  let anyKey = false;
  const headers = n > 0 ? records!.headersOf(send)?.filter(([, list]) => list.length > 0) : null;
  if (n > 0) {
    const { offsets, valueLengths, keyLengths } = records!;
    for (let k = 0; k < n; k++) {
      const i = send[k];
      const delta = offsets[i] - baseOffset;
      if (!(delta >= 0 && delta <= 0xffffffff))
        throw new RangeError(`offset ${offsets[i]} of ${topic}/${partition} does not follow ${baseOffset}`);
      deltaBytes += varintSize(delta);
      const valueLength = valueLengths[i];
      if (valueLength >= 0) {
        valueBytes += valueLength;
        valueLengthBytes += varintSize(valueLength * 2);
      } else valueLengthBytes += 1; // -1 → zigzag 1
      const keyLength = keyLengths[i];
      if (keyLength >= 0) {
        anyKey = true;
        keyBytes += keyLength;
        keyLengthBytes += varintSize(keyLength * 2);
      } else keyLengthBytes += 1;
    }
  }
  let runBytes = 0;
  if (n > 0) {
    const topicBytes = Buffer.byteLength(topic);
    if (topicBytes > 0) runBytes += fieldSize(tag(1, LEN), topicBytes);
    if (partition !== 0) runBytes += 1 + varintSize(partition);
    if (baseOffset !== 0) runBytes += 1 + varintSize(baseOffset);
    runBytes += fieldSize(tag(4, LEN), deltaBytes) + fieldSize(tag(5, LEN), 8 * n);
    if (valueBytes > 0) runBytes += fieldSize(tag(6, LEN), valueBytes);
    runBytes += fieldSize(tag(7, LEN), valueLengthBytes);
    if (keyBytes > 0) runBytes += fieldSize(tag(8, LEN), keyBytes);
    if (anyKey) runBytes += fieldSize(tag(9, LEN), keyLengthBytes);
    for (const [index, list] of headers ?? []) runBytes += fieldSize(tag(10, LEN), headersEntrySize(index, list));
  }
  let batchBytes = sequence !== 0 ? 1 + varintSize(sequence) : 0;
  for (const c of coverBytes) batchBytes += fieldSize(tag(3, LEN), c.length);
  if (n > 0) batchBytes += fieldSize(tag(4, LEN), runBytes);
  const traceparentBytes = Buffer.byteLength(traceparent);
  if (traceparentBytes > 0) batchBytes += fieldSize(tag(5, LEN), traceparentBytes);

  // Pass 2: bytes.
  // Room past the message for the copy stretches of Writer.ranges: an eighth of the payload
  // covers the record headers between a batch's values (8-10 bytes of a 150-byte record).
  const size = fieldSize(tag(2, LEN), batchBytes);
  const w = new Writer(alloc(size + Math.min(STRETCH_ROOM, (valueBytes + keyBytes) >> 3)));
  w.open(2, batchBytes);
  if (sequence !== 0) {
    w.varint(tag(1, VARINT));
    w.varint(sequence);
  }
  for (const c of coverBytes) {
    w.open(3, c.length);
    w.copy(c);
  }
  if (n > 0) {
    w.open(4, runBytes);
    const topicBytes = Buffer.byteLength(topic);
    if (topicBytes > 0) {
      w.open(1, topicBytes);
      w.utf8(topic, topicBytes);
    }
    if (partition !== 0) {
      w.varint(tag(2, VARINT));
      w.varint(partition);
    }
    if (baseOffset !== 0) {
      w.varint(tag(3, VARINT));
      w.varint(baseOffset);
    }
    const { offsets, timestamps, data, valueStarts, valueLengths, keyStarts, keyLengths } = records!;
    w.open(4, deltaBytes);
    for (let k = 0; k < n; k++) w.varint(offsets[send[k]] - baseOffset);
    w.open(5, 8 * n);
    w.doubles(timestamps, send, n);
    if (valueBytes > 0) {
      w.open(6, valueBytes);
      w.ranges(data, valueStarts, valueLengths, send, n);
    }
    w.open(7, valueLengthBytes);
    for (let k = 0; k < n; k++) w.varint(zigzag(valueLengths[send[k]]));
    if (keyBytes > 0) {
      w.open(8, keyBytes);
      w.ranges(data, keyStarts, keyLengths, send, n);
    }
    if (anyKey) {
      w.open(9, keyLengthBytes);
      for (let k = 0; k < n; k++) w.varint(zigzag(keyLengths[send[k]]));
    }
    for (const [index, list] of headers ?? []) {
      w.open(10, headersEntrySize(index, list));
      if (index > 0) {
        w.varint(tag(1, VARINT));
        w.varint(index);
      }
      for (const h of list) {
        w.open(2, headerSize(h));
        const { key, value } = h;
        const keyLength = Buffer.byteLength(key);
        if (keyLength > 0) {
          w.open(1, keyLength);
          w.utf8(key, keyLength);
        }
        if (value) {
          w.open(2, value.length);
          w.copy(value);
        }
      }
    }
  }
  if (traceparentBytes > 0) {
    w.open(5, traceparentBytes);
    w.utf8(traceparent, traceparentBytes);
  }
  if (w.at !== size) throw new Error(`batch ${sequence}: sized ${size} bytes, wrote ${w.at}`);
  return {
    request: w.buf.subarray(0, size),
    inFlightBytes: overheadBytes * (n + 1) + valueBytes + keyBytes,
    payloadBytes: valueBytes + keyBytes,
  };
}
