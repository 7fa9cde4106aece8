/**
 * The wire bytes of a TransformRequest carrying one batch, written straight from a fetch's
 * records: one pass sizes the message, one writes it, and each key and value is copied once,
 * from the fetch's buffers into the message. There is no RecordRun object and no protobuf
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
import { OffsetRange } from '#shared/gen/sluice/v1/types.js';
import type { FetchedRecord, RecordHeader } from './kafka/fetched-record.js';

const LEN = 2; // wire type: length-delimited
/** Below this many bytes a byte loop beats Buffer.copy, which allocates a view of its source. */
const SHORT_COPY = 32;
const VARINT = 0;
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

  utf8(s: string, bytes: number): void {
    this.at += this.buf.write(s, this.at, bytes, 'utf8');
  }

  double(x: number): void {
    this.at = this.buf.writeDoubleLE(x, this.at);
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
  /** The TransformRequest's bytes. */
  request: Buffer;
  /** What the batch costs the in-flight budget: its keys and values plus `overheadBytes` per record and per batch. */
  inFlightBytes: number;
  /** The bytes of its keys and values. */
  payloadBytes: number;
}

/**
 * A TransformRequest holding batch `sequence`: its covers and, when there are records, one
 * run of `topic`/`partition` made of them (in offset order, as a fetch returns them), and the
 * batch span's `traceparent` ('' for none).
 */
export function encodeBatch(
  sequence: number,
  covers: readonly OffsetRange[],
  topic: string,
  partition: number,
  messages: readonly FetchedRecord[],
  overheadBytes: number,
  traceparent = '',
): EncodedBatch {
  const n = messages.length;
  const coverBytes = covers.map((c) => Buffer.from(OffsetRange.encode(c).finish()));

  // Pass 1: sizes.
  const baseOffset = n > 0 ? messages[0].offset : 0;
  const deltas: number[] = new Array(n);
  let deltaBytes = 0;
  let valueBytes = 0;
  let valueLengthBytes = 0;
  let keyBytes = 0;
  let keyLengthBytes = 0;
  let anyKey = false;
  let headers: [number, readonly RecordHeader[]][] | null = null;
  for (let i = 0; i < n; i++) {
    const m = messages[i];
    const delta = m.offset - baseOffset;
    if (!(delta >= 0 && delta <= 0xffffffff))
      throw new RangeError(`offset ${m.offset} of ${topic}/${partition} does not follow ${baseOffset}`);
    deltas[i] = delta;
    deltaBytes += varintSize(delta);
    const valueLength = m.valueLength;
    if (valueLength >= 0) {
      valueBytes += valueLength;
      valueLengthBytes += varintSize(valueLength * 2);
    } else valueLengthBytes += 1; // -1 → zigzag 1
    const keyLength = m.keyLength;
    if (keyLength >= 0) {
      anyKey = true;
      keyBytes += keyLength;
      keyLengthBytes += varintSize(keyLength * 2);
    } else keyLengthBytes += 1;
    if (m.headers !== null && m.headers.length > 0) (headers ??= []).push([i, m.headers]);
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
  const w = new Writer(Buffer.allocUnsafe(fieldSize(tag(2, LEN), batchBytes)));
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
    w.open(4, deltaBytes);
    for (let i = 0; i < n; i++) w.varint(deltas[i]);
    w.open(5, 8 * n);
    for (let i = 0; i < n; i++) w.double(messages[i].timestamp);
    if (valueBytes > 0) {
      w.open(6, valueBytes);
      for (let i = 0; i < n; i++) {
        const m = messages[i];
        if (m.valueLength > 0) w.range(m.data, m.valueStart, m.valueLength);
      }
    }
    w.open(7, valueLengthBytes);
    for (let i = 0; i < n; i++) w.varint(zigzag(messages[i].valueLength));
    if (keyBytes > 0) {
      w.open(8, keyBytes);
      for (let i = 0; i < n; i++) {
        const m = messages[i];
        if (m.keyLength > 0) w.range(m.data, m.keyStart, m.keyLength);
      }
    }
    if (anyKey) {
      w.open(9, keyLengthBytes);
      for (let i = 0; i < n; i++) w.varint(zigzag(messages[i].keyLength));
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
  if (w.at !== w.buf.length) throw new Error(`batch ${sequence}: sized ${w.buf.length} bytes, wrote ${w.at}`);
  return { request: w.buf, inFlightBytes: overheadBytes * (n + 1) + valueBytes + keyBytes, payloadBytes: valueBytes + keyBytes };
}
