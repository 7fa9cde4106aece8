/**
 * Local filesystem storage. Understands `file:///abs/path` URIs and absolute paths, and can
 * additionally expose a directory under another URI prefix (`mounts`), e.g. a warehouse
 * directory that a static HTTP server also publishes as `http://host/warehouse`: files are
 * then written locally while table metadata carries the URI readers will use.
 *
 * Atomicity: data goes to a temporary sibling first; an exclusive `link` (create-if-absent)
 * or a `rename` (overwrite) then publishes it in one step, so no reader sees a partial file.
 */
import { randomBytes } from 'node:crypto';
import type { Dirent } from 'node:fs';
import { link, mkdir, open, readFile, readdir, rename, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { dirname, join, resolve, sep } from 'node:path';
import { StorageError } from './errors.js';
import type { FileInfo, Storage, WriteOptions } from './storage.js';
import { normalizeLocation, trimTrailingSlash } from './paths.js';

export interface LocalStorageOptions {
  /** URI prefix → local directory. `http://127.0.0.1:8080/wh` → `/srv/wh`. */
  mounts?: Record<string, string>;
}

interface Mount {
  prefix: string;
  root: string;
}

export class LocalFileStorage implements Storage {
  private readonly mounts: Mount[];

  constructor(options: LocalStorageOptions = {}) {
    this.mounts = Object.entries(options.mounts ?? {})
      .map(([prefix, root]) => ({ prefix: trimTrailingSlash(prefix), root: resolve(root) }))
      // Longest prefix first so nested mounts win.
      .sort((a, b) => b.prefix.length - a.prefix.length);
  }

  /** True when this storage can address the location (file URI, absolute path or a mount). */
  handles(location: string): boolean {
    return this.mountFor(location) !== undefined || location.startsWith('file://') || location.startsWith('/');
  }

  /** Maps a location to an absolute local path, refusing anything that escapes its root. */
  toPath(location: string): string {
    const mount = this.mountFor(location);
    if (mount) {
      const rel = location.slice(mount.prefix.length).replace(/^\/+/, '');
      const path = resolve(mount.root, decodeURIComponent(rel));
      if (path !== mount.root && !path.startsWith(mount.root + sep)) {
        throw new StorageError('invalid-location', `location ${location} escapes its mount ${mount.prefix}`, location);
      }
      return path;
    }
    if (location.startsWith('file://') || location.startsWith('/')) {
      const normalized = normalizeLocation(location);
      return normalized.startsWith('file://') ? normalized.slice(7) : normalized;
    }
    throw new StorageError('unsupported-scheme', `local storage cannot address ${location}`, location);
  }

  async write(location: string, data: Uint8Array, options: WriteOptions = {}): Promise<void> {
    const path = this.toPath(location);
    await mkdir(dirname(path), { recursive: true });
    const tmp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
    await writeFile(tmp, data, { flag: 'wx' });
    try {
      if (options.overwrite) {
        await rename(tmp, path);
        return;
      }
      await link(tmp, path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
        throw new StorageError('already-exists', `file already exists: ${location}`, location, { cause: err });
      }
      throw ioError('write', location, err);
    } finally {
      if (!options.overwrite) await unlink(tmp).catch(() => undefined);
    }
  }

  async read(location: string): Promise<Uint8Array> {
    try {
      return new Uint8Array(await readFile(this.toPath(location)));
    } catch (err) {
      throw mapError('read', location, err);
    }
  }

  async readRange(location: string, offset: number, length: number): Promise<Uint8Array> {
    try {
      const handle = await open(this.toPath(location), 'r');
      try {
        const buffer = new Uint8Array(Math.max(0, length));
        const { bytesRead } = await handle.read(buffer, 0, buffer.length, offset);
        return buffer.subarray(0, bytesRead);
      } finally {
        await handle.close();
      }
    } catch (err) {
      throw mapError('read', location, err);
    }
  }

  async exists(location: string): Promise<boolean> {
    return (await this.stat(location)) !== undefined;
  }

  async stat(location: string): Promise<FileInfo | undefined> {
    try {
      const s = await stat(this.toPath(location));
      return s.isFile() ? { location, size: s.size, modifiedMs: Math.floor(s.mtimeMs) } : undefined;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw ioError('stat', location, err);
    }
  }

  async list(prefix: string): Promise<FileInfo[]> {
    const base = trimTrailingSlash(prefix);
    const root = this.toPath(base);
    const out: FileInfo[] = [];
    const walk = async (dir: string, locationPrefix: string): Promise<void> => {
      let entries: Dirent[];
      try {
        entries = await readdir(dir, { withFileTypes: true });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR') return;
        throw ioError('list', prefix, err);
      }
      entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
      for (const e of entries) {
        const path = join(dir, e.name);
        const location = `${locationPrefix}/${e.name}`;
        if (e.isDirectory()) await walk(path, location);
        else if (e.isFile()) {
          const s = await stat(path);
          out.push({ location, size: s.size, modifiedMs: Math.floor(s.mtimeMs) });
        }
      }
    };
    await walk(root, base);
    return out;
  }

  async delete(location: string): Promise<boolean> {
    const path = this.toPath(location);
    try {
      await rm(path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw ioError('delete', location, err);
    }
    return true;
  }

  private mountFor(location: string): Mount | undefined {
    return this.mounts.find((m) => location === m.prefix || location.startsWith(`${m.prefix}/`));
  }
}

function mapError(op: string, location: string, err: unknown): StorageError {
  if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
    return new StorageError('not-found', `no such file: ${location}`, location, { cause: err });
  }
  return ioError(op, location, err);
}

function ioError(op: string, location: string, err: unknown): StorageError {
  if (err instanceof StorageError) return err;
  const code = (err as NodeJS.ErrnoException).code ?? 'error';
  return new StorageError('io', `${op} ${location} failed (${code})`, location, { cause: err });
}
