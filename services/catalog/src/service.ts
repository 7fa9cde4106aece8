import { fileURLToPath } from 'node:url';
import { CatalogServiceService } from '#shared/gen/sluice/v1/catalog.js';
import { bindService } from '#shared/grpc/server.js';
import { createPool, ensureDatabase, migrate } from '#shared/pg.js';
import type { ServiceSpec } from '#shared/service.js';
import { createStorage } from '#shared/storage/index.js';
import { catalogHandlers, DEFAULT_JDBC_CATALOG_NAME, resolveWarehouse } from './handlers.js';

export const CATALOG_MIGRATIONS = fileURLToPath(new URL('../migrations', import.meta.url));

/** The catalog: the only writer of catalog rows, in its own PostgreSQL schema `catalog`. */
export const catalogService: ServiceSpec<'catalogPort' | 'databaseUrl' | 'warehouse' | 'warehouseRoots'> = {
  name: 'catalog',
  portKey: 'catalogPort',
  settings: ['catalogPort', 'databaseUrl', 'warehouse', 'warehouseRoots'],
  protoFiles: ['sluice/v1/catalog.proto'],
  async build({ config, logger, onShutdown }) {
    await ensureDatabase(config.databaseUrl);
    const pool = createPool(config.databaseUrl);
    onShutdown(() => pool.end());
    const { applied } = await migrate(pool, 'catalog', CATALOG_MIGRATIONS);
    if (applied.length > 0) logger.info({ applied }, 'catalog migrations applied');
    const handlers = catalogHandlers({
      pool,
      storage: createStorage(),
      warehouse: resolveWarehouse(config.warehouse),
      roots: config.warehouseRoots.map(resolveWarehouse),
      jdbcCatalogName: DEFAULT_JDBC_CATALOG_NAME,
      logger,
    });
    return [bindService('sluice.v1.CatalogService', CatalogServiceService, handlers)];
  },
};
