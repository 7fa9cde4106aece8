/**
 * All CatalogService handlers, built from their dependencies. The service shell binds
 * them; tests bind them to a server of their own with a storage of their choosing.
 */
import { resolve as resolvePath } from 'node:path';
import type { AsyncHandlers } from '#shared/grpc/types.js';
import type { CatalogServiceService } from '#shared/gen/sluice/v1/catalog.js';
import { commitHandlers } from './commit.js';
import type { CatalogDeps } from './context.js';
import { databaseHandlers } from './databases.js';
import { instanceHandlers } from './instances.js';
import { sourceJobHandlers } from './sources-jobs.js';
import { tableHandlers } from './tables.js';

export type { CatalogDeps } from './context.js';

/** The catalog name under which tables appear in the Iceberg JDBC catalog tables. */
export const DEFAULT_JDBC_CATALOG_NAME = 'sluice';

export function catalogHandlers(deps: CatalogDeps): AsyncHandlers<typeof CatalogServiceService> {
  return {
    ...databaseHandlers(deps),
    ...tableHandlers(deps),
    ...sourceJobHandlers(deps),
    ...commitHandlers(deps),
    ...instanceHandlers(deps),
  };
}

/**
 * SLUICE_WAREHOUSE as a location: URIs are kept, a relative directory (the default
 * `.sluice/warehouse`) becomes absolute so table locations never depend on the cwd.
 */
export function resolveWarehouse(value: string): string {
  return /^[a-zA-Z][a-zA-Z0-9+.-]*:\/\//.test(value) ? value.replace(/\/+$/, '') : resolvePath(value);
}
