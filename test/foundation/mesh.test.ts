import assert from 'node:assert/strict';
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { checkHealth } from '#shared/grpc/health.js';
import { createTestDatabase, type TestDatabase } from '#test-support/postgres.js';
import { freePort } from '#test-support/ports.js';
import { fileContainingSymbol, listServices } from '#test-support/reflection.js';
import { runSluice, runSluiceJson } from '#test-support/cli.js';
import { waitFor } from '#test-support/wait.js';
import { programArgs, startupTimeoutMs, waitUntilServing } from '#cli/launch.js';

const root = fileURLToPath(new URL('../..', import.meta.url));

const SERVICES = [
  ['catalog', 'CATALOG_PORT', 'sluice.v1.CatalogService'],
  ['ingestion', 'INGESTION_PORT', 'sluice.v1.IngestionService'],
  ['transformation', 'TRANSFORMATION_PORT', 'sluice.v1.TransformationService'],
  ['commit', 'COMMIT_PORT', 'sluice.v1.CommitService'],
] as const;

/** Every process in the subtree below pid (to prove none outlive a stop). */
function descendants(pid: number): number[] {
  const out = execFileSync('ps', ['-e', '-o', 'pid=,ppid='], { encoding: 'utf8' });
  const children = new Map<number, number[]>();
  for (const line of out.trim().split('\n')) {
    const [p, pp] = line.trim().split(/\s+/).map(Number);
    children.set(pp, [...(children.get(pp) ?? []), p]);
  }
  const result: number[] = [];
  const walk = (p: number) => {
    for (const c of children.get(p) ?? []) {
      result.push(c);
      walk(c);
    }
  };
  walk(pid);
  return result;
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe('sluice up: the four services and the dev broker as real processes', () => {
  let db: TestDatabase;
  let mesh: ChildProcess;
  const ports: Record<string, number> = {};
  let env: Record<string, string>;
  let brokerDir: string;
  let warehouse: string;
  let stderr = '';

  before(async () => {
    db = await createTestDatabase();
    env = { ...(process.env as Record<string, string>), DATABASE_URL: db.url, LOG_LEVEL: 'warn' };
    for (const [name, variable] of SERVICES) {
      ports[name] = await freePort();
      env[variable] = String(ports[name]);
    }
    env.SLUICE_DEV_BROKER_PORT = String(await freePort());
    brokerDir = await mkdtemp(join(tmpdir(), 'sluice-mesh-broker-'));
    env.SLUICE_DEV_BROKER_DATA_DIR = brokerDir;
    warehouse = await mkdtemp(join(tmpdir(), 'sluice-mesh-warehouse-'));
    env.SLUICE_WAREHOUSE = warehouse;
    delete env.KAFKA_BROKERS;
    mesh = spawn(process.execPath, programArgs('cli', ['up']), { cwd: root, env, stdio: ['ignore', 'ignore', 'pipe'] });
    mesh.stderr!.on('data', (chunk) => (stderr += chunk));
    const timeoutMs = startupTimeoutMs(SERVICES.length);
    await Promise.all(SERVICES.map(([name]) => waitUntilServing(name, `127.0.0.1:${ports[name]}`, timeoutMs)));
  });

  after(async () => {
    if (mesh.exitCode === null) mesh.kill('SIGKILL');
    await db.drop();
    await rm(brokerDir, { recursive: true, force: true });
    await rm(warehouse, { recursive: true, force: true });
  });

  for (const [name, , fullName] of SERVICES) {
    it(`${name} answers health SERVING, for the server and for ${fullName}`, async () => {
      assert.equal(await checkHealth(`127.0.0.1:${ports[name]}`), 'SERVING');
      assert.equal(await checkHealth(`127.0.0.1:${ports[name]}`, fullName), 'SERVING');
      assert.equal(await checkHealth(`127.0.0.1:${ports[name]}`, 'sluice.v1.NoSuchService'), 'SERVICE_UNKNOWN');
    });

    it(`${name} lists ${fullName} through server reflection and describes it`, async () => {
      const services = await listServices(`127.0.0.1:${ports[name]}`);
      assert.ok(services.includes(fullName), `got ${services.join(', ')}`);
      assert.ok(services.includes('grpc.health.v1.Health'));
      assert.ok((await fileContainingSymbol(`127.0.0.1:${ports[name]}`, fullName)) >= 1);
    });
  }

  it('the embedded dev broker answers Kafka clients on its port', async () => {
    const { Kafka, logLevel } = await import('kafkajs');
    const admin = new Kafka({ brokers: [`127.0.0.1:${env.SLUICE_DEV_BROKER_PORT}`], logLevel: logLevel.NOTHING }).admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic: 'mesh-probe', numPartitions: 2 }] });
    assert.ok((await admin.listTopics()).includes('mesh-probe'));
    await admin.disconnect();
  });

  it('the catalog migrated its schema in the configured database', async () => {
    const pg = (await import('pg')).default;
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    const { rows } = await client.query(`SELECT count(*)::int AS n FROM information_schema.schemata WHERE schema_name = 'catalog'`);
    await client.end();
    assert.equal(rows[0].n, 1);
  });

  it('the README quickstart without KAFKA_BROKERS: source add, infer and job create find the dev broker sluice up started', async () => {
    const { Kafka, logLevel } = await import('kafkajs');
    const kafka = new Kafka({ brokers: [`127.0.0.1:${env.SLUICE_DEV_BROKER_PORT}`], logLevel: logLevel.NOTHING });
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic: 'orders', numPartitions: 1 }] });
    await admin.disconnect();
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({
      topic: 'orders',
      messages: [
        { value: '{"id":1,"amount":12.50,"at":"2024-05-01T08:00:00Z"}' },
        { value: '{"id":2,"amount":3.99,"at":"2024-05-01T09:00:00Z"}' },
      ],
    });
    await producer.disconnect();

    const cli = { ...env, KAFKA_BROKERS: '' };
    assert.equal((await runSluice(cli, 'source', 'add', 'orders', '--topic', 'orders', '--format', 'JSON')).code, 0);
    const inferred = await runSluiceJson<{ fields: { name: string; type: { kind: { value: string } } }[] }>(cli, 'infer', 'orders');
    const columns = [
      ['id', 'long'],
      ['amount', 'decimal(18, 2)'],
      ['at', 'timestamptz'],
    ];
    assert.deepEqual(
      inferred.fields.map((f) => [f.name, f.type.kind.value]),
      columns,
    );
    const spec = join(warehouse, 'orders.yaml');
    await writeFile(
      spec,
      'name: orders\nsource: { topic: orders, startFrom: earliest }\ntable: { database: shop, name: orders }\nmapping: { flattenLevel: 1 }\n',
    );
    const created = await runSluice(cli, 'job', 'create', '-f', spec);
    assert.equal(created.code, 0, created.stderr);
    const described = await runSluiceJson<{ schema: { fields: { name: string; type: { kind: { value: string } } }[] } }>(
      cli,
      'table',
      'describe',
      'shop.orders',
    );
    assert.deepEqual(
      described.schema.fields.map((f) => [f.name, f.type.kind.value]),
      columns,
    );
  });

  it('SIGINT stops every service cleanly and leaves no process behind', async () => {
    const tree = descendants(mesh.pid!);
    assert.ok(tree.length >= 5, `expected the four services and the dev broker, found ${tree.length}`);
    mesh.kill('SIGINT');
    const [code] = await once(mesh, 'exit');
    assert.equal(code, 0, stderr);
    // sluice up exits after its children; a process the kernel has not yet reaped may linger.
    await waitFor('every process of the mesh to be gone', () => !tree.some(alive), { timeoutMs: 20_000 }).catch(() => {});
    for (const pid of tree) assert.equal(alive(pid), false, `process ${pid} outlived the stop`);
    for (const [name] of SERVICES) assert.equal(await checkHealth(`127.0.0.1:${ports[name]}`, '', 500), 'UNAVAILABLE');
    assert.equal(existsSync(join(brokerDir, 'address')), false, 'the dev broker address sluice up recorded is gone with it');
  });
});

describe('sluice up killed with SIGKILL', () => {
  it('leaves no orphan: every child notices its launcher is gone and stops', async () => {
    const db = await createTestDatabase();
    const dir = await mkdtemp(join(tmpdir(), 'sluice-mesh-kill-'));
    const env: Record<string, string> = {
      ...(process.env as Record<string, string>),
      DATABASE_URL: db.url,
      LOG_LEVEL: 'warn',
      SLUICE_DEV_BROKER_DATA_DIR: dir,
    };
    delete env.KAFKA_BROKERS;
    for (const variable of ['CATALOG_PORT', 'INGESTION_PORT', 'TRANSFORMATION_PORT', 'COMMIT_PORT', 'SLUICE_DEV_BROKER_PORT'])
      env[variable] = String(await freePort());
    const launcher = spawn(process.execPath, programArgs('cli', ['up']), {
      cwd: root,
      env,
      stdio: ['ignore', 'ignore', 'ignore'],
    });
    try {
      await waitUntilServing('catalog', `127.0.0.1:${env.CATALOG_PORT}`, startupTimeoutMs(4));
      await waitUntilServing('ingestion', `127.0.0.1:${env.INGESTION_PORT}`, startupTimeoutMs(4));
      const tree = descendants(launcher.pid!);
      assert.ok(tree.length >= 5, `expected five children, found ${tree.length}`);
      launcher.kill('SIGKILL');
      await waitFor('every child of the killed launcher to stop', () => !tree.some(alive), { timeoutMs: 60_000 }).catch(() => {});
      assert.deepEqual(tree.filter(alive), [], 'every child exited');
    } finally {
      if (launcher.exitCode === null) launcher.kill('SIGKILL');
      await db.drop();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('a service with a bad configuration', () => {
  it('prints one line naming the variable and exits 2', async () => {
    const child = spawn(process.execPath, programArgs('commit'), {
      cwd: root,
      env: { ...process.env, COMMIT_PORT: 'eighty' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let err = '';
    child.stderr!.on('data', (c) => (err += c));
    const [code] = await once(child, 'exit');
    assert.equal(code, 2);
    assert.equal(err, 'sluice commit: invalid configuration: COMMIT_PORT="eighty" is not an integer between 0 and 65535\n');
  });
});
