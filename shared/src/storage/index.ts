export { StorageError, type StorageErrorKind } from './errors.js';
export type { FileInfo, Storage, WriteOptions } from './storage.js';
export { LocalFileStorage, type LocalStorageOptions } from './local.js';
export { RoutingStorage, StorageRegistry, createStorage } from './registry.js';
export {
  baseName,
  isSafeSegment,
  isWithin,
  joinLocation,
  locationsOverlap,
  normalizeLocation,
  schemeOf,
  trimTrailingSlash,
} from './paths.js';
