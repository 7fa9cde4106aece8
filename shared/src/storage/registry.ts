/**
 * Picks the storage for a location by URI scheme. The local filesystem is always there;
 * other backends (an S3-compatible store) register a factory under their scheme. An
 * unknown scheme is a clear error naming what is supported, never a silent fallback.
 */
import { StorageError } from './errors.js';
import { LocalFileStorage, type LocalStorageOptions } from './local.js';
import { schemeOf } from './paths.js';
import { S3Storage, s3OptionsFromEnv } from './s3.js';
import type { FileInfo, Storage, WriteOptions } from './storage.js';

export class StorageRegistry {
  private readonly byScheme = new Map<string, Storage>();
  private readonly local: LocalFileStorage;

  constructor(options: LocalStorageOptions = {}) {
    this.local = new LocalFileStorage(options);
    this.byScheme.set('file', this.local);
  }

  /** Registers a backend for a scheme (`s3`, `gs`...). Replaces an earlier registration. */
  register(scheme: string, storage: Storage): this {
    this.byScheme.set(scheme.toLowerCase(), storage);
    return this;
  }

  /** The storage that handles a location; local mounts take precedence over schemes. */
  forLocation(location: string): Storage {
    if (this.local.handles(location)) return this.local;
    const scheme = schemeOf(location);
    const storage = this.byScheme.get(scheme);
    if (!storage) {
      const supported = [...this.byScheme.keys()].sort().join(', ');
      throw new StorageError(
        'unsupported-scheme',
        `unsupported storage scheme "${scheme}" in ${location} (supported: ${supported}, and absolute paths)`,
        location,
      );
    }
    return storage;
  }
}

/**
 * A Storage that routes every call by location, so code holding one `Storage` can work
 * across backends (a table's data files and metadata may live under different schemes).
 */
export class RoutingStorage implements Storage {
  constructor(private readonly registry: StorageRegistry) {}
  // async so a bad location surfaces as a rejected promise, like every other failure.
  async write(location: string, data: Uint8Array, options?: WriteOptions): Promise<void> {
    return this.registry.forLocation(location).write(location, data, options);
  }
  async read(location: string): Promise<Uint8Array> {
    return this.registry.forLocation(location).read(location);
  }
  async readRange(location: string, offset: number, length: number): Promise<Uint8Array> {
    return this.registry.forLocation(location).readRange(location, offset, length);
  }
  async exists(location: string): Promise<boolean> {
    return this.registry.forLocation(location).exists(location);
  }
  async stat(location: string): Promise<FileInfo | undefined> {
    return this.registry.forLocation(location).stat(location);
  }
  async list(prefix: string): Promise<FileInfo[]> {
    return this.registry.forLocation(prefix).list(prefix);
  }
  async delete(location: string): Promise<boolean> {
    return this.registry.forLocation(location).delete(location);
  }
}

/**
 * The usual entry point: one Storage for every location a process may meet. `s3://` locations
 * are served when the standard AWS variables name credentials (s3.ts s3OptionsFromEnv).
 */
export function createStorage(options: LocalStorageOptions = {}, env: NodeJS.ProcessEnv = process.env): Storage {
  const registry = new StorageRegistry(options);
  const s3 = s3OptionsFromEnv(env);
  if (s3) {
    const storage = new S3Storage(s3);
    registry.register('s3', storage).register('s3a', storage);
  }
  return new RoutingStorage(registry);
}
