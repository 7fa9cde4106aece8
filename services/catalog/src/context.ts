/**
 * What every catalog handler needs, and the shared plumbing: translating Iceberg and
 * storage failures into the gRPC errors users see, and loading a table row.
 */
import { SluiceError, failedPrecondition, invalidArgument, notFound } from '#shared/errors.js';
import type { TableRef } from '#shared/gen/sluice/v1/types.js';
import { IcebergError } from '#shared/iceberg/index.js';
import type { Logger } from '#shared/logger.js';
import type { Pool, PoolClient } from '#shared/pg.js';
import { StorageError, type Storage } from '#shared/storage/index.js';
import { validName } from '#shared/names.js';

export interface CatalogDeps {
  pool: Pool;
  storage: Storage;
  /** Root of new databases: an absolute path or a URI the storage handles. */
  warehouse: string;
  /** More locations databases and tables may be placed under (SLUICE_WAREHOUSE_ROOTS); the warehouse always is one. */
  roots?: readonly string[];
  /** catalog_name written to the Iceberg JDBC catalog tables. */
  jdbcCatalogName: string;
  logger?: Logger;
  now?: () => number;
}

/** Iceberg and storage errors as gRPC errors; anything else passes through (INTERNAL). */
export function translate(err: unknown): unknown {
  if (err instanceof SluiceError) return err;
  if (err instanceof IcebergError) {
    const details = err.field ? { field: err.field } : undefined;
    if (err.kind === 'invalid') return invalidArgument(err.message, details);
    if (err.kind === 'conflict') return failedPrecondition(err.message, details);
    if ((err.kind as string) === 'not-found') return notFound(err.message, details);
    return err;
  }
  if (err instanceof StorageError) {
    if (err.kind === 'invalid-location' || err.kind === 'unsupported-scheme') return invalidArgument(err.message, { field: 'location' });
    return err;
  }
  return err;
}

/** Wraps a handler so thrown Iceberg/storage errors reach the client with the right code. */
export function translated<A extends unknown[], R>(fn: (...args: A) => Promise<R>): (...args: A) => Promise<R> {
  return async (...args: A) => {
    try {
      return await fn(...args);
    } catch (err) {
      throw translate(err);
    }
  };
}

export function validRef(ref: TableRef | undefined, field = 'ref'): TableRef {
  return { database: validName(ref?.database, `${field}.database`), table: validName(ref?.table, `${field}.table`) };
}

export type Queryable = Pool | PoolClient;
