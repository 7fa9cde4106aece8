/**
 * Kafka's record-batch codecs, decompression only: ingestion's fetch path reads compressed
 * batches with it, the dev broker its stored batches for timestamp lookups.
 */
import { gunzipSync } from 'node:zlib';
import { uncompress as snappyUncompress } from 'snappyjs';
import { decompress as lz4Decompress } from 'lz4js';
import { decompress as zstdDecompress } from 'fzstd';

/** Codec ids in the low three bits of a record batch's attributes. */
export const Codec = { NONE: 0, GZIP: 1, SNAPPY: 2, LZ4: 3, ZSTD: 4 } as const;

/**
 * Decompresses the records section of a batch. Pure-JS decoders except gzip (Node 20's zlib has
 * no zstd, and the native snappy and lz4 packages need install scripts).
 */
export function decompress(codec: number, data: Buffer): Buffer {
  switch (codec) {
    case Codec.NONE:
      return data;
    case Codec.GZIP:
      return gunzipSync(data);
    case Codec.SNAPPY:
      return snappy(data);
    case Codec.LZ4:
      return toBuffer(lz4Decompress(data)); // Kafka uses the LZ4 frame format
    case Codec.ZSTD:
      return toBuffer(zstdDecompress(data));
    default:
      throw new RangeError(`unknown compression codec ${codec}`);
  }
}

export function isKnownCodec(codec: number): boolean {
  return codec >= Codec.NONE && codec <= Codec.ZSTD;
}

// The Java client frames snappy the xerial way (magic, two versions, then size-prefixed blocks);
// librdkafka sends raw snappy. Both occur on a real broker.
const XERIAL_MAGIC = Buffer.from([0x82, 0x53, 0x4e, 0x41, 0x50, 0x50, 0x59, 0x00]);
const XERIAL_HEADER = 16;

function snappy(data: Buffer): Buffer {
  if (data.length < XERIAL_HEADER || !data.subarray(0, 8).equals(XERIAL_MAGIC)) return toBuffer(snappyUncompress(data));
  const blocks: Buffer[] = [];
  for (let pos = XERIAL_HEADER; pos + 4 <= data.length; ) {
    const size = data.readInt32BE(pos);
    pos += 4;
    blocks.push(toBuffer(snappyUncompress(data.subarray(pos, pos + size))));
    pos += size;
  }
  return Buffer.concat(blocks);
}

function toBuffer(u: Uint8Array | ArrayBuffer): Buffer {
  return u instanceof Uint8Array ? Buffer.from(u.buffer, u.byteOffset, u.byteLength) : Buffer.from(u);
}
