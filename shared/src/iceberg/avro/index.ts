export { compileSchema, type AvroCodec } from './codec.js';
export { readContainer, writeContainer, type AvroCodecName, type AvroContainer, type ContainerWriteOptions } from './container.js';
export { AvroError } from './errors.js';
export * from './schema.js';
