/**
 * Large buffers used again instead of allocated anew: the Transform stream's requests as
 * ingestion sends them (services/ingestion/src/transform-stream.ts) and its frames as
 * transformation receives them (grpc/framing.ts). A fresh megabyte per batch cost the page
 * faults of first touching it and, as memory outside V8's heap, set off its mark-compacts
 * (DESIGN.md, "External memory sets off the mark-compacts").
 *
 * A buffer below `minBytes` comes from Node's shared pool and is never kept. The owner gives a
 * buffer back only once nothing reads it; one never given back is left to the collector.
 */
export class BufferPool {
  private readonly free: Buffer[] = [];
  private freeBytes = 0;

  constructor(
    /** Buffers smaller than this are neither made by the pool nor kept. */
    readonly minBytes: number,
    /** Bytes of free buffers kept at most. */
    private readonly maxFreeBytes: number,
  ) {}

  /**
   * A buffer of at least `bytes` (contents garbage). From `minBytes` on it is one of the pool's,
   * with an ArrayBuffer of its own.
   */
  take(bytes: number): Buffer {
    if (bytes < this.minBytes) return Buffer.allocUnsafe(bytes);
    // The one given back last that is large enough (the most likely to be in the CPU's cache).
    for (let i = this.free.length - 1; i >= 0; i--) {
      const buf = this.free[i];
      if (buf.length >= bytes) {
        this.free.splice(i, 1);
        this.freeBytes -= buf.length;
        return buf;
      }
    }
    // None is: the oldest goes, so the pool's buffers grow with what is asked of them.
    const dropped = this.free.shift();
    if (dropped) this.freeBytes -= dropped.length;
    // A quarter more: the next batch is rarely the same size to the byte.
    return Buffer.allocUnsafeSlow(Math.ceil(bytes * 1.25));
  }

  /** `buf`, from take(), is no longer read by anyone. */
  give(buf: Buffer): void {
    if (buf.length < this.minBytes || this.freeBytes + buf.length > this.maxFreeBytes) return;
    this.free.push(buf);
    this.freeBytes += buf.length;
  }
}
