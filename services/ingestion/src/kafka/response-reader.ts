/**
 * Reads a Kafka response body front to back, for the requests ingestion sends itself (Fetch,
 * ApiVersions, Metadata): the fixed-width fields of every version and the compact encodings
 * (unsigned varints, compact lengths, tagged fields) of the flexible ones. Running past the
 * end is a protocol error naming the response.
 */
import { int64 } from './record-batches.js';

export class ResponseReader {
  private at = 0;
  constructor(
    private readonly buf: Buffer,
    /** The response, for errors: "Fetch response". */
    private readonly what: string,
  ) {}

  /** Moves past n bytes; returns where they start. */
  skip(n: number): number {
    const at = this.at;
    if (n > this.buf.length - at) throw new RangeError(`${this.what} ends at byte ${this.buf.length}, before byte ${at + n}`);
    this.at += n;
    return at;
  }
  int16(): number {
    return this.buf.readInt16BE(this.skip(2));
  }
  int32(): number {
    return this.buf.readInt32BE(this.skip(4));
  }
  /** An int64 that stays below 2^53 (offsets, timestamps). */
  int64(): number {
    return int64(this.buf, this.skip(8));
  }
  /** An int64 compared but never computed with (producer ids), as a decimal string. */
  int64String(): string {
    return this.buf.readBigInt64BE(this.skip(8)).toString();
  }
  /** n bytes, as a view of the response. */
  bytes(n: number): Buffer {
    const at = this.skip(n);
    return this.buf.subarray(at, at + n);
  }
  /** A string with an int16 length ('' for null). */
  string(): string {
    const n = this.int16();
    if (n < 0) return '';
    const at = this.skip(n);
    return this.buf.toString('utf8', at, at + n);
  }
  uvarint(): number {
    let value = 0;
    for (let shift = 0; ; shift += 7) {
      const b = this.buf[this.skip(1)];
      value += (b & 0x7f) * 2 ** shift;
      if (b < 0x80) return value;
    }
  }
  /** A compact array's or string's length (null encodes as -1). */
  compactLength(): number {
    return this.uvarint() - 1;
  }
  /** Moves past a compact string or bytes field. */
  compactBytes(): void {
    const n = this.compactLength();
    if (n > 0) this.skip(n);
  }
  taggedFields(): void {
    for (let n = this.uvarint(); n > 0; n--) {
      this.uvarint(); // tag
      this.skip(this.uvarint());
    }
  }
}
