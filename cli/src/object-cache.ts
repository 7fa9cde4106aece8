/**
 * Local copies of the data files a query reads from object storage: DuckDB here has no
 * httpfs extension, so `sluice query` downloads what it needs into a cache directory and hands
 * DuckDB local paths. Data files are immutable (Iceberg never rewrites one in place), so a
 * cached copy of the right size is valid forever. The cache is bounded: after each query the
 * least recently used copies beyond SLUICE_QUERY_CACHE_BYTES are deleted, except the files the
 * query just used.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readdir, rename, stat, unlink, utimes, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { schemeOf, type Storage } from '#shared/storage/index.js';

export interface CacheOptions {
  dir: string;
  maxBytes: number;
}

export function cacheOptionsFromEnv(env: NodeJS.ProcessEnv = process.env): CacheOptions {
  const maxBytes = Number(env.SLUICE_QUERY_CACHE_BYTES ?? 2 * 1024 ** 3);
  return {
    dir: env.SLUICE_QUERY_CACHE_DIR || join(env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'sluice', 'objects'),
    maxBytes: Number.isFinite(maxBytes) && maxBytes > 0 ? maxBytes : 2 * 1024 ** 3,
  };
}

const localPath = (location: string) => (location.startsWith('file://') ? decodeURIComponent(new URL(location).pathname) : location);

/** Each location as a path DuckDB can read: local ones as they are, others copied into the cache. */
export async function localCopies(
  storage: Storage,
  files: readonly { location: string; size: number }[],
  options: CacheOptions,
): Promise<string[]> {
  const paths: string[] = [];
  const used = new Set<string>();
  for (const f of files) {
    if (schemeOf(f.location) === 'file') {
      paths.push(localPath(f.location));
      continue;
    }
    await mkdir(options.dir, { recursive: true });
    const name = `${createHash('sha256').update(f.location).digest('hex')}.parquet`;
    const path = join(options.dir, name);
    const cached = await stat(path).catch(() => undefined);
    if (cached?.size === f.size) {
      const now = new Date();
      await utimes(path, now, now); // recently used
    } else {
      // Whole or not at all: a copy appears under its name only once complete.
      const partial = `${path}.${randomBytes(4).toString('hex')}.partial`;
      await writeFile(partial, await storage.read(f.location));
      await rename(partial, path);
    }
    used.add(name);
    paths.push(path);
  }
  if (used.size > 0) await evict(options, used);
  return paths;
}

/** Deletes the least recently used copies until the cache holds at most maxBytes (the ones in use stay). */
async function evict(options: CacheOptions, inUse: ReadonlySet<string>): Promise<void> {
  const entries = await Promise.all(
    (await readdir(options.dir))
      .filter((name) => name.endsWith('.parquet'))
      .map(async (name) => ({ name, ...(await stat(join(options.dir, name)).catch(() => ({ size: 0, mtimeMs: 0 }))) })),
  );
  let total = entries.reduce((n, e) => n + e.size, 0);
  for (const e of entries.sort((a, b) => a.mtimeMs - b.mtimeMs)) {
    if (total <= options.maxBytes) break;
    if (inUse.has(e.name)) continue;
    await unlink(join(options.dir, e.name)).catch(() => undefined);
    total -= e.size;
  }
}
