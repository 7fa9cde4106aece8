/**
 * Compiles an Avro schema into an encoder and a decoder for its binary encoding. Compiling
 * once per file keeps the per-record work to a walk over prebuilt closures, and lets error
 * messages name the field path without tracking it at run time.
 *
 * JavaScript shapes: records are plain objects keyed by field name; unions take the value
 * of whichever branch fits (null/undefined select "null"); arrays are arrays; maps are
 * `Map<string, V>` or plain objects; bytes and fixed are Uint8Array; int, long, float and
 * double are numbers (long also accepts bigint); enums are their symbol strings. Decoding
 * yields the same shapes with null for null and maps as plain objects.
 */
import type { AvroField, AvroSchema } from './schema.js';
import type { ByteSink, ByteSource } from './bytes.js';
import { AvroError } from './errors.js';

export type Encoder = (sink: ByteSink, value: unknown) => void;
export type Decoder = (source: ByteSource) => unknown;

interface Compiled {
  encode: Encoder;
  decode: Decoder;
  /** Does a JS value belong to this schema's branch of a union? */
  accepts: (value: unknown) => boolean;
}

type Named = Map<string, () => Compiled>;

export interface AvroCodec {
  encode: Encoder;
  decode: Decoder;
}

export function compileSchema(schema: AvroSchema): AvroCodec {
  const compiled = compile(schema, new Map(), '');
  return { encode: compiled.encode, decode: compiled.decode };
}

const isBytes = (v: unknown): v is Uint8Array => v instanceof Uint8Array;
const isNumber = (v: unknown) => typeof v === 'number' || typeof v === 'bigint';
const isObject = (v: unknown) => typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (v instanceof Uint8Array) return 'bytes';
  return typeof v;
}

function mismatch(expected: string, value: unknown, path: string): AvroError {
  return new AvroError(`expected ${expected}, got ${describe(value)}`, path || '<root>');
}

function compile(schema: AvroSchema, named: Named, path: string): Compiled {
  if (typeof schema === 'string') return compilePrimitiveOrRef(schema, named, path);
  if (Array.isArray(schema)) return compileUnion(schema, named, path);
  switch (schema.type) {
    case 'record':
      return compileRecord(schema.name, schema.fields, named, path);
    case 'array':
      return compileArray(compile(schema.items, named, path), path);
    case 'map':
      return compileMap(compile(schema.values, named, path), path);
    case 'fixed':
      return define(named, schema.name, compileFixed(schema.size, path));
    case 'enum':
      return define(named, schema.name, compileEnum(schema.symbols, path));
    default:
      // Annotated primitive: logical types share their underlying encoding.
      return compilePrimitiveOrRef((schema as { type: string }).type, named, path);
  }
}

function define(named: Named, name: string, c: Compiled): Compiled {
  named.set(name, () => c);
  return c;
}

function compilePrimitiveOrRef(name: string, named: Named, path: string): Compiled {
  switch (name) {
    case 'null':
      return { accepts: (v) => v === null || v === undefined, encode: () => {}, decode: () => null };
    case 'boolean':
      return {
        accepts: (v) => typeof v === 'boolean',
        encode: (s, v) => {
          if (typeof v !== 'boolean') throw mismatch('boolean', v, path);
          s.byte(v ? 1 : 0);
        },
        decode: (src) => src.byte() !== 0,
      };
    case 'int':
      return {
        accepts: isNumber,
        encode: (s, v) => {
          if (typeof v !== 'number' || !Number.isInteger(v) || v < -2147483648 || v > 2147483647) throw mismatch('int', v, path);
          s.long(v);
        },
        decode: (src) => src.long(),
      };
    case 'long':
      return {
        accepts: isNumber,
        encode: (s, v) => {
          if (typeof v === 'bigint') s.bigLong(v);
          else if (typeof v === 'number' && Number.isSafeInteger(v)) s.long(v);
          else throw mismatch('long', v, path);
        },
        decode: (src) => src.long(),
      };
    case 'float':
      return {
        accepts: (v) => typeof v === 'number',
        encode: (s, v) => {
          if (typeof v !== 'number') throw mismatch('float', v, path);
          s.float(v);
        },
        decode: (src) => src.float(),
      };
    case 'double':
      return {
        accepts: (v) => typeof v === 'number',
        encode: (s, v) => {
          if (typeof v !== 'number') throw mismatch('double', v, path);
          s.double(v);
        },
        decode: (src) => src.double(),
      };
    case 'bytes':
      return {
        accepts: isBytes,
        encode: (s, v) => {
          if (!isBytes(v)) throw mismatch('bytes', v, path);
          s.bytes(v);
        },
        decode: (src) => src.bytes(),
      };
    case 'string':
      return {
        accepts: (v) => typeof v === 'string',
        encode: (s, v) => {
          if (typeof v !== 'string') throw mismatch('string', v, path);
          s.string(v);
        },
        decode: (src) => src.string(),
      };
    default: {
      const ref = named.get(name);
      if (!ref) throw new AvroError(`unknown Avro type "${name}"`, path || '<root>');
      // Late-bound so recursive records resolve to the finished definition.
      return { accepts: (v) => ref().accepts(v), encode: (s, v) => ref().encode(s, v), decode: (src) => ref().decode(src) };
    }
  }
}

function compileUnion(branches: AvroSchema[], named: Named, path: string): Compiled {
  const compiled = branches.map((b) => compile(b, named, path));
  const nullIndex = branches.indexOf('null');
  // The common Iceberg case, ["null", T], gets a branch-free fast path.
  if (branches.length === 2 && nullIndex === 0) {
    const inner = compiled[1];
    return {
      accepts: (v) => v === null || v === undefined || inner.accepts(v),
      encode: (s, v) => {
        if (v === null || v === undefined) s.byte(0);
        else {
          s.byte(2); // zig-zag of branch index 1
          inner.encode(s, v);
        }
      },
      decode: (src) => {
        const i = src.long();
        if (i === 0) return null;
        if (i === 1) return inner.decode(src);
        throw new AvroError(`union branch ${i} out of range`, path || '<root>');
      },
    };
  }
  return {
    accepts: (v) => compiled.some((c) => c.accepts(v)),
    encode: (s, v) => {
      const i = compiled.findIndex((c) => c.accepts(v));
      if (i < 0) throw mismatch(`one of ${JSON.stringify(branches)}`, v, path);
      s.long(i);
      compiled[i].encode(s, v);
    },
    decode: (src) => {
      const i = src.long();
      const c = compiled[i];
      if (!c) throw new AvroError(`union branch ${i} out of range`, path || '<root>');
      return c.decode(src);
    },
  };
}

function compileRecord(name: string, fields: AvroField[], named: Named, path: string): Compiled {
  let self: Compiled | undefined;
  named.set(name, () => self as Compiled);
  const parts = fields.map((f) => ({ name: f.name, codec: compile(f.type, named, path ? `${path}.${f.name}` : f.name) }));
  const n = parts.length;
  self = {
    accepts: isObject,
    encode: (s, v) => {
      if (!isObject(v)) throw mismatch(`record ${name}`, v, path);
      const obj = v as Record<string, unknown>;
      for (let i = 0; i < n; i++) parts[i].codec.encode(s, obj[parts[i].name]);
    },
    decode: (src) => {
      const obj: Record<string, unknown> = {};
      for (let i = 0; i < n; i++) obj[parts[i].name] = parts[i].codec.decode(src);
      return obj;
    },
  };
  return self;
}

/** Reads Avro's blocked encoding shared by arrays and maps: count, optional byte size, items. */
function readBlocks(src: ByteSource, item: () => void): void {
  for (;;) {
    let count = src.long();
    if (count === 0) return;
    if (count < 0) {
      count = -count;
      src.long(); // block size in bytes, only useful for skipping
    }
    for (let i = 0; i < count; i++) item();
  }
}

function compileArray(items: Compiled, path: string): Compiled {
  return {
    accepts: Array.isArray,
    encode: (s, v) => {
      if (!Array.isArray(v)) throw mismatch('array', v, path);
      if (v.length > 0) {
        s.long(v.length);
        for (let i = 0; i < v.length; i++) items.encode(s, v[i]);
      }
      s.byte(0);
    },
    decode: (src) => {
      const out: unknown[] = [];
      readBlocks(src, () => out.push(items.decode(src)));
      return out;
    },
  };
}

function compileMap(values: Compiled, path: string): Compiled {
  return {
    accepts: (v) => v instanceof Map || isObject(v),
    encode: (s, v) => {
      const entries = v instanceof Map ? [...v.entries()] : isObject(v) ? Object.entries(v as object) : undefined;
      if (!entries) throw mismatch('map', v, path);
      if (entries.length > 0) {
        s.long(entries.length);
        for (const [k, val] of entries) {
          s.string(String(k));
          values.encode(s, val);
        }
      }
      s.byte(0);
    },
    decode: (src) => {
      const out: Record<string, unknown> = {};
      readBlocks(src, () => {
        const k = src.string();
        out[k] = values.decode(src);
      });
      return out;
    },
  };
}

function compileFixed(size: number, path: string): Compiled {
  return {
    accepts: (v) => isBytes(v) && v.length === size,
    encode: (s, v) => {
      if (!isBytes(v) || v.length !== size) throw mismatch(`fixed[${size}]`, v, path);
      s.raw(v);
    },
    decode: (src) => src.fixed(size),
  };
}

function compileEnum(symbols: string[], path: string): Compiled {
  return {
    accepts: (v) => typeof v === 'string' && symbols.includes(v),
    encode: (s, v) => {
      const i = typeof v === 'string' ? symbols.indexOf(v) : -1;
      if (i < 0) throw mismatch(`one of ${symbols.join('|')}`, v, path);
      s.long(i);
    },
    decode: (src) => {
      const i = src.long();
      if (i < 0 || i >= symbols.length) throw new AvroError(`enum index ${i} out of range`, path || '<root>');
      return symbols[i];
    },
  };
}
