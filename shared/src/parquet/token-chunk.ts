/**
 * Rows as text tokens, one byte buffer per column: what the transformation's fast path
 * (services/transformation/src/core/token-scan.ts) copies out of the record bytes, and what the
 * Parquet writer hands to DuckDB in one statement per chunk (ParquetFileWriter.appendTokens),
 * which splits and casts them natively. No JS value is made per cell on the way.
 *
 * A column's buffer holds its tokens in row order, each followed by TOKEN_END (0x01); a null
 * is the single byte NULL_TOKEN (0x02). Both are control characters, which neither a JSON
 * string (raw) nor a token the scanner accepts can contain, so a token never holds either.
 * A token is the value's text as DuckDB casts it to the column's type: the characters of a
 * string, the literal of a number or boolean, and a timestamp as its microseconds since the
 * epoch.
 */

export const TOKEN_END = 0x01;
export const NULL_TOKEN = 0x02;

const INITIAL_COLUMN_BYTES = 16 * 1024;

/**
 * Tokens from 16 bytes up to this are copied four bytes at a time through DataViews (shorter
 * ones byte by byte, longer ones by set() over a subarray). A subarray is an object per copy: on the pipeline bench's wide shape
 * (two strings of 85 and 109 bytes a record) those were 45 % of the bytes transformation's JS
 * allocated (a sampling heap profile of phase (b)), and the collector's work grows with them.
 * One copy, Node 20 on this machine, 2M copies each:
 *
 *   bytes   byte loop   word loop   set(subarray)
 *      64      68 ns       28 ns       49 ns
 *     100     106 ns       43 ns       49 ns
 *     150     170 ns       68 ns       53 ns
 *     250     282 ns      117 ns       54 ns
 */
const WORD_COPY_BELOW = 128;

/** `n` (below 10^8) in decimal at `at`, padded with zeros to `width` digits; returns the end. */
function writeDigits(buf: Buffer, at: number, n: number, width: number): number {
  let digits = 1;
  for (let x = n; x >= 10; x = (x / 10) | 0) digits++;
  if (digits < width) digits = width;
  let x = n;
  for (let i = at + digits - 1; i >= at; i--) {
    const q = (x / 10) | 0;
    buf[i] = 0x30 + (x - q * 10);
    x = q;
  }
  return at + digits;
}

const viewOf = (bytes: Uint8Array) => new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);

export class TokenChunk {
  /** Column buffers; a column's bytes end at `ends[i]`. */
  private buffers: Buffer[];
  /** A DataView of each column's buffer, for word copies. */
  private views: DataView[];
  /** The source of the last word copy and its DataView (viewOfSource). */
  private source: Uint8Array | null = null;
  private sourceView: DataView | null = null;
  private readonly ends: number[];
  private rowCount = 0;
  /** The ends at the start of the current row, to drop a row half written. */
  private readonly rowStart: number[];

  constructor(readonly width: number) {
    this.buffers = Array.from({ length: width }, () => Buffer.allocUnsafe(INITIAL_COLUMN_BYTES));
    this.views = this.buffers.map(viewOf);
    this.ends = new Array<number>(width).fill(0);
    this.rowStart = new Array<number>(width).fill(0);
  }

  get rows(): number {
    return this.rowCount;
  }

  /** Bytes held over all columns (what the rows cost in memory until written). */
  get bytes(): number {
    let total = 0;
    for (const end of this.ends) total += end;
    return total;
  }

  /** Starts a row: every column gets exactly one token before endRow() or dropRow(). */
  beginRow(): void {
    for (let i = 0; i < this.width; i++) this.rowStart[i] = this.ends[i];
  }

  endRow(): void {
    this.rowCount++;
  }

  /** Forgets the tokens written since beginRow() (the record went to the reference path). */
  dropRow(): void {
    for (let i = 0; i < this.width; i++) this.ends[i] = this.rowStart[i];
  }

  /** Bytes `src[start, end)` as the column's token. */
  put(column: number, src: Uint8Array, start: number, end: number): void {
    const length = end - start;
    const at = this.reserve(column, length + 1);
    const buf = this.buffers[column];
    if (length < 16) for (let i = 0; i < length; i++) buf[at + i] = src[start + i];
    else if (length < WORD_COPY_BELOW) {
      const from = this.viewOfSource(src);
      const to = this.views[column];
      let i = 0;
      for (; i + 4 <= length; i += 4) to.setInt32(at + i, from.getInt32(start + i, true), true);
      for (; i < length; i++) buf[at + i] = src[start + i];
    } else buf.set(src.subarray(start, end), at);
    buf[at + length] = TOKEN_END;
    this.ends[column] = at + length + 1;
  }

  /** Bytes `src[start, end)` followed by `zeros` zero digits (an integer scaled by a power of ten) as the column's token. */
  putScaled(column: number, src: Uint8Array, start: number, end: number, zeros: number): void {
    const length = end - start;
    const at = this.reserve(column, length + zeros + 1);
    const buf = this.buffers[column];
    for (let i = 0; i < length; i++) buf[at + i] = src[start + i];
    for (let i = 0; i < zeros; i++) buf[at + length + i] = 0x30;
    buf[at + length + zeros] = TOKEN_END;
    this.ends[column] = at + length + zeros + 1;
  }

  /** An integer (a safe one) as the column's token, written digit by digit. */
  putInteger(column: number, value: number): void {
    const at = this.reserve(column, 18);
    const buf = this.buffers[column];
    let p = at;
    if (value < 0) buf[p++] = 0x2d;
    const n = value < 0 ? -value : value;
    // Two halves below 10^8 each, so the digits come from 32-bit integer arithmetic.
    const high = Math.floor(n / 1e8);
    const low = n - high * 1e8;
    if (high > 0) {
      p = writeDigits(buf, p, high, 0);
      p = writeDigits(buf, p, low, 8);
    } else p = writeDigits(buf, p, low, 0);
    buf[p] = TOKEN_END;
    this.ends[column] = p + 1;
  }

  putNull(column: number): void {
    const at = this.reserve(column, 2);
    const buf = this.buffers[column];
    buf[at] = NULL_TOKEN;
    buf[at + 1] = TOKEN_END;
    this.ends[column] = at + 2;
  }

  /** The last row's token of a column, without its separator (valid until the next row begins). */
  lastRowToken(column: number): Buffer {
    return this.buffers[column].subarray(this.rowStart[column], this.ends[column] - 1);
  }

  /** Forgets the last row (right after endRow(), before the next beginRow()). */
  removeLastRow(): void {
    this.dropRow();
    this.rowCount--;
  }

  /** Moves the last row (right after endRow()) to the end of `to`. */
  moveLastRowTo(to: TokenChunk): void {
    for (let i = 0; i < this.width; i++) {
      const start = this.rowStart[i];
      const length = this.ends[i] - start;
      const at = to.reserve(i, length);
      this.buffers[i].copy(to.buffers[i], at, start, start + length);
      to.ends[i] = at + length;
    }
    to.rowCount++;
    this.removeLastRow();
  }

  /** The column's tokens without the last separator: what DuckDB splits on TOKEN_END. */
  column(i: number): Buffer {
    return this.buffers[i].subarray(0, Math.max(0, this.ends[i] - 1));
  }

  /** Empties the chunk, keeping its buffers for the next rows. */
  clear(): void {
    this.ends.fill(0);
    this.rowCount = 0;
    this.source = this.sourceView = null;
  }

  /** A DataView of `src`, kept while copies come from it (one record run serves many). */
  private viewOfSource(src: Uint8Array): DataView {
    if (src !== this.source || !this.sourceView) {
      this.source = src;
      this.sourceView = viewOf(src);
    }
    return this.sourceView;
  }

  private reserve(column: number, bytes: number): number {
    const at = this.ends[column];
    const buf = this.buffers[column];
    if (at + bytes > buf.length) {
      const grown = Buffer.allocUnsafe(Math.max(buf.length * 2, at + bytes));
      buf.copy(grown, 0, 0, at);
      this.buffers[column] = grown;
      this.views[column] = viewOf(grown);
    }
    return at;
  }
}
