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
 */
import { createRequire } from 'node:module';

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
