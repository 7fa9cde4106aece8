/**
 * Reads a Parquet file's footer (its FileMetaData) without reading its data: the row count
 * and the schema's columns, with their Iceberg field ids. The commit service checks reported
 * data files with it before admitting them (services/commit/src/report-files.ts).
 *
 * A Parquet file is `PAR1 <data> <footer> <footer length: u32 LE> PAR1`; the footer is a
 * Thrift compact-protocol struct. Only the fields we use are interpreted; the rest are
 * skipped by type. The decoder trusts nothing: every read is bounds-checked, nesting is
 * limited and list sizes cannot exceed the bytes left, so a crafted file fails with a
 * FooterError instead of hanging or exhausting memory.
 */
import type { Storage } from '../storage/index.js';

export class FooterError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FooterError';
  }
}

/** Parquet physical types (parquet.thrift `Type`). */
export const PhysicalType = {
  BOOLEAN: 0,
  INT32: 1,
  INT64: 2,
  INT96: 3,
  FLOAT: 4,
  DOUBLE: 5,
  BYTE_ARRAY: 6,
  FIXED_LEN_BYTE_ARRAY: 7,
} as const;

export const PHYSICAL_TYPE_NAMES = ['BOOLEAN', 'INT32', 'INT64', 'INT96', 'FLOAT', 'DOUBLE', 'BYTE_ARRAY', 'FIXED_LEN_BYTE_ARRAY'];

/** Parquet repetition (parquet.thrift `FieldRepetitionType`). */
export const Repetition = { REQUIRED: 0, OPTIONAL: 1, REPEATED: 2 } as const;

/** One element of the footer's flattened schema (parquet.thrift `SchemaElement`). */
export interface SchemaElement {
  name: string;
  /** Absent for groups (the root, structs, lists, maps). */
  type?: number;
  typeLength?: number;
  repetition?: number;
  numChildren?: number;
  scale?: number;
  precision?: number;
  fieldId?: number;
}

export interface ParquetFooter {
  numRows: number;
  /** The schema as stored: the root first, then its descendants depth first. */
  schema: SchemaElement[];
}

const MAGIC = 0x31524150; // "PAR1" as a little-endian u32
const MAX_DEPTH = 64;

/** The Thrift compact protocol, just enough to walk a struct. */
class CompactReader {
  pos = 0;
  constructor(private readonly bytes: Uint8Array) {}

  private need(n: number): void {
    if (n < 0 || this.pos + n > this.bytes.length) throw new FooterError(`footer truncated at byte ${this.pos}`);
  }

  byte(): number {
    this.need(1);
    return this.bytes[this.pos++];
  }

  varint(): bigint {
    let result = 0n;
    for (let shift = 0n; shift < 70n; shift += 7n) {
      const b = this.byte();
      result |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return result;
    }
    throw new FooterError(`footer has an overlong varint at byte ${this.pos}`);
  }

  zigzag(): bigint {
    const v = this.varint();
    return (v >> 1n) ^ -(v & 1n);
  }

  int(): number {
    const v = this.zigzag();
    if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER))
      throw new FooterError(`footer holds an integer out of range at byte ${this.pos}`);
    return Number(v);
  }

  binary(): Uint8Array {
    const n = Number(this.varint());
    this.need(n);
    const out = this.bytes.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  /** Calls `field(id, type)` for each field of a struct; the callback reads or skips the value. */
  struct(field: (id: number, type: number) => void): void {
    let last = 0;
    for (;;) {
      const header = this.byte();
      const type = header & 0x0f;
      if (type === 0) return;
      const delta = header >> 4;
      last = delta === 0 ? this.int() : last + delta;
      field(last, type);
    }
  }

  /** A list's element type and size (elements follow). */
  listHeader(): { type: number; size: number } {
    const header = this.byte();
    let size = header >> 4;
    if (size === 15) size = Number(this.varint());
    // Every element takes at least one byte, except booleans in some writers: bound by what is left.
    if (size > this.bytes.length - this.pos)
      throw new FooterError(`footer list of ${size} elements at byte ${this.pos} exceeds the footer`);
    return { type: header & 0x0f, size };
  }

  skip(type: number, depth = 0): void {
    if (depth > MAX_DEPTH) throw new FooterError('footer nests too deeply');
    switch (type) {
      case 1: // BOOLEAN_TRUE
      case 2: // BOOLEAN_FALSE (a struct field's value is in its header)
        return;
      case 3: // byte
        this.byte();
        return;
      case 4: // i16
      case 5: // i32
      case 6: // i64
        this.varint();
        return;
      case 7: // double
        this.need(8);
        this.pos += 8;
        return;
      case 8: // binary
        this.binary();
        return;
      case 9: // list
      case 10: {
        // set
        const { type: element, size } = this.listHeader();
        for (let i = 0; i < size; i++) {
          if (element === 1 || element === 2) this.byte();
          else this.skip(element, depth + 1);
        }
        return;
      }
      case 11: {
        // map
        const size = Number(this.varint());
        if (size === 0) return;
        if (size > this.bytes.length - this.pos) throw new FooterError(`footer map of ${size} entries exceeds the footer`);
        const kinds = this.byte();
        for (let i = 0; i < size; i++) {
          this.skip(kinds >> 4, depth + 1);
          this.skip(kinds & 0x0f, depth + 1);
        }
        return;
      }
      case 12:
        this.struct((_, t) => this.skip(t, depth + 1));
        return;
      default:
        throw new FooterError(`footer has an unknown Thrift type ${type} at byte ${this.pos}`);
    }
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: false });

function schemaElement(r: CompactReader): SchemaElement {
  const e: SchemaElement = { name: '' };
  r.struct((id, type) => {
    const isInt = type === 5 || type === 4 || type === 6;
    if (id === 1 && isInt) e.type = r.int();
    else if (id === 2 && isInt) e.typeLength = r.int();
    else if (id === 3 && isInt) e.repetition = r.int();
    else if (id === 4 && type === 8) e.name = utf8.decode(r.binary());
    else if (id === 5 && isInt) e.numChildren = r.int();
    else if (id === 7 && isInt) e.scale = r.int();
    else if (id === 8 && isInt) e.precision = r.int();
    else if (id === 9 && isInt) e.fieldId = r.int();
    else r.skip(type);
  });
  return e;
}

/** Decodes a FileMetaData struct (the footer without its length and magic). */
export function parseFooter(bytes: Uint8Array): ParquetFooter {
  const r = new CompactReader(bytes);
  let numRows: number | undefined;
  let schema: SchemaElement[] | undefined;
  r.struct((id, type) => {
    if (id === 2 && type === 9) {
      const { type: element, size } = r.listHeader();
      if (element !== 12) throw new FooterError('footer schema is not a list of structs');
      schema = Array.from({ length: size }, () => schemaElement(r));
    } else if (id === 3 && type === 6) numRows = r.int();
    else r.skip(type);
  });
  if (numRows === undefined || numRows < 0) throw new FooterError('footer has no row count');
  if (!schema || schema.length === 0) throw new FooterError('footer has no schema');
  return { numRows, schema };
}

/** The top-level columns of a footer's schema (the root's children), each with its descendants' count. */
export function topLevelColumns(footer: ParquetFooter): { element: SchemaElement; nested: boolean }[] {
  const [root, ...rest] = footer.schema;
  const out: { element: SchemaElement; nested: boolean }[] = [];
  let i = 0;
  // Walks the depth-first list: a child with children owns the next numChildren subtrees.
  const subtree = (): void => {
    const e = rest[i++];
    if (!e) throw new FooterError('footer schema is shorter than its child counts say');
    for (let c = 0; c < (e.numChildren ?? 0); c++) subtree();
  };
  for (let c = 0; c < (root.numChildren ?? 0); c++) {
    const element = rest[i];
    subtree();
    out.push({ element, nested: (element?.numChildren ?? 0) > 0 || element?.type === undefined });
  }
  if (i !== rest.length) throw new FooterError('footer schema has elements outside its root');
  return out;
}

/** Footer reads start with this many bytes from the end, enough for a usual footer in one read. */
const TAIL_GUESS = 64 * 1024;
/** A larger footer is refused: ours are a few kB, and the length comes from the file. */
const MAX_FOOTER = 16 * 1024 * 1024;

/**
 * Reads a stored Parquet file's footer, reading only its first 4 bytes and its tail. `size`
 * is the file's size (from a stat). Throws FooterError for anything that is not Parquet.
 */
export async function readParquetFooter(storage: Storage, location: string, size: number): Promise<ParquetFooter> {
  if (size < 12) throw new FooterError(`${size} bytes is too short for Parquet`);
  const head = await storage.readRange(location, 0, 4);
  if (head.length < 4 || new DataView(head.buffer, head.byteOffset, 4).getUint32(0, true) !== MAGIC)
    throw new FooterError('it does not start with the Parquet magic PAR1');
  const guess = Math.min(size, TAIL_GUESS);
  let tail = await storage.readRange(location, size - guess, guess);
  if (tail.length !== guess) throw new FooterError('it changed while being read');
  const view = new DataView(tail.buffer, tail.byteOffset, tail.length);
  if (view.getUint32(tail.length - 4, true) !== MAGIC) throw new FooterError('it does not end with the Parquet magic PAR1');
  const footerLength = view.getUint32(tail.length - 8, true);
  if (footerLength + 12 > size || footerLength > MAX_FOOTER)
    throw new FooterError(`its footer length ${footerLength} does not fit a file of ${size} bytes`);
  if (footerLength + 8 > tail.length) {
    tail = await storage.readRange(location, size - footerLength - 8, footerLength + 8);
    if (tail.length !== footerLength + 8) throw new FooterError('it changed while being read');
  }
  const footer = tail.subarray(tail.length - 8 - footerLength, tail.length - 8);
  return parseFooter(footer);
}
