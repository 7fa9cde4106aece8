import { gunzipSync } from 'node:zlib';

/** Codec ids in the low three bits of a record batch's attributes. */
export const Codec = { NONE: 0, GZIP: 1, SNAPPY: 2, LZ4: 3, ZSTD: 4 } as const;
export const CODEC_NAMES = ['none', 'gzip', 'snappy', 'lz4', 'zstd'];

/**
 * Decompresses the records section of a batch. Stored batches stay compressed as produced; this
 * is only needed where the broker must look at individual records (timestamp lookups).
 */
export type Decompressor = (data: Buffer) => Buffer;

const decompressors = new Map<number, Decompressor>([[Codec.GZIP, (d) => gunzipSync(d)]]);

export function registerDecompressor(codec: number, fn: Decompressor): void {
  decompressors.set(codec, fn);
}

export function decompress(codec: number, data: Buffer): Buffer {
  if (codec === Codec.NONE) return data;
  const fn = decompressors.get(codec);
  if (!fn) throw new Error(`no decompressor for codec ${CODEC_NAMES[codec] ?? codec}`);
  return fn(data);
}

export function isKnownCodec(codec: number): boolean {
  return codec >= Codec.NONE && codec <= Codec.ZSTD;
}
