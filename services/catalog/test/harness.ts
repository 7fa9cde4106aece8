/**
 * A real catalog for tests: its handlers over gRPC on a random port, on a fresh PostgreSQL
 * database they migrate, with the pool for SQL the RPCs do not offer and files under a
 * directory of the test's own. (No NATS: the catalog never publishes.)
 */
import { join } from 'node:path';
import type { LocalStorageOptions } from '#shared/storage/index.js';
import type { Pool } from '#shared/pg.js';
import { createTestDatabase } from '#test-support/postgres.js';
import { type CatalogClient, startCatalogHandlers } from '#test-support/services.js';
import { tempDir } from '#test-support/temp.js';

export interface TestCatalog {
  client: CatalogClient;
  /** host:port of its gRPC server. */
  address: string;
  pool: Pool;
  dir: string;
  warehouse: string;
  stop(): Promise<void>;
}

export async function startTestCatalog(
  options: { warehouse?: (dir: string) => string; roots?: (dir: string) => string[]; storage?: (dir: string) => LocalStorageOptions } = {},
): Promise<TestCatalog> {
  const dir = tempDir('catalog');
  const db = await createTestDatabase('sluice_catalog');
  try {
    const catalog = await startCatalogHandlers({
      databaseUrl: db.url,
      warehouse: options.warehouse?.(dir.path) ?? join(dir.path, 'warehouse'),
      roots: options.roots?.(dir.path),
      storage: options.storage?.(dir.path),
      poolSize: 30,
      client: { retries: 0, deadlineMs: 20_000 },
    });
    return {
      client: catalog.client,
      address: catalog.address,
      pool: catalog.pool,
      dir: dir.path,
      warehouse: catalog.warehouse,
      async stop() {
        await catalog.stop();
        await db.drop();
        dir.remove();
      },
    };
  } catch (err) {
    await db.drop();
    dir.remove();
    throw err;
  }
}

/** The gRPC status code and message of a rejected call. */
export async function failure(promise: Promise<unknown>): Promise<{ code: number; details: string }> {
  try {
    await promise;
  } catch (err) {
    const e = err as { code: number; details: string };
    return { code: e.code, details: e.details };
  }
  throw new Error('expected the call to fail');
}
