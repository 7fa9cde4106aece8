/**
 * Buffers for the encoded TransformRequests of one stream, used again once they are written. A
 * fetch round's batch is about a megabyte; a fresh buffer for each cost the page faults of first
 * touching it (most of the batch encoder's copying time) and, as external memory, brought V8's
 * mark-compacts on sooner.
 *
 * Each request is framed in place (shared/src/grpc/framing.ts): grpc-js sends the buffer itself,
 * and reads it until the HTTP/2 stream has handed it to the socket. A buffer is given back only
 * from the write's callback, without an error, which on our clients (no retry buffer) comes
 * after that. A write that fails or never completes (a cancelled stream) keeps its buffer out of
 * the pool.
 */

/** Smaller requests (covers only, a few records) come from Node's shared pool and are not kept. */
const MIN_KEPT_BYTES = 64 << 10;
/**
 * Bytes of free buffers kept. Buffers come back once written, and a stream's writes wait for
 * transformation's HTTP/2 window, so up to the in-flight budget (INGESTION_IN_FLIGHT_BYTES,
 * 32 MiB by default) of them may be out at once; keeping only four, as before the requests were
 * framed in place, made every other batch a fresh megabyte.
 */
const MAX_FREE_BYTES = 32 << 20;

export class RequestBuffers {
  private readonly free: Buffer[] = [];
  private freeBytes = 0;

  /** A buffer of at least `bytes`; its contents are garbage. */
  take(bytes: number): Buffer {
    if (bytes < MIN_KEPT_BYTES) return Buffer.allocUnsafe(bytes);
    // The one given back last that is large enough (the most likely to be in the CPU's cache).
    for (let i = this.free.length - 1; i >= 0; i--) {
      const buf = this.free[i];
      if (buf.length >= bytes) {
        this.free.splice(i, 1);
        this.freeBytes -= buf.length;
        return buf;
      }
    }
    // None is: the oldest goes, so the pool's buffers grow with the batches.
    const dropped = this.free.shift();
    if (dropped) this.freeBytes -= dropped.length;
    // A quarter more: the next round's batch is rarely the same size to the byte.
    return Buffer.allocUnsafeSlow(Math.ceil(bytes * 1.25));
  }

  /** `buf`, from take(), is no longer read by anyone. */
  give(buf: Buffer): void {
    if (buf.length < MIN_KEPT_BYTES || this.freeBytes + buf.length > MAX_FREE_BYTES) return;
    this.free.push(buf);
    this.freeBytes += buf.length;
  }

  /** Buffers and bytes kept for reuse. */
  get kept(): { buffers: number; bytes: number } {
    return { buffers: this.free.length, bytes: this.freeBytes };
  }
}
