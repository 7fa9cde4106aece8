/**
 * A connection's received bytes, read by the socket straight into one buffer (net's `onread`)
 * that serves response after response: no Buffer per socket read, no concatenation of chunks
 * into a frame, and no fresh memory per response once it has reached the largest response's
 * size. Fresh memory was the costly part: a 3 MiB Fetch response concatenated from 64 KiB
 * reads cost page faults on the copy, and the allocations' external memory set off V8's
 * mark-compacts (about ten a second in a fetching job).
 *
 * The bytes taken out are views of the buffer, valid until the buffer is reused: room() is told
 * when nothing taken is in use anymore (BrokerConnection: no request waits for its answer), and
 * only then starts the next read at the front again. A buffer that must grow is replaced, never
 * moved within, so what was taken from it stays intact.
 */

/** The least room a socket read is given (Node's own read size). */
const MIN_READ_BYTES = 64 << 10;

export class ReceiveBuffer {
  private buf = Buffer.allocUnsafe(MIN_READ_BYTES);
  /** The first byte not yet taken. */
  private start = 0;
  /** One past the last byte received. */
  private end = 0;

  /** Bytes received and not yet taken. */
  get buffered(): number {
    return this.end - this.start;
  }

  /** The socket wrote n bytes into the last room(). */
  received(n: number): void {
    this.end += n;
  }

  /** The big-endian int32 at the first byte not yet taken (buffered must be at least 4). */
  peekInt32(): number {
    return this.buf.readInt32BE(this.start);
  }

  /** The next n bytes (a view, not a copy): valid until a room(true, …) once they are no longer in use. */
  take(n: number): Buffer {
    const at = this.start;
    this.start += n;
    return this.buf.subarray(at, this.start);
  }

  /**
   * Where the socket reads next: at least MIN_READ_BYTES, and at least `want` (the rest of the
   * frame being received) so a large frame arrives in few reads. `reusable`: nothing taken is
   * in use anymore, so once everything received was taken, reading starts at the front again.
   */
  room(reusable: boolean, want: number): Buffer {
    if (reusable && this.start === this.end) this.start = this.end = 0;
    const need = Math.max(MIN_READ_BYTES, want);
    if (this.buf.length - this.end < need) {
      const kept = this.end - this.start;
      // A quarter more than needed: the next response is rarely the same size to the byte.
      const next = Buffer.allocUnsafe(Math.ceil((kept + need) * 1.25));
      this.buf.copy(next, 0, this.start, this.end);
      this.buf = next;
      this.start = 0;
      this.end = kept;
    }
    return this.buf.subarray(this.end);
  }
}
