/**
 * Messages framed in place: a client that writes large messages from buffers it reuses
 * reserves the gRPC frame header (a flag byte and a 4-byte length) in front of each message,
 * and grpc-js sends that buffer as it is instead of framing the message into a copy.
 *
 * Why: grpc-js frames every outgoing message into a new buffer (its compression filter's
 * identity handler: allocUnsafe(length + 5), then a copy). On ingestion's Transform stream that
 * is a fresh megabyte of memory outside V8's heap per batch, and V8 counts external memory
 * allocated since its last mark-compact against the old generation's limit: those copies, not
 * the JavaScript heap, set off ingestion's mark-compacts (25 of them over the pipeline bench's
 * wide shape, each marking a 20 MB heap, about 40 % of ingestion's main thread). DESIGN.md,
 * "Where the CPU went after the fetch path", has the measurements.
 *
 * How: framedInPlace(buf, bytes) writes the header at buf[0, 5) for a message already at
 * buf[5, 5 + bytes) and returns the frame; the patched identity handler passes a frame made
 * so through unchanged (and frames everything else as before). The frame is then read until
 * the HTTP/2 stream has written it to the socket, so its buffer may be reused only after that.
 * A write's callback says so only on a channel without grpc-js's retry buffer
 * (FRAMED_IN_PLACE_CHANNEL_OPTIONS): with it, a message that fits is acknowledged at once and
 * kept for a transparent retry.
 *
 * The handler is grpc-js's internal class (build/src/compression-filter.js, 1.14). If a grpc-js
 * version moves it, framedInPlace throws rather than let grpc-js frame a frame a second time.
 *
 * The receiving side has the same cost: grpc-js's stream decoder keeps a message's HTTP/2 data
 * chunks until the message is complete, then concatenates them into a fresh buffer, so the
 * chunks survive the collector's scavenges and both count against the old generation.
 * receiveIntoPool() replaces the decoder's write(): each chunk is copied at once into the frame
 * being received, and frames of POOLED_FRAME_BYTES or more come from a pool of buffers that
 * the process gives back with releaseReceived() when nothing reads the message anymore (the
 * transformation service, once a batch is transformed). A message never given back is left to
 * the collector, as before.
 */
import { createRequire } from 'node:module';
import { BufferPool } from '../buffer-pool.js';

/** Bytes of the gRPC frame header in front of a message: compressed flag, big-endian length. */
export const FRAME_HEADER_BYTES = 5;

/** Channel options under which a write's callback means grpc-js no longer reads the message. */
export const FRAMED_IN_PLACE_CHANNEL_OPTIONS = { 'grpc.per_rpc_retry_buffer_size': 0 } as const;

/** Frames made by framedInPlace() and not yet handed to grpc-js. */
const frames = new WeakSet<Buffer>();

type WriteMessage = (this: unknown, message: Buffer, compress: boolean) => Promise<Buffer>;

/** Whether grpc-js's identity handler passes frames through (false when its internals moved). */
export const framingPatched: boolean = (() => {
  try {
    const require = createRequire(import.meta.url);
    const { CompressionFilter } = require('@grpc/grpc-js/build/src/compression-filter.js') as {
      CompressionFilter: new (options: object, shared: object) => { sendCompression: object };
    };
    const identity = Object.getPrototypeOf(new CompressionFilter({}, {}).sendCompression) as { writeMessage?: WriteMessage };
    const frameIntoCopy = identity.writeMessage;
    if (typeof frameIntoCopy !== 'function') return false;
    identity.writeMessage = function (this: unknown, message: Buffer, compress: boolean): Promise<Buffer> {
      if (frames.delete(message)) return Promise.resolve(message);
      return frameIntoCopy.call(this, message, compress);
    };
    return true;
  } catch {
    return false;
  }
})();

/**
 * The frame of the message at `buf[5, 5 + messageBytes)`: its header is written into
 * `buf[0, 5)`. Write the frame, once, to a stream of a client made with
 * FRAMED_IN_PLACE_CHANNEL_OPTIONS; `buf` may be reused from the write's callback.
 */
export function framedInPlace(buf: Buffer, messageBytes: number): Buffer {
  if (!framingPatched) throw new Error('this grpc-js has no identity handler to patch; messages cannot be framed in place');
  if (buf.length < FRAME_HEADER_BYTES + messageBytes)
    throw new RangeError(`a frame of ${messageBytes} message bytes does not fit in a buffer of ${buf.length}`);
  buf[0] = 0; // not compressed
  buf.writeUInt32BE(messageBytes, 1);
  const frame = buf.subarray(0, FRAME_HEADER_BYTES + messageBytes);
  frames.add(frame);
  return frame;
}

/** Received frames this large or larger are assembled into pooled buffers. */
export const POOLED_FRAME_BYTES = 64 << 10;
/** Bytes of free received-frame buffers kept: about the Transform stream's receive window. */
const MAX_FREE_RECEIVE_BYTES = 16 << 20;

const receivePool = new BufferPool(POOLED_FRAME_BYTES, MAX_FREE_RECEIVE_BYTES);
/**
 * The pooled frames handed out and not yet given back, by ArrayBuffer. Only these are taken
 * back, so a second release of one message cannot hand one buffer to two messages.
 */
const outstanding = new WeakMap<ArrayBufferLike, Buffer>();

/**
 * Gives back the buffer of a received message: `view` is any view of it (a bytes field the
 * deserializer did not copy). Nothing may read the message afterwards. Returns whether it was
 * a pooled message still outstanding; anything else is left alone.
 */
export function releaseReceived(view: Uint8Array): boolean {
  const buf = outstanding.get(view.buffer);
  if (buf === undefined) return false;
  outstanding.delete(view.buffer);
  receivePool.give(buf);
  return true;
}

/** grpc-js's StreamDecoder as our write() sees it: its length limit, and our own fields. */
interface FrameDecoder {
  maxReadMessageLength: number;
  header?: Buffer;
  headerHave?: number;
  frame?: Buffer | null;
  frameAt?: number;
  frameEnd?: number;
}

/**
 * The frames completed by `data`, an HTTP/2 data chunk of the call's stream: a flag byte, a
 * big-endian length, the message. A frame is copied as its bytes arrive, so no chunk is kept.
 */
function decodeFrames(this: FrameDecoder, data: Buffer): Buffer[] {
  const frames: Buffer[] = [];
  let at = 0;
  while (at < data.length) {
    if (!this.frame) {
      this.header ??= Buffer.alloc(FRAME_HEADER_BYTES);
      const have = this.headerHave ?? 0;
      const n = Math.min(FRAME_HEADER_BYTES - have, data.length - at);
      data.copy(this.header, have, at, at + n);
      at += n;
      this.headerHave = have + n;
      if (this.headerHave < FRAME_HEADER_BYTES) break;
      this.headerHave = 0;
      const size = this.header.readUInt32BE(1);
      if (this.maxReadMessageLength !== -1 && size > this.maxReadMessageLength) {
        // grpc-js's own words: the call answers RESOURCE_EXHAUSTED with them.
        throw new Error(`Received message larger than max (${size} vs ${this.maxReadMessageLength})`);
      }
      const bytes = FRAME_HEADER_BYTES + size;
      const frame = receivePool.take(bytes);
      if (bytes >= receivePool.minBytes) outstanding.set(frame.buffer, frame);
      this.header.copy(frame, 0);
      if (size === 0) {
        frames.push(frame.subarray(0, bytes));
        continue;
      }
      this.frame = frame;
      this.frameAt = FRAME_HEADER_BYTES;
      this.frameEnd = bytes;
    } else {
      const n = Math.min(this.frameEnd! - this.frameAt!, data.length - at);
      data.copy(this.frame, this.frameAt, at, at + n);
      at += n;
      this.frameAt! += n;
      if (this.frameAt === this.frameEnd) {
        frames.push(this.frame.subarray(0, this.frameEnd));
        this.frame = null;
      }
    }
  }
  return frames;
}

let receivePatched = false;

/**
 * Makes this process's gRPC calls receive their messages through decodeFrames (see the top):
 * once, before the server starts. Throws when grpc-js's stream decoder has moved.
 */
export function receiveIntoPool(): void {
  if (receivePatched) return;
  const require = createRequire(import.meta.url);
  const { StreamDecoder } = require('@grpc/grpc-js/build/src/stream-decoder.js') as {
    StreamDecoder?: { prototype: { write?: unknown } };
  };
  if (typeof StreamDecoder?.prototype?.write !== 'function')
    throw new Error('this grpc-js has no stream decoder to patch; received messages cannot be pooled');
  StreamDecoder.prototype.write = decodeFrames;
  receivePatched = true;
}
