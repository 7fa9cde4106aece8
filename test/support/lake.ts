/**
 * Reading what a table holds, independently of Sluice's own query path: the current snapshot's
 * data files from the catalog's metadata, and DuckDB over them.
 */
import assert from 'node:assert/strict';
import { DuckDBInstance } from '@duckdb/node-api';
import type { CatalogServiceService } from '#shared/gen/sluice/v1/catalog.js';
import type { TableRef } from '#shared/gen/sluice/v1/types.js';
import type { ServiceClient } from '#shared/grpc/client.js';
import { parseMetadata } from '#shared/iceberg/metadata.js';
import { resolveSnapshot, snapshotFiles } from '#shared/iceberg/scan.js';
import { createStorage } from '#shared/storage/index.js';

/** The current snapshot's summary and the local paths of its data files. */
export async function currentSnapshotFiles(
  catalog: Pick<ServiceClient<typeof CatalogServiceService>, 'getTable'>,
  ref: TableRef,
): Promise<{ summary: Record<string, string>; files: string[] }> {
  const { table } = await catalog.getTable({ ref });
  const storage = createStorage();
  const snapshot = resolveSnapshot(parseMetadata(await storage.read(table!.metadataLocation)));
  assert.ok(snapshot, 'the table has a snapshot');
  const { dataFiles } = await snapshotFiles(storage, snapshot);
  return { summary: snapshot.summary, files: dataFiles.map((f) => decodeURIComponent(new URL(f.dataFile.filePath, 'file:///').pathname)) };
}

/** Rows of one query in a fresh in-memory DuckDB, as JSON-safe objects. */
export async function duckdbRows<T>(sql: string): Promise<T[]> {
  const instance = await DuckDBInstance.create(':memory:');
  const connection = await instance.connect();
  try {
    return (await connection.runAndReadAll(sql)).getRowObjectsJson() as T[];
  } finally {
    connection.closeSync();
    instance.closeSync();
  }
}

/** DuckDB's read_parquet over a list of local files. */
export const parquetFrom = (files: readonly string[]) => `read_parquet([${files.map((f) => `'${f}'`).join(', ')}])`;
