/**
 * The Transform stream's request deserializer: the generated TransformRequest.decode, except
 * that a record run's `values` and `keys` are views of the received message instead of copies.
 *
 * Why: a batch's values are most of its bytes (about 1 MiB for a full fetch of wide records),
 * and the generated decoder copies them (`Buffer.from(reader.bytes())`) into freshly allocated
 * memory, whose page faults cost more than the copy. The message is a buffer of its own: a
 * frame from the receive pool (shared/src/grpc/framing.ts), which is used again once the batch
 * is transformed (releaseBatch), so whatever outlives the batch copies its bytes out
 * (RunCursor's key and value).
 *
 * Measured on the pipeline bench's wide shape (CPU profile of transformation's main thread):
 * the copy was 419 ms of 10.3 s busy, about 4 %.
 *
 * A run's packed numeric columns (offset deltas, timestamps, value and key lengths) are typed
 * arrays instead of arrays: the collector copies an array's elements at every scavenge it
 * survives, and a batch's arrays (about 30 bytes a record) live until the batch is
 * transformed. Readers take runs as RunView (shared/src/record-runs.ts), which both forms are.
 * Measured on the pipeline bench's narrow shape, together with the per-record garbage of the
 * scanner and the coverage check (one run each): 72 → 30 scavenges, 383 → 190 ms of them.
 *
 * Every other field is decoded as the generated code does, by the same reader calls, so the
 * two agree on every input, malformed ones included (test/request-decoder.test.ts, which
 * compares the typed arrays' elements).
 */
import { BinaryReader } from '@bufbuild/protobuf/wire';
import {
  ErrorsProduced,
  type RecordBatch,
  RecordHeaders,
  type RecordRun,
  TransformOpen,
  type TransformRequest,
} from '#shared/gen/sluice/v1/transformation.js';
import { OffsetRange } from '#shared/gen/sluice/v1/types.js';
import { releaseReceived } from '#shared/grpc/framing.js';
import type { RunView } from '#shared/record-runs.js';

const EMPTY = Buffer.alloc(0);

/** Length-delimited bytes as a view of the reader's buffer. */
function bytesView(reader: BinaryReader): Buffer {
  const bytes = reader.bytes();
  return bytes.length === 0 ? EMPTY : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
}

/** An int64 as a number; beyond 2^53 it fails, as the generated code's longToNumber does. */
function int64(reader: BinaryReader): number {
  const n = Number(reader.int64().toString());
  if (!Number.isSafeInteger(n))
    throw new Error(`Value is ${n > 0 ? 'larger' : 'smaller'} than Number.${n > 0 ? 'MAX' : 'MIN'}_SAFE_INTEGER`);
  return n;
}

/** A column of a received run: a typed array, or an array when the field came in pieces. */
type Column = Float64Array | Uint32Array | Int32Array | number[];

/**
 * A packed (length-delimited) or single repeated scalar of the message `bytes`: every value
 * read by `read`, appended to `into`; returns the column holding them. `width` is a value's
 * fixed size in bytes (0 for varints). A packed field that starts the column is read into a
 * typed array of its exact size (`typed`); anything else (a field repeated unpacked, or
 * packed in several pieces, which our encoder never sends) goes into an array, as the
 * generated code reads it.
 */
function repeated(
  reader: BinaryReader,
  bytes: Uint8Array,
  tag: number,
  into: Column,
  read: (r: BinaryReader) => number,
  width: number,
  typed: (count: number) => Float64Array | Uint32Array | Int32Array,
): Column {
  if ((tag & 7) !== 2) {
    const values = Array.from(into);
    values.push(read(reader));
    return values;
  }
  const end = reader.uint32() + reader.pos;
  if (into.length > 0 || end > reader.len) {
    const values = Array.from(into);
    while (reader.pos < end) values.push(read(reader));
    return values;
  }
  const count = width > 0 ? Math.ceil((end - reader.pos) / width) : varintCount(bytes, reader.pos, end);
  const values = typed(count);
  let n = 0;
  if (width === 8 && (end - reader.pos) % 8 === 0) {
    // Doubles read in this loop, not through `read`: a double returned from a call is a heap
    // number each, one per record (timestamps).
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    for (let at = reader.pos; at < end; at += 8) values[n++] = view.getFloat64(at, true);
    reader.pos = end;
    return values;
  }
  while (reader.pos < end) values[n++] = read(reader);
  return n < count ? values.subarray(0, n) : values; // fewer: a last varint ran past the field (the reader read on)
}

const float64s = (count: number) => new Float64Array(count);
const uint32s = (count: number) => new Uint32Array(count);
const int32s = (count: number) => new Int32Array(count);

/** Varints in `buf[start, end)`: the bytes that end one (high bit clear), plus one cut short at the end. */
function varintCount(buf: Uint8Array, start: number, end: number): number {
  let count = 0;
  for (let i = start; i < end; i++) if (buf[i] < 0x80) count++;
  return end > start && buf[end - 1] >= 0x80 ? count + 1 : count;
}

const uint32 = (r: BinaryReader) => r.uint32();
const sint32 = (r: BinaryReader) => r.sint32();
const double = (r: BinaryReader) => r.double();

/** A run whose columns are still being read (a field may come more than once). */
type RunInProgress = Omit<RecordRun, 'offsetDeltas' | 'timestampsMs' | 'valueLengths' | 'keyLengths'> & {
  offsetDeltas: Column;
  timestampsMs: Column;
  valueLengths: Column;
  keyLengths: Column;
};

function decodeRun(reader: BinaryReader, bytes: Uint8Array, length: number): RunView {
  const end = reader.pos + length;
  const run: RunInProgress = {
    topic: '',
    partition: 0,
    baseOffset: 0,
    offsetDeltas: [],
    timestampsMs: [],
    values: EMPTY,
    valueLengths: [],
    keys: EMPTY,
    keyLengths: [],
    headers: [],
  };
  while (reader.pos < end) {
    const tag = reader.uint32();
    switch (tag) {
      case 10:
        run.topic = reader.string();
        continue;
      case 16:
        run.partition = reader.int32();
        continue;
      case 24:
        run.baseOffset = int64(reader);
        continue;
      case 32:
      case 34:
        run.offsetDeltas = repeated(reader, bytes, tag, run.offsetDeltas, uint32, 0, uint32s);
        continue;
      case 41:
      case 42:
        run.timestampsMs = repeated(reader, bytes, tag, run.timestampsMs, double, 8, float64s);
        continue;
      case 50:
        run.values = bytesView(reader);
        continue;
      case 56:
      case 58:
        run.valueLengths = repeated(reader, bytes, tag, run.valueLengths, sint32, 0, int32s);
        continue;
      case 66:
        run.keys = bytesView(reader);
        continue;
      case 72:
      case 74:
        run.keyLengths = repeated(reader, bytes, tag, run.keyLengths, sint32, 0, int32s);
        continue;
      case 82:
        run.headers.push(RecordHeaders.decode(reader, reader.uint32()));
        continue;
    }
    if ((tag & 7) === 4 || tag === 0) break;
    reader.skip(tag & 7);
  }
  return run;
}

function decodeBatch(reader: BinaryReader, bytes: Uint8Array, length: number): RecordBatch {
  const end = reader.pos + length;
  const batch: RecordBatch = { sequence: 0, covers: [], runs: [], traceparent: '' };
  while (reader.pos < end) {
    const tag = reader.uint32();
    switch (tag) {
      case 8:
        batch.sequence = int64(reader);
        continue;
      case 26:
        batch.covers.push(OffsetRange.decode(reader, reader.uint32()));
        continue;
      case 34:
        // The generated type says arrays; a received run's readers take it as a RunView.
        batch.runs.push(decodeRun(reader, bytes, reader.uint32()) as unknown as RecordRun);
        continue;
      case 42:
        batch.traceparent = reader.string();
        continue;
    }
    if ((tag & 7) === 4 || tag === 0) break;
    reader.skip(tag & 7);
  }
  return batch;
}

/** TransformRequest.decode, with record runs' values and keys viewed (see above). */
export function decodeTransformRequest(bytes: Uint8Array): TransformRequest {
  const reader = new BinaryReader(bytes);
  const request: TransformRequest = { message: undefined };
  while (reader.pos < reader.len) {
    const tag = reader.uint32();
    switch (tag) {
      case 10:
        request.message = { $case: 'open', value: TransformOpen.decode(reader, reader.uint32()) };
        continue;
      case 18:
        request.message = { $case: 'batch', value: decodeBatch(reader, bytes, reader.uint32()) };
        continue;
      case 26:
        request.message = { $case: 'errorsProduced', value: ErrorsProduced.decode(reader, reader.uint32()) };
        continue;
    }
    if ((tag & 7) === 4 || tag === 0) break;
    reader.skip(tag & 7);
  }
  return request;
}

/**
 * Gives the message `batch` was decoded from back to the receive pool (shared/src/grpc/framing.ts):
 * its runs' values and keys are views of that message, so nothing may read them afterwards. The
 * records kept beyond a batch are copies (RunCursor's key and value), and the token scanners
 * copy what they take.
 */
export function releaseBatch(batch: RecordBatch): void {
  for (const run of batch.runs) if (releaseReceived(run.values) || releaseReceived(run.keys)) return;
}
