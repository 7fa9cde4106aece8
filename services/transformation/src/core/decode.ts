/**
 * Turning a record's key or value bytes into text, and text into JSON, with the
 * documented interpretations of awkward input:
 * - a UTF-8 byte order mark is stripped;
 * - invalid UTF-8 is refused (with the byte offset of the first bad sequence);
 * - a payload over the plan's byte limit is refused before any parsing;
 * - JSON with duplicate keys is accepted, the last occurrence wins (as JSON.parse does;
 *   RFC 8259 leaves it to the implementation);
 * - JSON integers are exact to 64 bits: JSON.parse rounds integers beyond ±2^53, so where a
 *   rounded one would be stored (a long, decimal or string column, coerce.ts), the record is
 *   parsed again with parseJsonExact, which reads integer literals of 16 or more digits as
 *   BigInt. Ordinary records pay nothing: only the rare record with such a number is parsed twice.
 * V8's JSON.parse is not recursive, so deep nesting cannot overflow the stack here.
 */
import { randomBytes } from 'node:crypto';
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
  refuseTooDeep(text, part);
  try {
    return JSON.parse(text);
  } catch (e) {
    const why = e instanceof Error ? e.message.replace(/^.*?JSON[^:]*:\s*/, '') : String(e);
    throw new RecordError('invalid_json', `${part} is not valid JSON: ${why}`);
  }
}

/**
 * The deepest nesting of JSON objects and arrays a record may have (a thousand levels are kept as JSON text, as before).
 * Deeper values are dirty data (`nesting_too_deep`), refused before JSON.parse: the walks over a
 * parsed value (flattening, inference, the JSON text of a nested column) recurse per level, and
 * a record 10,000 levels deep must be a refused record, never a stack overflow.
 */
export const MAX_JSON_DEPTH = 1024;

/** The first nesting level beyond `limit` in JSON text, skipping strings; -1 when there is none. One pass, no allocation. */
export function jsonDepthOver(text: string, limit = MAX_JSON_DEPTH): number {
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) {
      // A string: skip to its closing quote, past escapes.
      for (i++; i < text.length; i++) {
        const d = text.charCodeAt(i);
        if (d === 0x5c) i++;
        else if (d === 0x22) break;
      }
    } else if (c === 0x7b || c === 0x5b) {
      if (++depth > limit) return i;
    } else if (c === 0x7d || c === 0x5d) depth--;
  }
  return -1;
}

function refuseTooDeep(text: string, part: string): void {
  // Nesting deeper than the limit takes more opening brackets than the limit: shorter text
  // cannot hold it, so the common small record skips the scan.
  if (text.length > MAX_JSON_DEPTH && jsonDepthOver(text) >= 0)
    throw new RecordError('nesting_too_deep', `${part} is nested deeper than ${MAX_JSON_DEPTH} levels`);
}

/**
 * An integer literal of 16 or more digits outside a JSON string (the strings are matched
 * first and left alone). 2^53 has 16 digits, so every literal JSON.parse may round is one.
 */
const LONG_INTEGER_OR_STRING = /"(?:[^"\\]|\\.)*"|(?<![\d.eE+-])-?\d{16,}(?![\d.eE])/g;
/** Marks a long integer's digits while they pass through JSON.parse as a string; random, so no real string looks like it. */
const BIG_MARK = `\u0000${randomBytes(6).toString('hex')}:`;
const BIG_MARK_JSON = JSON.stringify(BIG_MARK).slice(1, -1);

/** Objects and arrays parsed exactly (their integers are exact BigInts where long). */
const exactlyParsed = new WeakSet<object>();

/** Whether a JSON value came from parseJsonExact, so its digits need no second look. */
export function isExactJson(v: object): boolean {
  return exactlyParsed.has(v);
}

/**
 * JSON with integer literals of 16 or more digits as BigInt (the rest as JSON.parse gives
 * them). The slow path: only for a record whose numbers JSON.parse would have rounded.
 */
export function parseJsonExact(text: string, part: string): unknown {
  refuseTooDeep(text, part);
  const marked = text.replace(LONG_INTEGER_OR_STRING, (m) => (m.charCodeAt(0) === 34 ? m : `"${BIG_MARK_JSON}${m}"`));
  try {
    return JSON.parse(marked, (_key, value: unknown) => {
      if (typeof value === 'string') return value.startsWith(BIG_MARK) ? BigInt(value.slice(BIG_MARK.length)) : value;
      if (value !== null && typeof value === 'object') exactlyParsed.add(value);
      return value;
    });
  } catch (e) {
    const why = e instanceof Error ? e.message.replace(/^.*?JSON[^:]*:\s*/, '') : String(e);
    throw new RecordError('invalid_json', `${part} is not valid JSON: ${why}`);
  }
}

/** JSON text of a parsed value whose integers may be BigInt, the digits written as they are. */
export function stringifyExact(v: unknown): string {
  const text = JSON.stringify(v, (_key, value: unknown) => (typeof value === 'bigint' ? `${BIG_MARK}${value}` : value));
  return text.replaceAll(new RegExp(`"${BIG_MARK_JSON.replaceAll('\\', '\\\\')}(-?\\d+)"`, 'g'), '$1');
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
