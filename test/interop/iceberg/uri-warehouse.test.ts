/**
 * The warehouse as README.md writes it for engines, a file:// URI, given to Sluice as well
 * (SLUICE_WAREHOUSE=file:///…) and to Iceberg's JdbcCatalog: Iceberg's Java library reads the
 * tables with the rows `sluice query` returns, now and at an older snapshot. (Sluice records
 * local locations as absolute paths either way; the other interop files use a plain directory.)
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, it } from 'node:test';
import { readIcebergTable } from '#test-support/iceberg-reader.js';
import { printLogsOnFailure, startMesh, type TestMesh } from '#test-support/mesh.js';
import { bothReaders, committedThrough, type HistoryJson, produce, sluiceJson } from './helpers.js';

const suffix = randomBytes(3).toString('hex');
const database = `uri_${suffix}`;
const job = `uri-${suffix}`;
const table = `${database}.events`;

let mesh: TestMesh | undefined;
printLogsOnFailure(() => mesh);
/** The warehouse directory, and the URI the services are given for it. */
let directory = '';
let uri = '';

before(async () => {
  directory = await mkdtemp(join(tmpdir(), 'sluice-uri-warehouse-'));
  uri = pathToFileURL(directory).href;
  mesh = await startMesh({ partitions: 1, env: { SLUICE_WAREHOUSE: uri } });
});
after(async () => {
  await mesh?.stop();
  await rm(directory, { recursive: true, force: true });
});

it('a table under a file:// warehouse: Iceberg opens it with the URI as warehouse and reads the rows sluice query returns', async () => {
  const m = mesh!;
  m.broker.createTopic(job, 1);
  const spec = join(m.dir, 'uri.yaml');
  await writeFile(
    spec,
    `name: ${job}
source: { topic: ${job}, format: JSON, startFrom: earliest }
table:
  database: ${database}
  name: events
  columns:
    - { name: id, type: long, required: true }
    - { name: at, type: timestamptz }
  partitionSpec:
    - { column: at, transform: day }
mapping: { flattenLevel: 1 }
commit: { intervalMs: 1000 }
`,
  );
  await sluiceJson(m, 'job', 'create', '-f', spec, '--start');
  const at = (id: number) => new Date(Date.UTC(2024, 4, 1 + (id % 2), 12, id)).toISOString();
  produce(
    m,
    job,
    [1, 2, 3].map((id) => ({ value: { id, at: at(id) } })),
  );
  await committedThrough(m, job);
  const first = await sluiceJson<HistoryJson>(m, 'table', 'history', table);
  produce(
    m,
    job,
    [4, 5].map((id) => ({ value: { id, at: at(id) } })),
  );
  await committedThrough(m, job);

  for (const snapshotId of [undefined, first.currentSnapshotId]) {
    const read = await readIcebergTable({ databaseUrl: m.db.url, warehouse: uri, table, snapshotId });
    assert.deepEqual(read.problems, []);
    // Sluice normalizes file:// locations to absolute paths; Iceberg's HadoopFileIO reads both.
    assert.equal(read.location, join(directory, database, 'events'));
    assert.ok(read.metadataLocation.startsWith(`${directory}/`), read.metadataLocation);
    assert.ok(
      read.files.every((f) => f.path.startsWith(`${directory}/`)),
      'every data file is under the warehouse',
    );
    const both = await bothReaders(m, read);
    assert.deepEqual(both.iceberg, both.sluice);
    assert.equal(read.rows.length, snapshotId === undefined ? 5 : 3);
  }
});
