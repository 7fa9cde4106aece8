// Type declarations for the pure-JS codecs, which ship none. The compressors are declared for
// the tests, which give kafkajs snappy and lz4 producers with them.
declare module 'snappyjs' {
  export function uncompress<T extends Uint8Array | ArrayBuffer>(compressed: T, maxLength?: number): T;
  export function compress<T extends Uint8Array | ArrayBuffer>(uncompressed: T): T;
}
declare module 'lz4js' {
  export function decompress(src: Uint8Array, maxSize?: number): Uint8Array;
  /** An LZ4 frame (the format Kafka uses). */
  export function compress(src: Uint8Array, maxSize?: number): Uint8Array;
}
