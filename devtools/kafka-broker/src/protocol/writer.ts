/**
 * Response builder. Small fields go into a growing scratch buffer; large byte ranges (stored
 * record batches) are kept by reference as separate chunks, so a fetch response never copies or
 * re-encodes the log. The connection writes the chunk list with one corked socket write.
 */
const RAW_THRESHOLD = 512;

export class Writer {
  private readonly chunks: Buffer[] = [];
  private scratch: Buffer;
  private start = 0;
  private pos = 0;
  private total = 0;

  constructor(initial = 256) {
    this.scratch = Buffer.allocUnsafe(initial);
  }

  get length(): number {
    return this.total + (this.pos - this.start);
  }

  private room(n: number): void {
    if (this.pos + n <= this.scratch.length) return;
    this.seal();
    this.scratch = Buffer.allocUnsafe(Math.max(n, this.scratch.length * 2, 4096));
    this.start = 0;
    this.pos = 0;
  }

  /** Moves the written part of scratch into the chunk list. */
  private seal(): void {
    if (this.pos > this.start) {
      this.chunks.push(this.scratch.subarray(this.start, this.pos));
      this.total += this.pos - this.start;
      this.start = this.pos;
    }
  }

  int8(v: number): this {
    this.room(1);
    this.pos = this.scratch.writeInt8(v, this.pos);
    return this;
  }
  bool(v: boolean): this {
    return this.int8(v ? 1 : 0);
  }
  int16(v: number): this {
    this.room(2);
    this.pos = this.scratch.writeInt16BE(v, this.pos);
    return this;
  }
  int32(v: number): this {
    this.room(4);
    this.pos = this.scratch.writeInt32BE(v, this.pos);
    return this;
  }
  int64(v: number | bigint): this {
    this.room(8);
    this.pos = this.scratch.writeBigInt64BE(typeof v === 'bigint' ? v : BigInt(v), this.pos);
    return this;
  }
  nullableString(s: string | null): this {
    if (s === null) return this.int16(-1);
    const len = Buffer.byteLength(s);
    this.int16(len);
    this.room(len);
    this.pos += this.scratch.write(s, this.pos);
    return this;
  }
  string(s: string): this {
    return this.nullableString(s);
  }
  nullableBytes(b: Buffer | null): this {
    if (b === null) return this.int32(-1);
    this.int32(b.length);
    return this.raw(b);
  }
  bytes(b: Buffer): this {
    return this.nullableBytes(b);
  }
  array<T>(items: readonly T[] | null, each: (w: Writer, item: T) => void): this {
    if (items === null) return this.int32(-1);
    this.int32(items.length);
    for (const item of items) each(this, item);
    return this;
  }
  int32Array(items: readonly number[]): this {
    this.int32(items.length);
    for (const v of items) this.int32(v);
    return this;
  }

  /** Appends bytes; big ones by reference (caller must not mutate them until written). */
  raw(b: Buffer): this {
    if (b.length >= RAW_THRESHOLD) {
      this.seal();
      this.chunks.push(b);
      this.total += b.length;
    } else {
      this.room(b.length);
      b.copy(this.scratch, this.pos);
      this.pos += b.length;
    }
    return this;
  }

  uvarint(v: number): this {
    while (v >= 0x80) {
      this.int8((((v & 0x7f) | 0x80) << 24) >> 24);
      v = Math.floor(v / 128);
    }
    return this.int8((v << 24) >> 24);
  }
  compactNullableString(s: string | null): this {
    if (s === null) return this.uvarint(0);
    const len = Buffer.byteLength(s);
    this.uvarint(len + 1);
    this.room(len);
    this.pos += this.scratch.write(s, this.pos);
    return this;
  }
  compactArray<T>(items: readonly T[], each: (w: Writer, item: T) => void): this {
    this.uvarint(items.length + 1);
    for (const item of items) each(this, item);
    return this;
  }
  compactInt32Array(items: readonly number[]): this {
    return this.compactArray(items, (w, v) => w.int32(v));
  }
  emptyTaggedFields(): this {
    return this.uvarint(0);
  }

  finish(): Buffer[] {
    this.seal();
    return this.chunks;
  }
}
