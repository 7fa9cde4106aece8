import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { createPool, migrate, type Pool } from '#shared/pg.js';
import { createTestDatabase, type TestDatabase } from '#test-support/postgres.js';

const FIXTURES = fileURLToPath(new URL('./fixtures/migrations', import.meta.url));

async function describeSchema(pool: Pool, schema: string) {
  const { rows } = await pool.query(
    `SELECT table_name, column_name, data_type, column_default
       FROM information_schema.columns WHERE table_schema = $1 ORDER BY table_name, column_name`,
    [schema],
  );
  const indexes = await pool.query(`SELECT indexname FROM pg_indexes WHERE schemaname = $1 ORDER BY indexname`, [schema]);
  return { columns: rows, indexes: indexes.rows };
}

describe('migration runner on a real PostgreSQL', () => {
  let db: TestDatabase;
  let pool: Pool;
  before(async () => {
    db = await createTestDatabase();
    pool = createPool(db.url);
  });
  after(async () => {
    await pool.end();
    await db.drop();
  });

  it('applies every file in order to a fresh database, in the service schema', async () => {
    const result = await migrate(pool, 'widgets_svc', FIXTURES);
    assert.deepEqual(result, { applied: ['0001_create_widgets.sql', '0002_add_colour.sql'], skipped: [] });
    await pool.query(`INSERT INTO widgets_svc.widgets (name) VALUES ('a')`);
    const { rows } = await pool.query(`SELECT name, colour FROM widgets_svc.widgets`);
    assert.deepEqual(rows, [{ name: 'a', colour: 'blue' }]);
    const publicTables = await pool.query(`SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'`);
    assert.equal(publicTables.rowCount, 0, 'nothing leaks into the public schema');
  });

  it('applying them again changes nothing', async () => {
    const before = await describeSchema(pool, 'widgets_svc');
    const result = await migrate(pool, 'widgets_svc', FIXTURES);
    assert.deepEqual(result, { applied: [], skipped: ['0001_create_widgets.sql', '0002_add_colour.sql'] });
    assert.deepEqual(await describeSchema(pool, 'widgets_svc'), before);
    const { rows } = await pool.query(`SELECT count(*)::int AS n FROM widgets_svc.widgets`);
    assert.equal(rows[0].n, 1);
  });

  it('concurrent runners apply each file exactly once', async () => {
    const results = await Promise.all([1, 2, 3].map(() => migrate(pool, 'other_svc', FIXTURES)));
    const applied = results.flatMap((r) => r.applied).sort();
    assert.deepEqual(applied, ['0001_create_widgets.sql', '0002_add_colour.sql']);
  });

  it('a failing file names itself and leaves nothing half-applied', async () => {
    const bad = fileURLToPath(new URL('./fixtures/bad-migrations', import.meta.url));
    await assert.rejects(migrate(pool, 'bad_svc', bad), /migration bad_svc\/0002_broken.sql failed: .*syntax error/);
    const { rows } = await pool.query(`SELECT count(*)::int AS n FROM information_schema.schemata WHERE schema_name = 'bad_svc'`);
    assert.equal(rows[0].n, 0, 'the whole run rolled back');
  });
});
