/**
 * Byte-level primitives of Avro's binary encoding: zig-zag varints for int and long,
 * little-endian IEEE floats, length-prefixed bytes and strings.
 *
 * Longs cross the API as JavaScript numbers. Every long Sluice writes (ids, counts, sizes,
 * sequence numbers) stays below 2^53, so reading a larger one is reported as an error
 * rather than silently rounded. bigint is accepted on the write side.
 */
import { AvroError } from './errors.js';

export class ByteSink {
  private buf: Uint8Array;
  private view: DataView;
  pos = 0;

  constructor(initialSize = 4096) {
    this.buf = new Uint8Array(initialSize);
    this.view = new DataView(this.buf.buffer);
  }

  private ensure(extra: number): void {
    const need = this.pos + extra;
    if (need <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < need) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }

  byte(b: number): void {
    this.ensure(1);
    this.buf[this.pos++] = b;
  }

  raw(bytes: Uint8Array): void {
    this.ensure(bytes.length);
    this.buf.set(bytes, this.pos);
    this.pos += bytes.length;
  }

  /** Zig-zag varint of a 32- or 53-bit integer (Avro int and long share the encoding). */
  long(value: number): void {
    // Past 2^52 the doubled zig-zag form would not be exact in a double.
    if (value > 0x10000000000000 || value < -0x10000000000000) {
      this.bigLong(BigInt(value));
      return;
    }
    this.ensure(10);
    // zig-zag without 32-bit bitwise ops, which would truncate longs.
    let n = value >= 0 ? value * 2 : -value * 2 - 1;
    while (n >= 0x80) {
      this.buf[this.pos++] = (n % 0x80) | 0x80;
      n = Math.floor(n / 0x80);
    }
    this.buf[this.pos++] = n;
  }

  bigLong(value: bigint): void {
    this.ensure(10);
    let n = value >= 0n ? value << 1n : (-value << 1n) - 1n;
    while (n >= 0x80n) {
      this.buf[this.pos++] = Number(n & 0x7fn) | 0x80;
      n >>= 7n;
    }
    this.buf[this.pos++] = Number(n);
  }

  float(value: number): void {
    this.ensure(4);
    this.view.setFloat32(this.pos, value, true);
    this.pos += 4;
  }

  double(value: number): void {
    this.ensure(8);
    this.view.setFloat64(this.pos, value, true);
    this.pos += 8;
  }

  bytes(value: Uint8Array): void {
    this.long(value.length);
    this.raw(value);
  }

  string(value: string): void {
    const len = Buffer.byteLength(value, 'utf8');
    this.long(len);
    this.ensure(len);
    Buffer.from(this.buf.buffer, this.buf.byteOffset, this.buf.length).write(value, this.pos, len, 'utf8');
    this.pos += len;
  }

  /** The bytes written so far (a view; copy before reusing the sink). */
  written(): Uint8Array {
    return this.buf.subarray(0, this.pos);
  }

  reset(): void {
    this.pos = 0;
  }
}

export class ByteSource {
  pos = 0;
  private readonly view: DataView;

  constructor(
    readonly buf: Uint8Array,
    start = 0,
    readonly end = buf.length,
  ) {
    this.pos = start;
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }

  get remaining(): number {
    return this.end - this.pos;
  }

  private need(n: number, what: string): void {
    if (this.pos + n > this.end) throw new AvroError(`unexpected end of data reading ${what} at byte ${this.pos}`);
  }

  byte(): number {
    this.need(1, 'a byte');
    return this.buf[this.pos++];
  }

  long(): number {
    const start = this.pos;
    let b = this.byte();
    if (b < 0x80) return (b >>> 1) ^ -(b & 1);
    // Up to 7 bytes (49 bits) the zig-zag form is exact in a double; beyond, use bigint.
    let value = b & 0x7f;
    let scale = 0x80;
    let count = 1;
    while (b >= 0x80) {
      if (count === 7) return this.bigLongFrom(start);
      b = this.byte();
      value += (b & 0x7f) * scale;
      scale *= 0x80;
      count++;
    }
    return value % 2 === 0 ? value / 2 : -(value + 1) / 2;
  }

  private bigLongFrom(start: number): number {
    this.pos = start;
    let raw = 0n;
    let shift = 0n;
    for (;;) {
      if (shift > 63n) throw new AvroError(`varint longer than 10 bytes at byte ${start}`);
      const b = this.byte();
      raw |= BigInt(b & 0x7f) << shift;
      shift += 7n;
      if (b < 0x80) break;
    }
    const v = raw & 1n ? -((raw + 1n) >> 1n) : raw >> 1n;
    if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < -BigInt(Number.MAX_SAFE_INTEGER)) {
      throw new AvroError(`long at byte ${start} is outside the supported range ±(2^53-1)`);
    }
    return Number(v);
  }

  float(): number {
    this.need(4, 'a float');
    const v = this.view.getFloat32(this.pos, true);
    this.pos += 4;
    return v;
  }

  double(): number {
    this.need(8, 'a double');
    const v = this.view.getFloat64(this.pos, true);
    this.pos += 8;
    return v;
  }

  fixed(size: number): Uint8Array {
    this.need(size, `${size} bytes`);
    const out = this.buf.slice(this.pos, this.pos + size);
    this.pos += size;
    return out;
  }

  bytes(): Uint8Array {
    const len = this.long();
    if (len < 0) throw new AvroError(`negative length ${len} at byte ${this.pos}`);
    return this.fixed(len);
  }

  string(): string {
    const len = this.long();
    if (len < 0) throw new AvroError(`negative string length ${len} at byte ${this.pos}`);
    this.need(len, 'a string');
    const s = Buffer.from(this.buf.buffer, this.buf.byteOffset + this.pos, len).toString('utf8');
    this.pos += len;
    return s;
  }
}
