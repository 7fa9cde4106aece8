import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import pg from 'pg';

export type Pool = pg.Pool;
export type PoolClient = pg.PoolClient;

// int8 columns (offsets, snapshot ids) come back as strings by default; every int8 we store
// stays below 2^53 (snapshot ids are generated that way), so numbers are exact and simpler.
pg.types.setTypeParser(pg.types.builtins.INT8, (value) => {
  const n = Number(value);
  if (!Number.isSafeInteger(n)) throw new RangeError(`int8 value ${value} is beyond 2^53 and cannot be read exactly`);
  return n;
});

export function createPool(databaseUrl: string, max = 10): pg.Pool {
  const pool = new pg.Pool({ connectionString: databaseUrl, max, idleTimeoutMillis: 30_000 });
  // An idle client losing its connection must not crash the process; the next query reconnects.
  pool.on('error', () => {});
  return pool;
}

/** Creates the database named in the URL when it does not exist yet (first start on a fresh server). */
export async function ensureDatabase(databaseUrl: string): Promise<void> {
  const url = new URL(databaseUrl);
  const name = decodeURIComponent(url.pathname.replace(/^\//, ''));
  if (!/^[A-Za-z0-9_]+$/.test(name)) throw new Error(`database name ${JSON.stringify(name)} in DATABASE_URL must be letters, digits and _`);
  url.pathname = '/postgres';
  const client = new pg.Client({ connectionString: url.toString() });
  await client.connect();
  try {
    const found = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (found.rowCount === 0) {
      try {
        await client.query(`CREATE DATABASE "${name}"`);
      } catch (err) {
        // Another process created it between our check and our CREATE.
        if ((err as { code?: string }).code !== '42P04') throw err;
      }
    }
  } finally {
    await client.end();
  }
}

/** Runs fn in a transaction: committed when it resolves, rolled back when it throws. */
export async function inTransaction<T>(pool: pg.Pool, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    const result = await fn(client);
    await client.query('COMMIT');
    return result;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {});
    throw err;
  } finally {
    client.release();
  }
}

export interface MigrationResult {
  applied: string[];
  skipped: string[];
}

/**
 * Applies the plain SQL files of a directory, in file-name order, to one PostgreSQL schema owned
 * by one service. Each file runs once, in its own transaction, recorded in
 * `<schema>.schema_migrations`; concurrent starts serialize on an advisory lock.
 */
export async function migrate(pool: pg.Pool, schema: string, directory: string): Promise<MigrationResult> {
  if (!/^[a-z_][a-z0-9_]*$/.test(schema)) throw new Error(`migration schema ${JSON.stringify(schema)} must be a lower-case identifier`);
  const files = (await readdir(directory)).filter((f) => f.endsWith('.sql')).sort();
  const result: MigrationResult = { applied: [], skipped: [] };
  await inTransaction(pool, async (client) => {
    await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`sluice-migrate-${schema}`]);
    await client.query(`CREATE SCHEMA IF NOT EXISTS "${schema}"`);
    await client.query(
      `CREATE TABLE IF NOT EXISTS "${schema}".schema_migrations (
         version text PRIMARY KEY,
         applied_at timestamptz NOT NULL DEFAULT now()
       )`,
    );
    const done = new Set(
      (await client.query<{ version: string }>(`SELECT version FROM "${schema}".schema_migrations`)).rows.map((r) => r.version),
    );
    for (const file of files) {
      if (done.has(file)) {
        result.skipped.push(file);
        continue;
      }
      const sql = await readFile(join(directory, file), 'utf8');
      await client.query(`SET LOCAL search_path TO "${schema}", public`);
      try {
        await client.query(sql);
      } catch (err) {
        throw new Error(`migration ${schema}/${file} failed: ${(err as Error).message}`);
      }
      await client.query(`INSERT INTO "${schema}".schema_migrations (version) VALUES ($1)`, [file]);
      result.applied.push(file);
    }
  });
  return result;
}
