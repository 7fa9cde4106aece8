/**
 * The fast path of a record into a row: one pass over the record's bytes that copies each
 * value's text into the column's token buffer (#shared/parquet/token-chunk.ts), which the
 * Parquet writer hands to DuckDB to split and cast natively. No JS object is made per record
 * or per cell.
 *
 * transformRecord (plan.ts) stays the reference, and the only path that refuses, evolves or
 * counts. The scanner takes a record only when the reference would turn it into the same row
 * without a question; anything else it declines, writing nothing, and the reference reads the
 * record as before. What it takes, by plan:
 *
 * - JSON at a flatten level >= 1 (and FLATTEN): an object whose keys all name existing
 *   columns at that level (as plan.ts resolves them), nested objects only above the last
 *   level, each column filled at most once; no arrays, no escapes in keys, no whitespace but
 *   JSON's, valid UTF-8, nothing after the object. Escapes in strings are read as JSON.parse
 *   reads them, except a lone surrogate and U+0000-U+0002 (declined).
 * - CSV with a one-byte delimiter: a line without the quote character and without control
 *   characters, with exactly the expected number of fields.
 * - Columns of type string, boolean, int, long, double, date, timestamp and timestamptz, in
 *   the forms their coercers read without judgement (coerce.ts): strings into string columns
 *   (and JSON booleans, which print as true/false); JSON `true`/`false` and CSV
 *   `true`/`false`/`1`/`0` into boolean; integer literals into int (in range) and long (up to
 *   15 digits: no rounding is possible); any JSON number literal, or a CSV one with JSON's
 *   grammar, into double (DuckDB's cast and Number() both round correctly); `yyyy-mm-dd` or an
 *   integer into date; integers in the column's epoch unit, or `yyyy-mm-dd[T ]hh:mm:ss[.f]`
 *   with `Z` or no offset, into timestamps where the zone makes no difference. Nulls where the
 *   column is optional.
 * - Append tables only (no change streams), without fixed columns, a partition_by column or
 *   JSON field paths (CSV field mappings are fine: they name fields by position). Other plans
 *   have no scanner (compileTokenScanner returns null). TokenRows sorts the rows of a
 *   partitioned table by partition, through the plan's own partition tuple.
 *
 * services/transformation/test/token-scan.test.ts runs a corpus of messy records through both
 * paths and requires identical rows, and that every refused record is declined.
 */
import { isUtf8 } from 'node:buffer';
import { NULL_TOKEN, TokenChunk } from '#shared/parquet/token-chunk.js';
import { daysFromCivil, daysInMonth, MS_PER_DAY, MS_PER_HOUR, MS_PER_MINUTE } from '#shared/time.js';
import { EPOCH_TO_MICROS } from './coerce.js';
import { columnName } from './flatten.js';
import type { PartitionTuple } from './partition.js';
import { MAX_RECORD_HEADERS, type Plan } from './plan.js';
import type { Row } from './row.js';

/**
 * A record as the scanners read it: its key and value as ranges of larger buffers, the run's
 * (RunCursor), so that no view is made per record. A range's start is -1 for a null.
 *
 * A range is not a buffer of its own: the bytes after its end are the next record's. The
 * scanners never take a byte at or past the end: an index only grows while a record is read,
 * and a record is taken only when its reading ends exactly at the end.
 */
export interface RecordRanges {
  readonly headers: readonly unknown[];
  readonly valueBytes: Buffer;
  readonly valueStart: number;
  readonly valueEnd: number;
  readonly keyBytes: Buffer;
  readonly keyStart: number;
  readonly keyEnd: number;
}

export interface TokenScanner {
  /**
   * Writes the record's row into `chunk` (one token per plan column) and returns true; or
   * returns false, leaving the chunk as it was, when the reference path must read the record.
   */
  take(rec: RecordRanges, chunk: TokenChunk): boolean;
}

/** How a column's values are read on the fast path. */
enum Kind {
  String,
  Boolean,
  Int,
  Long,
  Double,
  Date,
  /** timestamp or timestamptz: tokens are microseconds since the epoch. */
  Time,
}

interface ColumnRead {
  kind: Kind;
  required: boolean;
  /**
   * Epoch numbers: the largest magnitude whose microseconds are a safe integer, and the zeros
   * that make a unit's digits microseconds.
   */
  maxEpoch: number;
  unitZeros: number;
  /** Epoch numbers are instants; whether this column may take them (timestamp needs a UTC zone). */
  instants: boolean;
  /** Wall-clock strings without an offset: whether they need no zone (timestamp, or a UTC zone). */
  wallClock: boolean;
}

function columnRead(plan: Plan, i: number): ColumnRead | null {
  const c = plan.columns[i];
  const utc = plan.zone.isUtc;
  const microsPerUnit = EPOCH_TO_MICROS[c.epochUnit];
  const maxEpoch = Math.floor(Number.MAX_SAFE_INTEGER / microsPerUnit);
  const base = { required: c.required, maxEpoch, unitZeros: Math.log10(microsPerUnit), instants: true, wallClock: true };
  switch (c.type.kind) {
    case 'string':
      return { ...base, kind: Kind.String };
    case 'boolean':
      return { ...base, kind: Kind.Boolean };
    case 'int':
      return { ...base, kind: Kind.Int };
    case 'long':
      return { ...base, kind: Kind.Long };
    case 'double':
      return { ...base, kind: Kind.Double };
    case 'date':
      return { ...base, kind: Kind.Date };
    case 'timestamp':
      return { ...base, kind: Kind.Time, instants: utc };
    case 'timestamptz':
      return { ...base, kind: Kind.Time, wallClock: utc };
    default:
      return null;
  }
}

/** The plan's scanner, or null when its records always take the reference path. */
export function compileTokenScanner(plan: Plan): TokenScanner | null {
  if (plan.changes !== null || plan.parsedPart === null) return null;
  const reads: ColumnRead[] = [];
  for (let i = 0; i < plan.columns.length; i++) {
    const source = plan.columns[i].source.kind;
    if (source !== 'flat' && source !== 'csv' && source !== 'none') return null;
    const read = columnRead(plan, i);
    if (read === null) return null;
    reads.push(read);
  }
  if (plan.format === 'CSV') {
    const csv = plan.csv!;
    if (csv.delimiter.length !== 1 || csv.delimiter.charCodeAt(0) >= 0x80 || csv.quote.charCodeAt(0) >= 0x80) return null;
    return new CsvScanner(plan, reads);
  }
  if (plan.byName === null) return null;
  return new JsonScanner(plan, reads);
}

/**
 * What every scanner checks first: the part the plan reads, within the plan's limits. Sets
 * `part` to its bytes and range; false when the reference must read the record.
 */
function partOf(plan: Plan, rec: RecordRanges, part: Part): boolean {
  if (rec.headers.length > MAX_RECORD_HEADERS) return false;
  const key = plan.parsedPart === 'key';
  const start = key ? rec.keyStart : rec.valueStart;
  const end = key ? rec.keyEnd : rec.valueEnd;
  if (start < 0 || end === start || end - start > plan.limits.maxRecordBytes) return false;
  part.bytes = key ? rec.keyBytes : rec.valueBytes;
  part.start = start;
  part.end = end;
  return true;
}

/** The bytes a scanner reads of the current record: `bytes[start, end)`. */
interface Part {
  bytes: Buffer;
  start: number;
  end: number;
}

const newPart = (): Part => ({ bytes: Buffer.alloc(0), start: 0, end: 0 });

/** Fills the columns the record left unset: null, or decline when one is required. */
function finishRow(reads: readonly ColumnRead[], seenAt: Int32Array, stamp: number, chunk: TokenChunk): boolean {
  for (let i = 0; i < reads.length; i++) {
    if (seenAt[i] === stamp) continue;
    if (reads[i].required) return false;
    chunk.putNull(i);
  }
  return true;
}

// Byte values.
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const COLON = 0x3a;
const MINUS = 0x2d;
const PLUS = 0x2b;
const DOT = 0x2e;
const ZERO = 0x30;
const NINE = 0x39;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const LOWER_E = 0x65;
const UPPER_E = 0x45;
const isDigit = (c: number) => c >= ZERO && c <= NINE;
const isJsonSpace = (c: number) => c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;

/** A key of one object level, resolved once: its column (or -1: none) and, for objects, the next level. */
interface KeyNode {
  key: Buffer;
  name: string;
  column: number;
  children: KeyLevel | null;
  /** The record (stamp) that last opened this key's object: a second one declines the record. */
  openedAt: number;
  /** The key that followed this one in its object last time: the guess for the next key. */
  next: KeyNode | null;
}

/**
 * Keys met at one level, by a hash of their bytes; at most MAX_KEYS_PER_LEVEL are kept.
 * Records of a topic mostly share their keys' order, so each key remembers the key after it
 * (and the level its first key): a key that matches the guess skips hashing and the lookup.
 */
interface KeyLevel {
  nodes: Map<number, KeyNode[]>;
  size: number;
  first: KeyNode | null;
}

const MAX_KEYS_PER_LEVEL = 4096;

function resetOpened(level: KeyLevel): void {
  for (const bucket of level.nodes.values())
    for (const node of bucket) {
      node.openedAt = -1;
      if (node.children !== null) resetOpened(node.children);
    }
}
const newLevel = (): KeyLevel => ({ nodes: new Map(), size: 0, first: null });

/** Result of scanning a number literal: where it ends, and what kind it is. */
interface NumberScan {
  end: number;
  integer: boolean;
  /** Digits of the integer part (without sign). */
  digits: number;
  /** Its value when integer and at most 15 digits. */
  value: number;
}

/**
 * Scans a JSON number literal at `at` (JSON's grammar exactly: no leading zeros, no `+`, a
 * digit on both sides of the point). Returns false when there is none.
 */
function scanNumber(b: Uint8Array, at: number, end: number, out: NumberScan): boolean {
  let i = at;
  const negative = b[i] === MINUS;
  if (negative) i++;
  if (i >= end || !isDigit(b[i])) return false;
  let value = 0;
  const first = i;
  if (b[i] === ZERO) i++;
  else while (i < end && isDigit(b[i])) value = value * 10 + (b[i++] - ZERO);
  out.digits = i - first;
  let integer = true;
  if (i < end && b[i] === DOT) {
    i++;
    if (i >= end || !isDigit(b[i])) return false;
    while (i < end && isDigit(b[i])) i++;
    integer = false;
  }
  if (i < end && (b[i] === LOWER_E || b[i] === UPPER_E)) {
    i++;
    if (i < end && (b[i] === PLUS || b[i] === MINUS)) i++;
    if (i >= end || !isDigit(b[i])) return false;
    while (i < end && isDigit(b[i])) i++;
    integer = false;
  }
  out.end = i;
  out.integer = integer;
  out.value = negative ? -value : value;
  return true;
}

/**
 * Whether a number literal goes into a double, long or int column as its own text: any literal
 * into a double (DuckDB's cast and Number() both round correctly), an integer of at most 15
 * digits into a long (no rounding is possible), one in 32 bits into an int.
 */
function numberFits(kind: Kind, n: NumberScan): boolean {
  if (kind === Kind.Double) return true;
  if (!n.integer) return false;
  if (kind === Kind.Long) return n.digits <= 15;
  return kind === Kind.Int && n.digits <= 10 && n.value >= -2147483648 && n.value <= 2147483647;
}

/** Two ASCII digits at `at` as a number, or -1. */
function twoDigits(b: Uint8Array, at: number): number {
  const x = b[at] - ZERO;
  const y = b[at + 1] - ZERO;
  return x >= 0 && x <= 9 && y >= 0 && y <= 9 ? x * 10 + y : -1;
}

/** `yyyy-mm-dd` at `at` as days since 1970-01-01, or NaN. */
function scanDate(b: Uint8Array, at: number): number {
  const c = twoDigits(b, at);
  const y2 = twoDigits(b, at + 2);
  if (c < 0 || y2 < 0 || b[at + 4] !== MINUS || b[at + 7] !== MINUS) return NaN;
  const y = c * 100 + y2;
  const mo = twoDigits(b, at + 5);
  const d = twoDigits(b, at + 8);
  if (mo < 1 || mo > 12 || d < 1 || d > daysInMonth(y, mo)) return NaN;
  return daysFromCivil(y, mo, d);
}

/**
 * `yyyy-mm-dd[T ]hh:mm:ss[.f{1,9}][Z]` in `b[at, end)` as microseconds since the epoch (on
 * the wall clock when there is no `Z`), or NaN; `zulu` says whether it ended in `Z`.
 */
function scanTimestamp(b: Uint8Array, at: number, end: number, out: { zulu: boolean }): number {
  if (end - at < 19) return NaN;
  const days = scanDate(b, at);
  if (Number.isNaN(days) || (b[at + 10] !== 0x54 && b[at + 10] !== 0x20)) return NaN;
  const h = twoDigits(b, at + 11);
  const mi = twoDigits(b, at + 14);
  const s = twoDigits(b, at + 17);
  if (b[at + 13] !== COLON || b[at + 16] !== COLON || h < 0 || h > 23 || mi < 0 || mi > 59 || s < 0 || s > 59) return NaN;
  let i = at + 19;
  let micros = 0;
  if (i < end && b[i] === DOT) {
    i++;
    const first = i;
    while (i < end && isDigit(b[i])) {
      if (i - first < 6) micros = micros * 10 + (b[i] - ZERO);
      i++;
    }
    const count = i - first;
    if (count === 0 || count > 9) return NaN;
    for (let k = Math.min(count, 6); k < 6; k++) micros *= 10;
  }
  out.zulu = i < end && b[i] === 0x5a;
  if (out.zulu) i++;
  if (i !== end) return NaN;
  return (days * MS_PER_DAY + h * MS_PER_HOUR + mi * MS_PER_MINUTE + s * 1000) * 1000 + micros;
}

/** Shared by both scanners: a string token `b[start, end)` (no escapes) into column `i`. */
function putText(
  read: ColumnRead,
  b: Uint8Array,
  start: number,
  end: number,
  chunk: TokenChunk,
  i: number,
  zone: { zulu: boolean },
): boolean {
  switch (read.kind) {
    case Kind.String:
      chunk.put(i, b, start, end);
      return true;
    case Kind.Date: {
      if (end - start !== 10) return false;
      const days = scanDate(b, start);
      if (Number.isNaN(days)) return false;
      chunk.putInteger(i, days);
      return true;
    }
    case Kind.Time: {
      // Digits only are an epoch number in the column's unit (coerce.ts reads them so).
      let allDigits = end > start;
      for (let k = start; k < end && allDigits; k++) allDigits = isDigit(b[k]) || (k === start && b[k] === MINUS && end - start > 1);
      if (allDigits) {
        if (end - start > 15) return false;
        let n = 0;
        for (let k = b[start] === MINUS ? start + 1 : start; k < end; k++) n = n * 10 + (b[k] - ZERO);
        return n <= read.maxEpoch && putEpoch(read, b, start, end, chunk, i);
      }
      const micros = scanTimestamp(b, start, end, zone);
      if (!Number.isSafeInteger(micros) || !(zone.zulu ? read.instants : read.wallClock)) return false;
      chunk.putInteger(i, micros);
      return true;
    }
    default:
      return false;
  }
}

/**
 * An epoch integer written as `b[start, end)`, whose magnitude the caller checked against
 * `read.maxEpoch`, into a time column: its digits followed by the unit's zeros are the
 * microseconds, with no arithmetic on the way. The number itself is not passed: a double
 * argument to a call V8 does not inline is a heap number per record.
 */
function putEpoch(read: ColumnRead, b: Uint8Array, start: number, end: number, chunk: TokenChunk, i: number): boolean {
  if (!read.instants) return false;
  chunk.putScaled(i, b, start, end, read.unitZeros);
  return true;
}

class JsonScanner implements TokenScanner {
  private readonly root = newLevel();
  private readonly seenAt: Int32Array;
  private stamp = 0;
  private readonly number: NumberScan = { end: 0, integer: false, digits: 0, value: 0 };
  private readonly zone = { zulu: false };
  /** Bytes >= 0x80 met in this record's strings: checked as UTF-8 once at the end. */
  private high = false;
  /** Whether the string stringEnd() last found has an escape. */
  private escaped = false;
  /** Where unescape() writes a string's characters. */
  private scratch = Buffer.allocUnsafe(1024);
  private chunk!: TokenChunk;
  /** The current record's bytes: every step reads up to part.end, never past it. */
  private readonly part = newPart();

  constructor(
    private readonly plan: Plan,
    private readonly reads: readonly ColumnRead[],
  ) {
    this.seenAt = new Int32Array(reads.length).fill(-1);
  }

  take(rec: RecordRanges, chunk: TokenChunk): boolean {
    if (!partOf(this.plan, rec, this.part)) return false;
    const { bytes: b, start, end } = this.part;
    this.stamp = (this.stamp + 1) | 0;
    if (this.stamp < 0) {
      // After 2^31 records: every stamp seen so far must read as old.
      this.stamp = 0;
      this.seenAt.fill(-1);
      resetOpened(this.root);
    }
    this.high = false;
    this.chunk = chunk;
    chunk.beginRow();
    let i = skipSpace(b, start, end);
    if (i === end || b[i] !== OPEN_BRACE) return false;
    i = this.object(b, i + 1, 1, this.root, null);
    if (
      i < 0 ||
      skipSpace(b, i, end) !== end ||
      (this.high && !isUtf8(b.subarray(start, end))) ||
      !finishRow(this.reads, this.seenAt, this.stamp, chunk)
    ) {
      chunk.dropRow();
      return false;
    }
    chunk.endRow();
    return true;
  }

  /** An object's members from `at` (after its `{`); returns the index after its `}`, or -1 to decline. */
  private object(b: Buffer, at: number, depth: number, level: KeyLevel, parent: KeyNode | null): number {
    const end = this.part.end;
    let i = skipSpace(b, at, end);
    if (i >= end) return -1;
    if (b[i] === CLOSE_BRACE) return i + 1;
    let previous: KeyNode | null = null;
    for (;;) {
      if (b[i] !== QUOTE) return -1;
      const keyStart = i + 1;
      const guess: KeyNode | null = previous === null ? level.first : previous.next;
      let node: KeyNode | null;
      if (guess !== null && keyAt(guess.key, b, keyStart, end)) {
        // The guess's bytes and then a quote: the key is the guess, read in this one pass
        // (a known key has no quote, escape or control character, and is valid UTF-8).
        node = guess;
        i = keyStart + guess.key.length;
      } else {
        i = this.stringEnd(b, keyStart);
        if (i < 0 || this.escaped) return -1;
        node = this.node(b, keyStart, i, level, parent, depth);
        if (node === null) return -1;
      }
      if (previous === null) level.first = node;
      else previous.next = node;
      previous = node;
      i = skipSpace(b, i + 1, end);
      if (b[i] !== COLON) return -1;
      i = skipSpace(b, i + 1, end);
      if (i >= end) return -1;
      const c = b[i];
      if (c === OPEN_BRACE) {
        if (depth >= this.plan.flattenLevel) return -1; // kept whole as JSON text: the reference's
        // A key repeated with object values: JSON.parse keeps only the last object.
        if (node.openedAt === this.stamp) return -1;
        node.openedAt = this.stamp;
        node.children ??= newLevel();
        i = this.object(b, i + 1, depth + 1, node.children, node);
        if (i < 0) return -1;
      } else {
        const column = node.column;
        if (column < 0 || this.seenAt[column] === this.stamp) return -1;
        this.seenAt[column] = this.stamp;
        i = this.value(b, i, column);
        if (i < 0) return -1;
      }
      i = skipSpace(b, i, end);
      if (i >= end) return -1;
      if (b[i] === COMMA) i = skipSpace(b, i + 1, end);
      else if (b[i] === CLOSE_BRACE) return i + 1;
      else return -1;
    }
  }

  /** A leaf value at `at` into its column; the index after it, or -1. */
  private value(b: Buffer, at: number, column: number): number {
    const read = this.reads[column];
    const chunk = this.chunk;
    const c = b[at];
    if (c === QUOTE) {
      const end = this.stringEnd(b, at + 1);
      if (end < 0) return -1;
      if (this.escaped) {
        // Escapes only in strings kept as they are; a number or time in a string has none.
        if (read.kind !== Kind.String) return -1;
        const length = this.unescape(b, at + 1, end);
        if (length < 0) return -1;
        chunk.put(column, this.scratch, 0, length);
      } else if (!putText(read, b, at + 1, end, chunk, column, this.zone)) return -1;
      return end + 1;
    }
    if (c === 0x74 || c === 0x66) {
      // true / false: booleans, and strings (which print them so)
      const end = literalEnd(b, at, this.part.end, c === 0x74 ? TRUE : FALSE);
      if (end < 0 || (read.kind !== Kind.Boolean && read.kind !== Kind.String)) return -1;
      chunk.put(column, b, at, end);
      return end;
    }
    if (c === 0x6e) {
      const end = literalEnd(b, at, this.part.end, NULL);
      if (end < 0 || read.required) return -1;
      chunk.putNull(column);
      return end;
    }
    const n = this.number;
    if (!scanNumber(b, at, this.part.end, n)) return -1;
    switch (read.kind) {
      case Kind.Double:
      case Kind.Long:
      case Kind.Int:
        if (!numberFits(read.kind, n)) return -1;
        chunk.put(column, b, at, n.end);
        return n.end;
      case Kind.Date:
        if (!n.integer || n.digits > 7) return -1;
        chunk.putInteger(column, n.value === 0 ? 0 : n.value);
        return n.end;
      case Kind.Time:
        if (!n.integer || n.digits > 15 || Math.abs(n.value) > read.maxEpoch || !putEpoch(read, b, at, n.end, chunk, column)) return -1;
        return n.end;
      default:
        return -1;
    }
  }

  /**
   * The index of the closing quote of a string starting at `at`, or -1 for one with a raw
   * control character. Sets `escaped` when the string has an escape (skipped over here, read
   * by unescape()).
   */
  private stringEnd(b: Buffer, at: number): number {
    const end = this.part.end;
    this.escaped = false;
    for (let i = at; i < end; i++) {
      const c = b[i];
      if (c === QUOTE) return i;
      if (c === BACKSLASH) {
        this.escaped = true;
        i++;
      } else if (c < 0x20) return -1;
      else if (c >= 0x80) this.high = true;
    }
    return -1;
  }

  /**
   * The string `b[start, end)` with its escapes read, as JSON.parse reads them, into the
   * scratch buffer; its length, or -1 to decline: an invalid escape (JSON.parse refuses it), a
   * lone surrogate (its UTF-8 would not be the reference's), or U+0000-U+0002 (NUL, and the
   * token separators).
   */
  private unescape(b: Buffer, start: number, end: number): number {
    if (this.scratch.length < end - start) this.scratch = Buffer.allocUnsafe(Math.max(2 * this.scratch.length, end - start));
    const out = this.scratch;
    let n = 0;
    for (let i = start; i < end; i++) {
      const c = b[i];
      if (c !== BACKSLASH) {
        out[n++] = c;
        continue;
      }
      const e = b[++i];
      const simple = e < 0x80 ? SIMPLE_ESCAPES[e] : 0;
      if (simple !== 0) {
        out[n++] = simple;
        continue;
      }
      if (e !== 0x75 || i + 4 >= end) return -1; // \u and four hex digits
      let cp = hex4(b, i + 1);
      i += 4;
      if (cp < 0) return -1;
      if (cp >= 0xd800 && cp <= 0xdbff) {
        // A high surrogate must be followed by an escaped low one.
        if (i + 6 >= end || b[i + 1] !== BACKSLASH || b[i + 2] !== 0x75) return -1;
        const low = hex4(b, i + 3);
        if (low < 0xdc00 || low > 0xdfff) return -1;
        cp = 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00);
        i += 6;
      } else if ((cp >= 0xdc00 && cp <= 0xdfff) || cp <= 0x02) return -1;
      n = encodeUtf8(out, n, cp);
    }
    return n;
  }

  /** The key `b[start, end)` at this level, resolved as plan.ts resolves it; null to decline. */
  private node(b: Buffer, start: number, end: number, level: KeyLevel, parent: KeyNode | null, depth: number): KeyNode | null {
    let hash = end - start;
    for (let i = start; i < end; i++) hash = (Math.imul(hash, 31) + b[i]) | 0;
    const bucket = level.nodes.get(hash);
    if (bucket !== undefined) {
      for (const node of bucket) if (sameBytes(node.key, b, start, end)) return node;
    }
    if (level.size >= MAX_KEYS_PER_LEVEL) return null;
    if (this.high && !isUtf8(b.subarray(start, end))) return null;
    const key = b.toString('utf8', start, end);
    const node: KeyNode = {
      key: Buffer.from(b.subarray(start, end)),
      ...this.resolve(key, parent, depth),
      children: null,
      openedAt: -1,
      next: null,
    };
    if (bucket === undefined) level.nodes.set(hash, [node]);
    else bucket.push(node);
    level.size++;
    return node;
  }

  /** plan.ts's spreadFlattened (level 1) and fieldNode (deeper): the key's column name and index. */
  private resolve(key: string, parent: KeyNode | null, depth: number): { name: string; column: number } {
    const byName = this.plan.byName!;
    const dotted = key.includes('.');
    if (this.plan.flattenLevel === 1 || depth === 1) {
      let name = key;
      let column = this.plan.flattenLevel === 1 ? byName.get(key) : dotted ? undefined : byName.get(key);
      if (column === undefined && dotted) {
        name = columnName('', key);
        column = byName.get(name);
      }
      return { name, column: column ?? -1 };
    }
    const name = columnName(parent!.name, key);
    return { name, column: byName.get(name) ?? -1 };
  }
}

/**
 * Whether `b` holds `key` at `start` followed by a closing quote, all before `end`. Its own
 * loop: through sameBytes the scan took 7-11 % longer (interleaved in one process).
 */
function keyAt(key: Uint8Array, b: Uint8Array, start: number, end: number): boolean {
  const length = key.length;
  if (start + length >= end || b[start + length] !== QUOTE) return false;
  for (let i = 0; i < length; i++) if (key[i] !== b[start + i]) return false;
  return true;
}

/** Whether `key` holds exactly the bytes `b[start, end)` (a loop: keys are short, and a view would cost more). */
function sameBytes(key: Uint8Array, b: Uint8Array, start: number, end: number): boolean {
  if (key.length !== end - start) return false;
  for (let i = 0; i < key.length; i++) if (key[i] !== b[start + i]) return false;
  return true;
}

/** The byte each one-character escape stands for (`\\n` is 0x0a), by the escape's character; 0: none. */
const SIMPLE_ESCAPES = new Uint8Array(128);
for (const [character, byte] of [
  ['"', 0x22],
  ['\\', 0x5c],
  ['/', 0x2f],
  ['b', 0x08],
  ['f', 0x0c],
  ['n', 0x0a],
  ['r', 0x0d],
  ['t', 0x09],
] as const)
  SIMPLE_ESCAPES[character.charCodeAt(0)] = byte;

/** Four hex digits at `at` as a number, or -1. */
function hex4(b: Uint8Array, at: number): number {
  let v = 0;
  for (let k = 0; k < 4; k++) {
    const c = b[at + k];
    const d = c >= 0x30 && c <= 0x39 ? c - 0x30 : c >= 0x41 && c <= 0x46 ? c - 0x37 : c >= 0x61 && c <= 0x66 ? c - 0x57 : -1;
    if (d < 0) return -1;
    v = v * 16 + d;
  }
  return v;
}

/** A code point (not a surrogate) as UTF-8 at `out[n]`; returns the end. */
function encodeUtf8(out: Uint8Array, n: number, cp: number): number {
  if (cp < 0x80) out[n++] = cp;
  else if (cp < 0x800) {
    out[n++] = 0xc0 | (cp >> 6);
    out[n++] = 0x80 | (cp & 0x3f);
  } else if (cp < 0x10000) {
    out[n++] = 0xe0 | (cp >> 12);
    out[n++] = 0x80 | ((cp >> 6) & 0x3f);
    out[n++] = 0x80 | (cp & 0x3f);
  } else {
    out[n++] = 0xf0 | (cp >> 18);
    out[n++] = 0x80 | ((cp >> 12) & 0x3f);
    out[n++] = 0x80 | ((cp >> 6) & 0x3f);
    out[n++] = 0x80 | (cp & 0x3f);
  }
  return n;
}

const TRUE = Buffer.from('true');
const FALSE = Buffer.from('false');
const NULL = Buffer.from('null');

function literalEnd(b: Uint8Array, at: number, end: number, literal: Uint8Array): number {
  if (at + literal.length > end) return -1;
  for (let k = 0; k < literal.length; k++) if (b[at + k] !== literal[k]) return -1;
  return at + literal.length;
}

function skipSpace(b: Uint8Array, at: number, end: number): number {
  let i = at;
  while (i < end && isJsonSpace(b[i])) i++;
  return i;
}

class CsvScanner implements TokenScanner {
  private readonly delimiter: number;
  private readonly quote: number;
  /** Column of each CSV field, or -1 when no column reads it. */
  private readonly columnOfField: Int32Array;
  private readonly seenAt: Int32Array;
  /** Where each field of the line at hand ends (its delimiter, or the line's end): found by the one pass that checks the line. */
  private readonly stops: Int32Array;
  private readonly number: NumberScan = { end: 0, integer: false, digits: 0, value: 0 };
  private readonly zone = { zulu: false };
  private readonly part = newPart();

  constructor(
    private readonly plan: Plan,
    private readonly reads: readonly ColumnRead[],
  ) {
    const csv = plan.csv!;
    this.stops = new Int32Array(csv.width);
    this.delimiter = csv.delimiter.charCodeAt(0);
    this.quote = csv.quote.charCodeAt(0);
    this.columnOfField = new Int32Array(csv.width).fill(-1);
    plan.columns.forEach((c, i) => {
      if (c.source.kind === 'csv') this.columnOfField[c.source.index] = i;
    });
    // Every column a field fills is seen in every row; the others are null.
    this.seenAt = new Int32Array(reads.length).fill(-1);
    for (const column of this.columnOfField) if (column >= 0) this.seenAt[column] = 1;
  }

  take(rec: RecordRanges, chunk: TokenChunk): boolean {
    if (!partOf(this.plan, rec, this.part)) return false;
    const { bytes: b, start: first, end } = this.part;
    const width = this.columnOfField.length;
    const stops = this.stops;
    let high = false;
    let fields = 1;
    for (let i = first; i < end; i++) {
      const c = b[i];
      if (c < 0x20 || c === this.quote) return false;
      if (c === this.delimiter) {
        if (fields < width) stops[fields - 1] = i;
        fields++;
      } else if (c >= 0x80) high = true;
    }
    if (fields !== width || (high && (b[first] === 0xef || !isUtf8(b.subarray(first, end))))) return false;
    stops[width - 1] = end;
    chunk.beginRow();
    let start = first;
    for (let f = 0; f < fields; f++) {
      const stop = stops[f];
      const column = this.columnOfField[f];
      if (column >= 0 && !this.field(b, start, stop, column, chunk)) {
        chunk.dropRow();
        return false;
      }
      start = stop + 1;
    }
    if (!finishRow(this.reads, this.seenAt, 1, chunk)) {
      chunk.dropRow();
      return false;
    }
    chunk.endRow();
    return true;
  }

  /** One field `b[start, end)` into its column, as the column's coercer reads a CSV string. */
  private field(b: Buffer, start: number, end: number, column: number, chunk: TokenChunk): boolean {
    const read = this.reads[column];
    if (start === end) {
      // An empty unquoted field is null (csv.ts).
      if (read.required) return false;
      chunk.putNull(column);
      return true;
    }
    switch (read.kind) {
      case Kind.Boolean: {
        const length = end - start;
        const c = b[start];
        const ok =
          (length === 1 && (c === 0x30 || c === 0x31)) ||
          (length === 4 && literalEnd(b, start, end, TRUE) === end) ||
          (length === 5 && literalEnd(b, start, end, FALSE) === end);
        if (ok) chunk.put(column, b, start, end);
        return ok;
      }
      case Kind.Long:
      case Kind.Int:
      case Kind.Double: {
        const n = this.number;
        if (!scanNumber(b, start, end, n) || n.end !== end || !numberFits(read.kind, n)) return false;
        chunk.put(column, b, start, end);
        return true;
      }
      default:
        return putText(read, b, start, end, chunk, column, this.zone);
    }
  }
}

/**
 * The fast path's rows of one stream, one token chunk per partition value: a taken record's
 * partition comes from the plan's own partition tuple (partition.ts), fed the values its
 * source columns' tokens stand for, exactly as the reference would have coerced them. A record
 * whose tuple cannot be made is declined (the reference refuses it as `partition`).
 */
export class TokenRows {
  private readonly byKey = new Map<string, { tuple: PartitionTuple; chunk: TokenChunk }>();
  private current: { tuple: PartitionTuple; chunk: TokenChunk } | null = null;
  /** Where a row goes while its partition is not known yet (no row taken since the last drain). */
  private readonly scratch: TokenChunk;
  /** The partition sources' values of the row at hand; the other slots stay undefined. */
  private readonly row: Row;
  private readonly sources: readonly { column: number; kind: Kind }[];
  private taken = 0;
  private takenBytes = 0;

  constructor(
    private readonly plan: Plan,
    private readonly scanner: TokenScanner,
  ) {
    this.scratch = new TokenChunk(plan.columns.length);
    this.row = new Array(plan.columns.length);
    this.sources = plan.partitionSources.map((column) => ({ column, kind: columnRead(plan, column)!.kind }));
  }

  /** Rows taken since the last drain. */
  get rows(): number {
    return this.taken;
  }

  /** Bytes of the records taken since the last drain (about what their tokens hold). */
  get bytes(): number {
    return this.takenBytes;
  }

  /** More partition values than one drain should hold chunks for. */
  get crowded(): boolean {
    return this.byKey.size > MAX_PARTITION_CHUNKS;
  }

  /** Takes the record's row (true), or declines it (false, nothing kept): the reference reads it. */
  take(rec: RecordRanges): boolean {
    const chunk = this.current?.chunk ?? this.scratch;
    if (!this.scanner.take(rec, chunk)) return false;
    const tuple = this.tupleOfLastRow(chunk);
    if (tuple === null) {
      chunk.removeLastRow();
      return false;
    }
    this.taken++;
    this.takenBytes += this.plan.parsedPart === 'key' ? rec.keyEnd - rec.keyStart : rec.valueEnd - rec.valueStart;
    if (this.current !== null && this.current.tuple.key === tuple.key) return true;
    let target = this.byKey.get(tuple.key);
    if (target === undefined) {
      target = { tuple, chunk: new TokenChunk(this.plan.columns.length) };
      this.byKey.set(tuple.key, target);
    }
    if (target.chunk !== chunk) chunk.moveLastRowTo(target.chunk);
    this.current = target;
    return true;
  }

  /** Hands every partition's rows to `write` (which must be done with the chunk when it resolves), and starts over. */
  async drain(write: (tuple: PartitionTuple, chunk: TokenChunk) => Promise<void>): Promise<void> {
    for (const { tuple, chunk } of this.byKey.values()) {
      if (chunk.rows > 0) await write(tuple, chunk);
      chunk.clear();
    }
    this.taken = 0;
    this.takenBytes = 0;
    if (this.crowded) {
      this.byKey.clear();
      this.current = null;
    }
  }

  private tupleOfLastRow(chunk: TokenChunk): PartitionTuple | null {
    for (const { column, kind } of this.sources) this.row[column] = tokenValue(kind, chunk.lastRowToken(column));
    try {
      return this.plan.partitionTuple(this.row);
    } catch {
      return null;
    }
  }
}

/** Partition values a TokenRows keeps chunks for before a drain lets them go. */
const MAX_PARTITION_CHUNKS = 64;

/** The value a token stands for, in the reference's row shapes (coerce.ts). */
function tokenValue(kind: Kind, token: Buffer): Row[number] {
  if (token.length === 1 && token[0] === NULL_TOKEN) return null;
  switch (kind) {
    case Kind.String:
      return token.toString('utf8');
    case Kind.Boolean:
      return token[0] === 0x74 || token[0] === 0x31; // true, 1
    case Kind.Double:
      return Number(token.toString('latin1'));
    default: {
      // int, long, date, timestamps: at most 16 digits, exact in a double
      const negative = token[0] === MINUS;
      let n = 0;
      for (let i = negative ? 1 : 0; i < token.length; i++) n = n * 10 + (token[i] - ZERO);
      return negative ? -n : n;
    }
  }
}
