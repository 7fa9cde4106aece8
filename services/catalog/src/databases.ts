/**
 * Databases are Iceberg namespaces. CreateDatabase is create-if-missing: an existing
 * database is returned unchanged with created=false, so a sync can target it again.
 */
import type { AsyncHandlers } from '#shared/grpc/types.js';
import type { CatalogServiceService } from '#shared/gen/sluice/v1/catalog.js';
import { failedPrecondition, invalidArgument, notFound, permissionDenied } from '#shared/errors.js';
import { inTransaction } from '#shared/pg.js';
import { existsSync, realpathSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { isWithin, joinLocation, normalizeLocation, schemeOf } from '#shared/storage/index.js';
import { translated, type CatalogDeps } from './context.js';
import { quotedPrefix, validName } from '#shared/names.js';
import { databaseToProto, type DatabaseRow } from './rows.js';
import { dropTableRows, purgeTable, type DroppedTable } from './table-store.js';

type H = AsyncHandlers<typeof CatalogServiceService>;

const DB_COLUMNS = 'name, location, properties, created_at_ms';

/**
 * A location given by a user: absolute, no dot segments, served by a storage backend (asked
 * now, so an unsupported scheme fails this request rather than a later commit), and inside
 * the warehouse or another allowed root (the catalog writes there and a purge deletes there).
 */
/**
 * The JDBC catalog's tables (Iceberg's schema, which Java and Spark read) hold a metadata
 * location in varchar(1000) and a namespace property in varchar(255)/varchar(1000): longer
 * ones would fail inside PostgreSQL as INTERNAL. A table's metadata file adds 66 characters
 * (`/metadata/NNNNN-<uuid>.metadata.json`) to its location.
 */
export const MAX_LOCATION_LENGTH = 900;
export const MAX_PROPERTY_KEY_LENGTH = 255;
export const MAX_PROPERTY_VALUE_LENGTH = 1000;

function validProperties(properties: Record<string, string>, field: string): Record<string, string> {
  for (const [key, value] of Object.entries(properties)) {
    if (key.length > MAX_PROPERTY_KEY_LENGTH)
      throw invalidArgument(`${field} key ${quotedPrefix(key)} is longer than ${MAX_PROPERTY_KEY_LENGTH} characters`, { field });
    if (value.length > MAX_PROPERTY_VALUE_LENGTH)
      throw invalidArgument(`${field}.${quotedPrefix(key)} is ${value.length} characters, more than ${MAX_PROPERTY_VALUE_LENGTH}`, {
        field,
      });
  }
  return properties;
}

export async function validLocation(deps: CatalogDeps, location: string, field: string): Promise<string> {
  if (location.length > MAX_LOCATION_LENGTH)
    throw invalidArgument(`${field} ${quotedPrefix(location)} is longer than ${MAX_LOCATION_LENGTH} characters`, { field });
  let normalized: string;
  try {
    normalized = normalizeLocation(location);
    await deps.storage.exists(joinLocation(normalized, '.sluice-probe'));
  } catch (err) {
    throw invalidArgument(`${field} ${quotedPrefix(location)}: ${(err as Error).message}`, { field });
  }
  const roots = [deps.warehouse, ...(deps.roots ?? [])];
  if (!roots.some((root) => confinedTo(root, normalized)))
    throw permissionDenied(
      `${field} ${JSON.stringify(location.slice(0, 200))} is outside the warehouse ${roots.join(', ')}; set SLUICE_WAREHOUSE_ROOTS to allow more`,
      { field },
    );
  return normalized;
}

/**
 * Whether `location` lies under `root`, after normalisation and, for local paths, after
 * following symlinks (of the deepest part that exists): a link inside the warehouse that
 * points at /etc does not make /etc a table location.
 */
export function confinedTo(root: string, location: string): boolean {
  if (!isWithin(root, location)) return false;
  if (schemeOf(location) !== 'file') return true;
  return isWithin(realAncestor(localPath(root)), realAncestor(localPath(location)));
}

const localPath = (location: string) => normalizeLocation(location).replace(/^file:\/\//, '');

/** The real path of a local path's deepest existing ancestor, with the rest appended. */
function realAncestor(path: string): string {
  let head = path;
  const tail: string[] = [];
  while (!existsSync(head) && head !== dirname(head)) {
    tail.unshift(basename(head));
    head = dirname(head);
  }
  return join(realpathSync(head), ...tail);
}

export async function getDatabaseRow(deps: CatalogDeps, name: string): Promise<DatabaseRow> {
  const { rows } = await deps.pool.query<DatabaseRow>(`SELECT ${DB_COLUMNS} FROM catalog.databases WHERE name = $1`, [name]);
  if (!rows[0]) throw notFound(`database ${name} does not exist`, { database: name });
  return rows[0];
}

export function databaseHandlers(deps: CatalogDeps): Pick<H, 'createDatabase' | 'getDatabase' | 'listDatabases' | 'dropDatabase'> {
  const now = deps.now ?? Date.now;
  return {
    createDatabase: translated(async (req) => {
      const name = validName(req.name, 'name');
      const properties = validProperties(req.properties ?? {}, 'properties');
      const location = await validLocation(deps, req.location || joinLocation(deps.warehouse, name), 'location');
      return inTransaction(deps.pool, async (client) => {
        const inserted = await client.query<DatabaseRow>(
          `INSERT INTO catalog.databases (name, location, properties, created_at_ms) VALUES ($1, $2, $3, $4)
           ON CONFLICT (name) DO NOTHING RETURNING ${DB_COLUMNS}`,
          [name, location, JSON.stringify(properties), now()],
        );
        if (inserted.rows[0]) {
          // The JDBC catalog knows a namespace by its properties rows ("exists" as Java writes it).
          const props = { exists: 'true', location, ...properties };
          for (const [k, v] of Object.entries(props)) {
            await client.query(
              `INSERT INTO public.iceberg_namespace_properties (catalog_name, namespace, property_key, property_value)
               VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING`,
              [deps.jdbcCatalogName, name, k, v],
            );
          }
          return { database: databaseToProto(inserted.rows[0]), created: true };
        }
        const existing = await client.query<DatabaseRow>(`SELECT ${DB_COLUMNS} FROM catalog.databases WHERE name = $1`, [name]);
        return { database: databaseToProto(existing.rows[0]), created: false };
      });
    }),

    getDatabase: translated(async (req) => ({ database: databaseToProto(await getDatabaseRow(deps, validName(req.name, 'name'))) })),

    listDatabases: translated(async () => {
      const { rows } = await deps.pool.query<DatabaseRow>(`SELECT ${DB_COLUMNS} FROM catalog.databases ORDER BY name`);
      return { databases: rows.map(databaseToProto) };
    }),

    dropDatabase: translated(async (req) => {
      const name = validName(req.name, 'name');
      const dropped = await inTransaction(deps.pool, async (client) => {
        const db = await client.query(`SELECT name FROM catalog.databases WHERE name = $1 FOR UPDATE`, [name]);
        if (db.rowCount === 0) throw notFound(`database ${name} does not exist`, { database: name });
        const tables = await client.query<{ name: string }>(
          `SELECT name FROM catalog.tables WHERE database = $1 ORDER BY name FOR UPDATE`,
          [name],
        );
        if (tables.rowCount && !req.cascade) {
          const names = tables.rows.map((t) => t.name);
          throw failedPrecondition(`database ${name} is not empty (tables: ${names.join(', ')}); drop them first or set cascade`, {
            database: name,
          });
        }
        const tablesDropped: DroppedTable[] = [];
        for (const t of tables.rows) tablesDropped.push(await dropTableRows(deps, client, { database: name, table: t.name }));
        await client.query(`DELETE FROM public.iceberg_namespace_properties WHERE catalog_name = $1 AND namespace = $2`, [
          deps.jdbcCatalogName,
          name,
        ]);
        await client.query(`DELETE FROM catalog.databases WHERE name = $1`, [name]);
        return tablesDropped;
      });
      if (req.purge) for (const table of dropped) await purgeTable(deps, table);
      return {};
    }),
  };
}
