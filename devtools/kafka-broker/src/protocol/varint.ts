// Zig-zag varints of the record v2 format. Decoding returns the value and advances a shared cursor
// so iterating records allocates nothing per field.
export interface Cursor {
  pos: number;
}

export function readVarint(buf: Uint8Array, c: Cursor): number {
  let raw = 0;
  let shift = 0;
  for (;;) {
    if (c.pos >= buf.length) throw new RangeError(`varint runs past end at byte ${c.pos}`);
    const b = buf[c.pos++];
    raw += (b & 0x7f) * 2 ** shift;
    if ((b & 0x80) === 0) break;
    shift += 7;
    if (shift > 63) throw new RangeError(`varint longer than 10 bytes at byte ${c.pos}`);
  }
  // zig-zag: even → positive, odd → negative
  return raw % 2 === 0 ? raw / 2 : -(raw + 1) / 2;
}

export function varintSize(value: number): number {
  let raw = value >= 0 ? value * 2 : -value * 2 - 1;
  let n = 1;
  while (raw >= 128) {
    raw = Math.floor(raw / 128);
    n++;
  }
  return n;
}

export function writeVarint(buf: Uint8Array, pos: number, value: number): number {
  let raw = value >= 0 ? value * 2 : -value * 2 - 1;
  while (raw >= 128) {
    buf[pos++] = (raw % 128) | 0x80;
    raw = Math.floor(raw / 128);
  }
  buf[pos++] = raw;
  return pos;
}
