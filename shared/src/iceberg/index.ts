/**
 * The Iceberg module: table metadata, schemas, partition specs, manifests, manifest lists
 * and snapshot summaries for format version 2, with a small Avro implementation beneath.
 */
export * from './types.js';
export { IcebergError, type IcebergErrorKind } from './errors.js';
export * from './schema.js';
export * from './partition.js';
export * from './metadata.js';
export * from './manifest-summary.js';
export * from './manifest.js';
export * from './manifest-list.js';
export * from './summary.js';
export { referencedLocations } from './referenced.js';
export { decimalRequiredBytes } from './avro-types.js';
export * as avro from './avro/index.js';
