/**
 * The harness itself: a service that cannot start fails startMesh at once, naming the service
 * and what it said, and leaves no process, database or directory behind; a restart whose port
 * another process took is an error, not a mesh quietly talking to the impostor.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { it } from 'node:test';
import pg from 'pg';
import { startGrpcServer } from '#shared/grpc/server.js';
import { createLogger } from '#shared/logger.js';
import { MeshStartError, startMesh } from '#test-support/mesh.js';
import { ADMIN_URL } from '#test-support/postgres.js';

async function databaseExists(name: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: ADMIN_URL });
  await client.connect();
  try {
    return (await client.query(`SELECT 1 FROM pg_database WHERE datname = $1`, [name])).rowCount === 1;
  } finally {
    await client.end();
  }
}

it('a service that cannot start fails startMesh at once, naming it, and nothing is left behind', async () => {
  const started = Date.now();
  const err = await startMesh({ env: { COMMIT_FLUSH_TIMEOUT_MS: 'soon' } }).then(
    async (mesh) => {
      await mesh.stop();
      assert.fail('the mesh started with a bad commit setting');
    },
    (e: unknown) => e,
  );
  assert.ok(err instanceof MeshStartError, String(err));
  assert.match(
    err.message,
    /^commit exited \(code 2\) before it was SERVING: sluice commit: invalid configuration: COMMIT_FLUSH_TIMEOUT_MS="soon"/,
  );
  assert.ok(Date.now() - started < 30_000, 'it did not wait for the SERVING timeout');
  assert.equal(existsSync(err.dir), false, `${err.dir} was removed`);
  assert.ok(err.database, 'the database had been created');
  assert.equal(await databaseExists(err.database), false, `${err.database} was dropped`);
});

it('a restart on a port another process took fails, naming the port, even if the impostor answers SERVING', async () => {
  const mesh = await startMesh({ env: { LOG_LEVEL: 'info' } });
  try {
    await mesh.kill('commit');
    const port = Number(mesh.addresses.commit.split(':')[1]);
    const impostor = await startGrpcServer({
      host: '127.0.0.1',
      port,
      protoFiles: [],
      services: [],
      logger: createLogger('impostor', 'silent'),
    });
    try {
      await assert.rejects(
        mesh.restart('commit'),
        new RegExp(
          `^Error: commit exited \\(code 1\\) before it was SERVING: .*cannot listen on 127\\.0\\.0\\.1:${port}: the address is already in use`,
        ),
      );
    } finally {
      await impostor.stop(0);
    }
    assert.throws(() => mesh.assertNoCrash(), /service crashed: commit \(code 1\)/);
  } finally {
    await mesh.stop();
  }
});
