/**
 * Sluice against real Debezium: Debezium's PostgreSQL connector (Kafka Connect standalone, from
 * peers/debezium) captures seed 004's `sales` table from a PostgreSQL cluster of this test's own
 * (wal_level=logical, test/support/debezium.ts) into real Apache Kafka, in Debezium's default
 * JSON (JsonConverter with the schema/payload wrapper: dates as io.debezium.time.Date days,
 * decimals as base64 bytes with their scale). A Sluice job with `mapping.changes: debezium`,
 * created with the CLI as a user would, keeps a keyed Iceberg table in sync: first with the
 * snapshot (op r), then with a delete, two updates of one row and an insert streamed from the
 * WAL. The table must equal the seed's final table, read by `sluice query` (merge-on-read) and
 * by Apache Iceberg's Java reader (IcebergGenerics, which applies the position deletes).
 *
 * Nothing here sleeps: every wait is a waitFor on what the table shows, with timeouts that
 * leave room for the JVMs to start on a small machine.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import { runSluiceJson } from '#test-support/cli.js';
import { type CdcPostgres, type RealDebezium, startCdcPostgres, startDebezium } from '#test-support/debezium.js';
import { readIcebergTable } from '#test-support/iceberg-reader.js';
import { type RealKafka, startKafka } from '#test-support/kafka.js';
import { printLogsOnFailure, startMesh, type TestMesh } from '#test-support/mesh.js';
import { waitFor } from '#test-support/wait.js';
import { readAll } from './helpers.js';

const run = randomBytes(3).toString('hex');
const JOB = `debezium-${run}`;
const DATABASE = `debezium_${run}`;
const TABLE = `${DATABASE}.sales`;
const TOPIC_PREFIX = `cdc_${run}`;
const TOPIC = `${TOPIC_PREFIX}.public.sales`;
/** Debezium's start (a JVM, Connect, the snapshot) takes 20-40 s here; the table follows within a commit interval. */
const SYNC_TIMEOUT_MS = 180_000;

let kafka: RealKafka | undefined;
let cdc: CdcPostgres | undefined;
let debezium: RealDebezium | undefined;
let mesh: TestMesh<undefined> | undefined;
printLogsOnFailure(() => mesh as TestMesh | undefined);

function printPeerLogs(why: string): void {
  if (debezium) process.stderr.write(`\n##### Kafka Connect / Debezium output (${why}) #####\n${debezium.logs()}\n`);
  if (cdc) process.stderr.write(`\n##### CDC PostgreSQL output (${why}) #####\n${cdc.logs()}\n`);
}
afterEach((t) => {
  if ((t as { passed?: boolean }).passed === false) printPeerLogs(`failed test "${t.name}"`);
});

const sluice = <T = unknown>(...args: string[]): Promise<T> => runSluiceJson<T>(mesh!.clientEnv, ...args);

interface Row {
  id: number;
  date: string;
  name: string;
  sales: string;
}

/** Seed 004's table after the snapshot: four rows. */
const SNAPSHOT: Row[] = [
  { id: 1, date: '2019-11-11', name: 'Robert', sales: '323.00' },
  { id: 2, date: '2019-11-11', name: 'Lee', sales: '500.00' },
  { id: 3, date: '2019-11-12', name: 'Robert', sales: '136.00' },
  { id: 4, date: '2019-11-13', name: 'Lee', sales: '211.00' },
];
/** Seed 004's final table: id 1 deleted, id 2 updated twice, id 5 inserted. */
const FINAL: Row[] = [
  { id: 2, date: '2019-11-11', name: 'Lee', sales: '175.00' },
  { id: 3, date: '2019-11-12', name: 'Robert', sales: '136.00' },
  { id: 4, date: '2019-11-13', name: 'Lee', sales: '211.00' },
  { id: 5, date: '2019-11-14', name: 'Robert', sales: '233.00' },
];

/** A decimal as text with two fraction digits, whether DuckDB printed a number or a string. */
const money = (v: unknown): string => (typeof v === 'number' ? v.toFixed(2) : String(v));
/** A date as YYYY-MM-DD, whether printed as a date or a timestamp. */
const day = (v: unknown): string => String(v).slice(0, 10);
const normalize = (r: Record<string, unknown>): Row => ({
  id: Number(r.id),
  date: day(r.date),
  name: String(r.name),
  sales: money(r.sales),
});

/** The table through `sluice query`, by id. */
async function queryTable(): Promise<Row[]> {
  const res = await sluice<{ rows: Record<string, unknown>[] }>('query', `SELECT id, "date", name, sales FROM ${TABLE} ORDER BY id`);
  return res.rows.map(normalize);
}

/** Waits until `sluice query` shows exactly `expected`; the table missing (no commit yet) counts as not yet. */
async function untilTableIs(expected: Row[], what: string): Promise<Row[]> {
  let last = 'no answer yet';
  try {
    return await waitFor(
      what,
      async () => {
        mesh!.assertNoCrash();
        let rows: Row[];
        try {
          rows = await queryTable();
        } catch (err) {
          last = (err as Error).message.split('\n').slice(0, 3).join(' ');
          return undefined;
        }
        last = JSON.stringify(rows);
        return JSON.stringify(rows) === JSON.stringify(expected) ? rows : undefined;
      },
      { timeoutMs: SYNC_TIMEOUT_MS, intervalMs: 500 },
    );
  } catch (err) {
    const status = await sluice('job', 'status', JOB).catch((e: Error) => e.message);
    throw new Error(`${(err as Error).message}; last seen: ${last}; job status: ${JSON.stringify(status)}`, { cause: err });
  }
}

before(async () => {
  try {
    const started = Date.now();
    // Kafka and the CDC PostgreSQL are independent: start them together.
    await Promise.all([
      startKafka().then((k) => {
        kafka = k;
      }),
      startCdcPostgres().then((c) => {
        cdc = c;
      }),
    ]);
    process.stdout.write(`Apache Kafka started in ${kafka!.startMs} ms; CDC PostgreSQL on port ${cdc!.port}\n`);
    await cdc!.sql(`CREATE TABLE sales (id bigint PRIMARY KEY, date date, name varchar(32), sales numeric(7,2));
      INSERT INTO sales VALUES (1, '2019-11-11', 'Robert', 323.00), (2, '2019-11-11', 'Lee', 500.00),
        (3, '2019-11-12', 'Robert', 136.00), (4, '2019-11-13', 'Lee', 211.00);`);
    await kafka!.createTopic(TOPIC, { partitions: 1 });
    // Debezium and the mesh are independent too.
    await Promise.all([
      startDebezium({ kafkaBrokers: kafka!.brokers, pgPort: cdc!.port, topicPrefix: TOPIC_PREFIX, tables: ['public.sales'] }).then((d) => {
        debezium = d;
      }),
      startMesh({ kafkaBrokers: kafka!.brokers }).then((m) => {
        mesh = m;
      }),
    ]);
    process.stdout.write(`Debezium's connector ran ${debezium!.startMs} ms after its JVM started; setup took ${Date.now() - started} ms\n`);

    const spec = join(mesh!.dir, `${JOB}.yaml`);
    await writeFile(
      spec,
      `name: ${JOB}
source: { name: ${JOB}, topic: ${TOPIC}, format: JSON }
table:
  database: ${DATABASE}
  name: sales
  columns:
    - { name: id, type: long, required: true }
    - { name: date, type: date }
    - { name: name, type: string }
    - { name: sales, type: "decimal(7,2)" }
  key: [id]
mapping:
  changes: debezium
commit:
  intervalMs: 1000
`,
    );
    const status = await sluice<{ state: string }>('job', 'create', '-f', spec, '--start');
    assert.equal(status.state, 'JOB_STATE_RUNNING');
  } catch (err) {
    printPeerLogs('setup failed');
    if (mesh) process.stderr.write(`\n##### service output (setup failed) #####\n${mesh.logs()}\n`);
    throw err;
  }
});

after(async () => {
  // Debezium first (it holds a replication connection to the CDC PostgreSQL and produces to Kafka).
  const steps = [() => debezium?.stop(), () => mesh?.stop(), () => cdc?.stop(), () => kafka?.remove()];
  const errors: unknown[] = [];
  for (const step of steps) await Promise.resolve(step()).catch((err) => errors.push(err));
  if (errors.length > 0) throw errors[0];
});

describe('Debezium PostgreSQL connector → Kafka → Sluice (changes: debezium) → Iceberg', () => {
  it("the snapshot lands as seed 004's four rows", async () => {
    const rows = await untilTableIs(SNAPSHOT, `the ${SNAPSHOT.length} snapshot rows in ${TABLE}`);
    assert.deepEqual(rows, SNAPSHOT);
  });

  it("the topic holds Debezium's default JSON: schema/payload wrapper, Date days and Decimal bytes", async () => {
    // What the job just read: the snapshot's four read events (op r), keyed by { schema, payload: { id } }.
    const values = (await readAll(kafka!.brokers, TOPIC, 0, '%s\n')).map((l) => JSON.parse(l));
    const reads = values.filter((v) => v?.payload?.op === 'r');
    assert.equal(reads.length, SNAPSHOT.length, JSON.stringify(values).slice(0, 2000));
    const after = reads[0].schema.fields.find((f: { field: string }) => f.field === 'after');
    const field = (name: string) => after.fields.find((f: { field: string }) => f.field === name);
    assert.equal(field('date').name, 'io.debezium.time.Date');
    assert.equal(field('sales').name, 'org.apache.kafka.connect.data.Decimal');
    assert.equal(field('sales').parameters.scale, '2');
    const first = reads.find((v) => v.payload.after.id === 1).payload.after;
    assert.equal(first.date, 18211); // 2019-11-11 in days since 1970-01-01
    const unscaled = Buffer.from(first.sales, 'base64');
    assert.equal(unscaled.readUIntBE(0, unscaled.length), 32300); // 323.00 at scale 2
  });

  it("streamed deletes, updates and inserts leave the seed's final table", async () => {
    await cdc!.sql(`DELETE FROM sales WHERE id = 1;
      UPDATE sales SET sales = 150 WHERE id = 2;
      UPDATE sales SET sales = 175 WHERE id = 2;
      INSERT INTO sales VALUES (5, '2019-11-14', 'Robert', 233);`);
    const rows = await untilTableIs(FINAL, `${TABLE} to equal seed 004's final table`);
    assert.deepEqual(rows, FINAL);
  });

  it("Apache Iceberg's Java reader reads the same four rows (position deletes applied)", async () => {
    const read = await readIcebergTable({ databaseUrl: mesh!.db.url, warehouse: mesh!.warehouse, table: TABLE });
    assert.deepEqual(read.problems, []);
    const rows = read.rows.map(normalize).sort((a, b) => a.id - b.id);
    assert.deepEqual(rows, FINAL);
  });

  it('job status counts the changes: inserted - deleted = 4', async () => {
    const { changes } = await sluice<{ changes?: { inserted: number | string; updated: number | string; deleted: number | string } }>(
      'job',
      'status',
      JOB,
    );
    assert.ok(changes, 'job status has no changes');
    const [inserted, updated, deleted] = [changes.inserted, changes.updated, changes.deleted].map(Number);
    for (const n of [inserted, updated, deleted]) assert.ok(Number.isInteger(n) && n >= 0, JSON.stringify(changes));
    process.stdout.write(`job status changes: ${JSON.stringify(changes)}\n`);
    assert.equal(inserted - deleted, FINAL.length, JSON.stringify(changes));
    assert.ok(deleted >= 1 && updated >= 1, JSON.stringify(changes));
  });
});
