/**
 * Tables: create (schema with fresh ids, partition spec, a location that overlaps no other
 * table's), read, list, drop (optionally purging files), schema evolution and snapshots.
 */
import type { AsyncHandlers } from '#shared/grpc/types.js';
import type { CatalogServiceService } from '#shared/gen/sluice/v1/catalog.js';
import { aborted, alreadyExists, failedPrecondition, invalidArgument } from '#shared/errors.js';
import { addSchema, createTableMetadata, currentSchema, schemaFromProto } from '#shared/iceberg/index.js';
import { inTransaction } from '#shared/pg.js';
import { joinLocation, locationsOverlap } from '#shared/storage/index.js';
import { translated, validRef, type CatalogDeps } from './context.js';
import { getDatabaseRow, validLocation } from './databases.js';
import { validName } from '#shared/names.js';
import { TABLE_COLUMNS, snapshotToProto, tableToProto, type TableRow } from './rows.js';
import { applySchemaChanges } from './schema-evolution.js';
import { dropTableRows, findTable, purgeTable, getTable, recordVersions, swapMetadata, writeMetadataFile } from './table-store.js';

type H = AsyncHandlers<typeof CatalogServiceService>;

/** Serializes location checks of concurrent CreateTable calls. */
const LOCATION_LOCK = 'sluice-catalog-table-locations';

export function tableHandlers(
  deps: CatalogDeps,
): Pick<H, 'createTable' | 'getTable' | 'listTables' | 'dropTable' | 'updateSchema' | 'listSnapshots'> {
  const now = deps.now ?? Date.now;
  return {
    createTable: translated(async (req) => {
      const ref = validRef(req.ref);
      if (!req.schema) throw invalidArgument('schema is required', { field: 'schema' });
      const db = await getDatabaseRow(deps, ref.database);
      const existing = await findTable(deps.pool, ref);
      if (existing) {
        if (req.ifNotExists) return { table: tableToProto(existing) };
        throw alreadyExists(`table ${ref.database}.${ref.table} already exists`, { table: `${ref.database}.${ref.table}` });
      }
      const location = await validLocation(deps, req.location || joinLocation(db.location, ref.table), 'location');
      const meta = createTableMetadata({
        location,
        schema: schemaFromProto(req.schema, 0),
        partitionSpec: req.partitionSpec,
        properties: req.properties,
        nowMs: now(),
      });

      return inTransaction(deps.pool, async (client) => {
        await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [LOCATION_LOCK]);
        const raced = await findTable(client, ref);
        if (raced) {
          if (req.ifNotExists) return { table: tableToProto(raced) };
          throw alreadyExists(`table ${ref.database}.${ref.table} already exists`, { table: `${ref.database}.${ref.table}` });
        }
        const others = await client.query<{ database: string; name: string; location: string }>(
          `SELECT database, name, location FROM catalog.tables`,
        );
        const clash = others.rows.find((o) => locationsOverlap(o.location, location));
        if (clash) {
          throw failedPrecondition(
            `location ${location} of ${ref.database}.${ref.table} overlaps location ${clash.location} of table ${clash.database}.${clash.name}; ` +
              'two tables sharing a prefix would overwrite or purge each other’s files',
            { field: 'location', conflicting_table: `${clash.database}.${clash.name}` },
          );
        }
        const { metadata, location: metadataLocation } = await writeMetadataFile(deps, meta, undefined);
        const t = now();
        const inserted = await client.query<TableRow>(
          `INSERT INTO catalog.tables (database, name, table_uuid, location, format_version, metadata_location, metadata,
                                       current_snapshot_id, last_sequence_number, current_schema_id, properties, created_at_ms, updated_at_ms)
           VALUES ($1, $2, $3, $4, 2, $5, $6, NULL, 0, $7, $8, $9, $9) RETURNING ${TABLE_COLUMNS}`,
          [
            ref.database,
            ref.table,
            metadata['table-uuid'],
            location,
            metadataLocation,
            JSON.stringify(metadata),
            metadata['current-schema-id'],
            JSON.stringify(metadata.properties),
            t,
          ],
        );
        await client.query(
          `INSERT INTO public.iceberg_tables (catalog_name, table_namespace, table_name, metadata_location, previous_metadata_location, iceberg_type)
           VALUES ($1, $2, $3, $4, NULL, 'TABLE')`,
          [deps.jdbcCatalogName, ref.database, ref.table, metadataLocation],
        );
        await recordVersions(client, inserted.rows[0].id, metadata, t);
        return { table: tableToProto(inserted.rows[0]) };
      });
    }),

    getTable: translated(async (req) => ({ table: tableToProto(await getTable(deps.pool, validRef(req.ref))) })),

    listTables: translated(async (req) => {
      const database = validName(req.database, 'database');
      await getDatabaseRow(deps, database);
      const { rows } = await deps.pool.query<TableRow>(`SELECT ${TABLE_COLUMNS} FROM catalog.tables WHERE database = $1 ORDER BY name`, [
        database,
      ]);
      return { tables: rows.map(tableToProto) };
    }),

    dropTable: translated(async (req) => {
      const ref = validRef(req.ref);
      const dropped = await inTransaction(deps.pool, (client) => dropTableRows(deps, client, ref));
      if (req.purge) await purgeTable(deps, dropped);
      return {};
    }),

    updateSchema: translated(async (req) => {
      const ref = validRef(req.ref);
      if (req.changes.length === 0) throw invalidArgument('changes must not be empty', { field: 'changes' });
      return inTransaction(deps.pool, async (client) => {
        const row = await getTable(client, ref, true);
        const schema = currentSchema(row.metadata);
        if (req.expectedSchemaId !== undefined && req.expectedSchemaId !== schema['schema-id']) {
          throw aborted(
            `schema of ${ref.database}.${ref.table} moved on: expected schema ${req.expectedSchemaId}, current is ${schema['schema-id']}`,
            {
              table: `${ref.database}.${ref.table}`,
            },
          );
        }
        const evolved = applySchemaChanges(schema, req.changes, row.metadata['last-column-id']);
        const meta = addSchema({ ...row.metadata, 'last-column-id': evolved.lastColumnId }, evolved.schema, now());
        const updated = await swapMetadata(deps, client, row, meta);
        return { table: tableToProto(updated) };
      });
    }),

    listSnapshots: translated(async (req) => {
      const row = await getTable(deps.pool, validRef(req.ref));
      return { snapshots: row.metadata.snapshots.map(snapshotToProto), currentSnapshotId: row.metadata['current-snapshot-id'] };
    }),
  };
}
