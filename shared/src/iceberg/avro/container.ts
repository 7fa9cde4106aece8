/**
 * Avro object container files: `Obj\x01`, a metadata map (`avro.schema`, `avro.codec`
 * and any user keys), a 16-byte sync marker, then blocks of (record count, byte size,
 * records, sync marker). Codecs: `null` and `deflate` (raw RFC 1951, no zlib header).
 */
import { randomBytes } from 'node:crypto';
import { deflateRawSync, inflateRawSync } from 'node:zlib';
import { ByteSink, ByteSource } from './bytes.js';
import { compileSchema } from './codec.js';
import { AvroError } from './errors.js';
import type { AvroSchema } from './schema.js';

export type AvroCodecName = 'null' | 'deflate';

const MAGIC = [0x4f, 0x62, 0x6a, 0x01];
const RESERVED_KEYS = new Set(['avro.schema', 'avro.codec']);

export interface ContainerWriteOptions {
  codec?: AvroCodecName;
  /** Extra header metadata (Iceberg puts `schema`, `partition-spec`, ... here). */
  metadata?: Record<string, string>;
  /** Target uncompressed block size; a block is closed once it grows past this. */
  blockBytes?: number;
}

export interface AvroContainer<T = Record<string, unknown>> {
  schema: AvroSchema;
  codec: AvroCodecName;
  /** Header metadata other than avro.schema and avro.codec. */
  metadata: Record<string, string>;
  records: T[];
}

export function writeContainer(schema: AvroSchema, records: Iterable<unknown>, options: ContainerWriteOptions = {}): Uint8Array {
  const codec = options.codec ?? 'deflate';
  const blockBytes = options.blockBytes ?? 64 * 1024;
  const { encode } = compileSchema(schema);
  const sync = randomBytes(16);

  const out = new ByteSink(8192);
  out.raw(Uint8Array.from(MAGIC));
  const header: [string, string][] = [
    ['avro.schema', JSON.stringify(schema)],
    ['avro.codec', codec],
  ];
  for (const [k, v] of Object.entries(options.metadata ?? {})) {
    if (RESERVED_KEYS.has(k)) throw new AvroError(`metadata key ${k} is reserved`);
    header.push([k, v]);
  }
  out.long(header.length);
  for (const [k, v] of header) {
    out.string(k);
    out.bytes(Buffer.from(v, 'utf8'));
  }
  out.byte(0);
  out.raw(sync);

  const block = new ByteSink(blockBytes + 1024);
  let count = 0;
  const flush = () => {
    if (count === 0) return;
    const data = block.written();
    const payload = codec === 'deflate' ? deflateRawSync(data) : data;
    out.long(count);
    out.long(payload.length);
    out.raw(payload);
    out.raw(sync);
    block.reset();
    count = 0;
  };
  for (const record of records) {
    encode(block, record);
    count++;
    if (block.pos >= blockBytes) flush();
  }
  flush();
  return out.written().slice();
}

export function readContainer<T = Record<string, unknown>>(bytes: Uint8Array): AvroContainer<T> {
  const src = new ByteSource(bytes);
  for (let i = 0; i < 4; i++) {
    if (bytes[i] !== MAGIC[i]) throw new AvroError('not an Avro object container file (bad magic)');
  }
  src.pos = 4;

  const meta: Record<string, string> = {};
  for (;;) {
    let count = src.long();
    if (count === 0) break;
    if (count < 0) {
      count = -count;
      src.long();
    }
    for (let i = 0; i < count; i++) {
      const key = src.string();
      meta[key] = Buffer.from(src.bytes()).toString('utf8');
    }
  }
  const sync = src.fixed(16);

  const schemaText = meta['avro.schema'];
  if (schemaText === undefined) throw new AvroError('container header has no avro.schema');
  let schema: AvroSchema;
  try {
    schema = JSON.parse(schemaText) as AvroSchema;
  } catch {
    throw new AvroError('container header avro.schema is not valid JSON');
  }
  const codec = (meta['avro.codec'] ?? 'null') as AvroCodecName;
  if (codec !== 'null' && codec !== 'deflate') throw new AvroError(`unsupported Avro codec "${codec}"`);
  const { decode } = compileSchema(schema);

  const records: T[] = [];
  while (src.remaining > 0) {
    const count = src.long();
    const size = src.long();
    if (count < 0 || size < 0 || size > src.remaining) throw new AvroError(`corrupt block header at byte ${src.pos}`);
    const raw = bytes.subarray(src.pos, src.pos + size);
    src.pos += size;
    const data = codec === 'deflate' ? new Uint8Array(inflateRawSync(raw)) : raw;
    const block = new ByteSource(data);
    for (let i = 0; i < count; i++) records.push(decode(block) as T);
    if (block.remaining !== 0) throw new AvroError(`block ending at byte ${src.pos} has ${block.remaining} trailing bytes`);
    const marker = src.fixed(16);
    if (!marker.every((b, i) => b === sync[i])) throw new AvroError(`sync marker mismatch after block ending at byte ${src.pos - 16}`);
  }

  const metadata: Record<string, string> = {};
  for (const [k, v] of Object.entries(meta)) if (!RESERVED_KEYS.has(k)) metadata[k] = v;
  return { schema, codec, metadata, records };
}
