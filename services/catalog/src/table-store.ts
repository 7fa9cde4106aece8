/**
 * Table rows and their metadata files: found, dropped (by DropTable and a cascading
 * DropDatabase alike), and changed. Every change of a table goes through `swapMetadata`:
 * write a new, uniquely named metadata.json (never overwriting one), then move the pointer
 * in `catalog.tables` and in the JDBC catalog's `iceberg_tables`, in the caller's
 * transaction. If that transaction then fails the file is an orphan, never a current one.
 */
import { failedPrecondition, notFound } from '#shared/errors.js';
import type { TableRef } from '#shared/gen/sluice/v1/types.js';
import { nextMetadataFile, referencedLocations, serializeMetadata, type TableMetadata } from '#shared/iceberg/index.js';
import type { PoolClient } from '#shared/pg.js';
import type { CatalogDeps, Queryable } from './context.js';
import { TABLE_COLUMNS, type TableRow } from './rows.js';

export async function findTable(db: Queryable, ref: TableRef, forUpdate = false): Promise<TableRow | undefined> {
  const { rows } = await db.query<TableRow>(
    `SELECT ${TABLE_COLUMNS} FROM catalog.tables WHERE database = $1 AND name = $2${forUpdate ? ' FOR UPDATE' : ''}`,
    [ref.database, ref.table],
  );
  return rows[0];
}

export async function getTable(db: Queryable, ref: TableRef, forUpdate = false): Promise<TableRow> {
  const row = await findTable(db, ref, forUpdate);
  if (!row) throw notFound(`table ${ref.database}.${ref.table} does not exist`, { database: ref.database, table: ref.table });
  return row;
}

/** Deletes a table's rows (refusing while jobs write to it); returns its location. */
/** What a purge deletes after the rows are gone: the table's metadata, and the files it names. */
export interface DroppedTable {
  metadata: TableMetadata;
  metadataLocation: string;
}

export async function dropTableRows(deps: CatalogDeps, client: PoolClient, ref: TableRef): Promise<DroppedTable> {
  const row = await getTable(client, ref, true);
  const jobs = await client.query<{ name: string }>(`SELECT name FROM catalog.jobs WHERE table_id = $1 ORDER BY name`, [row.id]);
  if (jobs.rowCount) {
    throw failedPrecondition(
      `table ${ref.database}.${ref.table} is written by jobs ${jobs.rows.map((j) => j.name).join(', ')}; delete them first`,
      {
        table: `${ref.database}.${ref.table}`,
      },
    );
  }
  await client.query(`DELETE FROM catalog.tables WHERE id = $1`, [row.id]);
  await client.query(`DELETE FROM public.iceberg_tables WHERE catalog_name = $1 AND table_namespace = $2 AND table_name = $3`, [
    deps.jdbcCatalogName,
    ref.database,
    ref.table,
  ]);
  return { metadata: row.metadata, metadataLocation: row.metadata_location };
}

/**
 * Purge: deletes the files the table's metadata refers to (metadata files, manifest lists,
 * manifests, data files) and nothing else, as Iceberg's own purge does. Before, the whole
 * location was deleted, with any file that happened to be there.
 */
export async function purgeTable(deps: CatalogDeps, dropped: DroppedTable): Promise<number> {
  let named: Iterable<string>;
  try {
    named = await referencedLocations(deps.storage, dropped.metadata, dropped.metadataLocation);
  } catch (err) {
    // A manifest list or manifest that cannot be read hides the files below it: those stay
    // (never guessed from the directory); the metadata files are known and go.
    deps.logger?.warn({ metadata: dropped.metadataLocation, err: (err as Error).message }, 'purge could not read every manifest');
    named = [dropped.metadataLocation, ...dropped.metadata['metadata-log'].map((e) => e['metadata-file'])];
  }
  let removed = 0;
  for (const location of named) if (await deps.storage.delete(location)) removed++;
  return removed;
}

/** Writes a new metadata file for `meta`; returns its location and the logged metadata. */
export async function writeMetadataFile(
  deps: CatalogDeps,
  meta: TableMetadata,
  previousLocation: string | undefined,
): Promise<{ metadata: TableMetadata; location: string }> {
  const next = nextMetadataFile(meta, previousLocation);
  await deps.storage.write(next.location, Buffer.from(serializeMetadata(next.metadata), 'utf8'));
  return next;
}

/** Records the schema and spec versions of `meta` that the side tables do not have yet. */
export async function recordVersions(client: PoolClient, tableId: number, meta: TableMetadata, nowMs: number): Promise<void> {
  for (const s of meta.schemas) {
    await client.query(
      `INSERT INTO catalog.schema_versions (table_id, schema_id, schema, created_at_ms) VALUES ($1, $2, $3, $4)
       ON CONFLICT (table_id, schema_id) DO NOTHING`,
      [tableId, s['schema-id'], JSON.stringify(s), nowMs],
    );
  }
  for (const p of meta['partition-specs']) {
    await client.query(
      `INSERT INTO catalog.partition_specs (table_id, spec_id, spec) VALUES ($1, $2, $3) ON CONFLICT (table_id, spec_id) DO NOTHING`,
      [tableId, p['spec-id'], JSON.stringify(p)],
    );
  }
}

/** New metadata for a locked table row: new file, pointer swap, JDBC row, side tables. */
export async function swapMetadata(deps: CatalogDeps, client: PoolClient, row: TableRow, meta: TableMetadata): Promise<TableRow> {
  const now = (deps.now ?? Date.now)();
  const { metadata, location } = await writeMetadataFile(deps, meta, row.metadata_location);
  await client.query(
    `UPDATE catalog.tables
        SET metadata_location = $2, previous_metadata_location = $3, metadata = $4, current_snapshot_id = $5,
            last_sequence_number = $6, current_schema_id = $7, properties = $8, updated_at_ms = $9
      WHERE id = $1`,
    [
      row.id,
      location,
      row.metadata_location,
      JSON.stringify(metadata),
      metadata['current-snapshot-id'] ?? null,
      metadata['last-sequence-number'],
      metadata['current-schema-id'],
      JSON.stringify(metadata.properties),
      now,
    ],
  );
  await client.query(
    `UPDATE public.iceberg_tables SET metadata_location = $4, previous_metadata_location = $5
      WHERE catalog_name = $1 AND table_namespace = $2 AND table_name = $3`,
    [deps.jdbcCatalogName, row.database, row.name, location, row.metadata_location],
  );
  await recordVersions(client, row.id, metadata, now);
  return {
    ...row,
    metadata_location: location,
    previous_metadata_location: row.metadata_location,
    metadata,
    current_snapshot_id: metadata['current-snapshot-id'] ?? null,
  };
}
