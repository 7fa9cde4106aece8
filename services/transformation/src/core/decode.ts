/**
 * Turning a record's key or value bytes into text, and text into JSON, with the
 * documented interpretations of awkward input:
 * - a UTF-8 byte order mark is stripped;
 * - invalid UTF-8 is refused (with the byte offset of the first bad sequence);
 * - a payload over the plan's byte limit is refused before any parsing;
 * - JSON with duplicate keys is accepted, the last occurrence wins (as JSON.parse does;
 *   RFC 8259 leaves it to the implementation);
 * - JSON numbers beyond ±2^53 are caught where a long column receives them (coerce.ts).
 * V8's JSON.parse is not recursive, so deep nesting cannot overflow the stack here.
 */
import { isUtf8 } from 'node:buffer';
import { RecordError } from './errors.js';

export function stripBom(b: Buffer): Buffer {
  return b.length >= 3 && b[0] === 0xef && b[1] === 0xbb && b[2] === 0xbf ? b.subarray(3) : b;
}

/** UTF-8 text of a key or value; `part` names it in errors ("value", "key"). */
export function decodeText(b: Buffer, part: string, maxBytes: number): string {
  if (b.length > maxBytes) throw new RecordError('too_large', `${part} is ${b.length} bytes, over the ${maxBytes}-byte limit`);
  const body = stripBom(b);
  if (!isUtf8(body))
    throw new RecordError('invalid_utf8', `${part} is not valid UTF-8 (first bad byte at offset ${firstInvalidUtf8(body)})`);
  return body.toString('utf8');
}

export function parseJson(text: string, part: string): unknown {
  if (text.length === 0) throw new RecordError('empty', `${part} is empty, expected JSON`);
  try {
    return JSON.parse(text);
  } catch (e) {
    const why = e instanceof Error ? e.message.replace(/^.*?JSON[^:]*:\s*/, '') : String(e);
    throw new RecordError('invalid_json', `${part} is not valid JSON: ${why}`);
  }
}

/** The offset of the first byte that does not start or continue a valid UTF-8 sequence. Error path only. */
export function firstInvalidUtf8(b: Uint8Array): number {
  let i = 0;
  while (i < b.length) {
    const c = b[i];
    let n: number;
    let min: number;
    if (c < 0x80) {
      i++;
      continue;
    } else if (c >= 0xc2 && c <= 0xdf) {
      n = 1;
      min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
      n = 2;
      min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
      n = 3;
      min = 0x10000;
    } else return i;
    let cp = c & (0x3f >> n);
    for (let k = 1; k <= n; k++) {
      const cc = b[i + k];
      if (cc === undefined || (cc & 0xc0) !== 0x80) return i;
      cp = (cp << 6) | (cc & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return i;
    i += n + 1;
  }
  return -1;
}
