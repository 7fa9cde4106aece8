/**
 * Buffers for the encoded TransformRequests of one stream, used again once grpc-js has written
 * them. A fetch round's batch is about a megabyte; a fresh buffer for each cost the page faults
 * of first touching it (most of the batch encoder's copying time) and, as external memory,
 * brought V8's mark-compacts on sooner.
 *
 * A buffer is given back only from the write's callback, without an error: grpc-js calls it
 * once the message is framed into its own copy and written (compression-filter.ts frames it
 * into a new buffer before the call's write goes on), so nothing reads ours after that. A
 * write that fails or never completes (a cancelled stream) keeps its buffer out of the pool.
 */

/** Smaller requests (covers only, a few records) come from Node's shared pool and are not kept. */
const MIN_KEPT_BYTES = 64 << 10;
/** Free buffers kept: a stream rarely has more than a round's partitions waiting to be written. */
const MAX_FREE = 4;

export class RequestBuffers {
  private readonly free: Buffer[] = [];

  /** A buffer of at least `bytes`; its contents are garbage. */
  take(bytes: number): Buffer {
    if (bytes < MIN_KEPT_BYTES) return Buffer.allocUnsafe(bytes);
    const buf = this.free.pop();
    if (buf && buf.length >= bytes) return buf;
    // A quarter more: the next round's batch is rarely the same size to the byte.
    return Buffer.allocUnsafeSlow(Math.ceil(bytes * 1.25));
  }

  /** `buf`, from take(), is no longer read by anyone. */
  give(buf: Buffer): void {
    if (buf.length >= MIN_KEPT_BYTES && this.free.length < MAX_FREE) this.free.push(buf);
  }
}
