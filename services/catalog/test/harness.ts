/**
 * A real catalog for tests: a fresh PostgreSQL database with the catalog migrations, the
 * handlers served over gRPC on a random port, files under a temp directory.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CatalogServiceService } from '#shared/gen/sluice/v1/catalog.js';
import { createClient, type ServiceClient } from '#shared/grpc/client.js';
import { bindService, startGrpcServer, type RunningGrpcServer } from '#shared/grpc/server.js';
import { createLogger } from '#shared/logger.js';
import { createPool, migrate, type Pool } from '#shared/pg.js';
import { createStorage, type LocalStorageOptions } from '#shared/storage/index.js';
import { createTestDatabase, type TestDatabase } from '#test-support/postgres.js';
import { catalogHandlers, DEFAULT_JDBC_CATALOG_NAME } from '../src/handlers.js';
import { CATALOG_MIGRATIONS } from '../src/service.js';

export interface TestCatalog {
  client: ServiceClient<typeof CatalogServiceService>;
  pool: Pool;
  dir: string;
  warehouse: string;
  stop(): Promise<void>;
}

export async function startTestCatalog(
  options: { warehouse?: (dir: string) => string; storage?: (dir: string) => LocalStorageOptions } = {},
): Promise<TestCatalog> {
  const dir = await mkdtemp(join(tmpdir(), 'sluice-catalog-'));
  const db: TestDatabase = await createTestDatabase('sluice_catalog');
  const pool = createPool(db.url, 30);
  await migrate(pool, 'catalog', CATALOG_MIGRATIONS);
  const warehouse = options.warehouse?.(dir) ?? join(dir, 'warehouse');
  const storage = createStorage(options.storage?.(dir) ?? {});
  const handlers = catalogHandlers({ pool, storage, warehouse, jdbcCatalogName: DEFAULT_JDBC_CATALOG_NAME });
  const server: RunningGrpcServer = await startGrpcServer({
    host: '127.0.0.1',
    port: 0,
    protoFiles: ['sluice/v1/catalog.proto'],
    services: [bindService('sluice.v1.CatalogService', CatalogServiceService, handlers)],
    logger: createLogger('catalog-test', 'silent'),
  });
  const client = createClient(CatalogServiceService, `127.0.0.1:${server.port}`, { retries: 0, deadlineMs: 20_000 });
  return {
    client,
    pool,
    dir,
    warehouse,
    async stop() {
      client.close();
      await server.stop(1000);
      await pool.end();
      await db.drop();
      await rm(dir, { recursive: true, force: true });
    },
  };
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
