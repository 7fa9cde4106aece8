/**
 * The commit service's side of the catalog: load a table (its row from GetTable and the
 * metadata.json it points to), and CommitTable with rebase-and-retry on ABORTED. The catalog
 * is the only writer of catalog rows; everything here goes through its gRPC API.
 */
import { status } from '@grpc/grpc-js';
import { setTimeout as sleep } from 'node:timers/promises';
import type { CatalogServiceService, CommitTableRequest, Table } from '#shared/gen/sluice/v1/catalog.js';
import type { TableRef } from '#shared/gen/sluice/v1/types.js';
import { grpcCode, grpcMessage } from '#shared/errors.js';
import type { ServiceClient } from '#shared/grpc/client.js';
import { parseMetadata, type TableMetadata } from '#shared/iceberg/index.js';
import type { Storage } from '#shared/storage/index.js';
import { CommitError } from './errors.js';

export type CatalogClient = ServiceClient<typeof CatalogServiceService>;

export const tableName = (ref: TableRef) => `${ref.database}.${ref.table}`;

export interface LoadedTable {
  table: Table;
  metadata: TableMetadata;
}

export async function loadTable(catalog: CatalogClient, storage: Storage, ref: TableRef): Promise<LoadedTable> {
  const { table } = await catalog.getTable({ ref });
  if (!table) throw new CommitError('catalog', `catalog returned no table for ${tableName(ref)}`);
  if (!table.metadataLocation) throw new CommitError('catalog', `table ${tableName(ref)} has no metadata location`);
  const metadata = parseMetadata(await storage.read(table.metadataLocation));
  return { table, metadata };
}

/** The parts of a CommitTableRequest a caller builds on a loaded table (ref and expected snapshot are filled in). */
export type CommitBody = Omit<CommitTableRequest, 'ref' | 'expectedSnapshotId' | 'errorCounts'> &
  Partial<Pick<CommitTableRequest, 'errorCounts'>>;

export interface RebaseOptions {
  catalog: CatalogClient;
  storage: Storage;
  ref: TableRef;
  /** Attempts in total, the first included. */
  maxAttempts?: number;
  /** First backoff after ABORTED; doubles per attempt, with jitter. */
  backoffMs?: number;
  /** Builds the commit on the table as it is now; called again after every ABORTED. */
  build(loaded: LoadedTable, attempt: number): Promise<CommitBody>;
}

/** Maps a CommitTable failure to the coordinator's vocabulary. */
export function classifyCommitFailure(err: unknown, ref: TableRef): CommitError {
  const code = grpcCode(err);
  const message = grpcMessage(err);
  const where = tableName(ref);
  if (code === status.FAILED_PRECONDITION && /fenc|lease|epoch/i.test(message)) {
    return new CommitError('fenced', `commit to ${where} fenced: ${message}`, { cause: err });
  }
  if ((code === status.FAILED_PRECONDITION || code === status.OUT_OF_RANGE) && /offset/i.test(message)) {
    return new CommitError('offsets-rejected', `catalog refused the offsets for ${where}: ${message}`, { cause: err });
  }
  if (err instanceof CommitError) return err;
  return new CommitError('catalog', `commit to ${where} failed: ${message}`, { cause: err });
}

/**
 * Commits on the current snapshot; when the catalog answers ABORTED (the table moved),
 * reloads it, rebuilds and tries again, a bounded number of times with backoff.
 */
export async function commitWithRebase(options: RebaseOptions): Promise<{ table: Table; loaded: LoadedTable; attempts: number }> {
  const maxAttempts = options.maxAttempts ?? 6;
  const backoffMs = options.backoffMs ?? 25;
  for (let attempt = 1; ; attempt++) {
    const loaded = await loadTable(options.catalog, options.storage, options.ref);
    // A builder may throw (nothing to do, a replaced file gone): that ends the attempts as is.
    const body = await options.build(loaded, attempt);
    try {
      const { table } = await options.catalog.commitTable({
        ...body,
        errorCounts: body.errorCounts ?? [],
        ref: options.ref,
        expectedSnapshotId: loaded.metadata['current-snapshot-id'],
      });
      if (!table) throw new CommitError('catalog', `CommitTable for ${tableName(options.ref)} returned no table`);
      return { table, loaded, attempts: attempt };
    } catch (err) {
      if (grpcCode(err) !== status.ABORTED) throw classifyCommitFailure(err, options.ref);
      if (attempt >= maxAttempts) {
        throw new CommitError(
          'conflict',
          `table ${tableName(options.ref)} kept moving: still conflicting after ${attempt} attempts (${grpcMessage(err)})`,
          { cause: err },
        );
      }
      await sleep(backoffMs * 2 ** (attempt - 1) * (0.5 + Math.random()));
    }
  }
}
