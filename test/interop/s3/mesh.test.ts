/**
 * The whole path into an S3 warehouse: the four services with SLUICE_WAREHOUSE=s3://lake/wh
 * and the standard AWS variables pointing at a real S3-compatible server (S3Proxy). Metadata,
 * manifests and data files are objects; transformation uploads each data file whole before it
 * reports it; `sluice query` and Iceberg's Java reader (S3FileIO) read the table; maintenance (compaction,
 * snapshot expiry, orphan cleanup) works on the bucket.
 */
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, it } from 'node:test';
import { runQuery } from '../../../cli/src/query.js';
import { parseMetadata } from '#shared/iceberg/metadata.js';
import { resolveSnapshot, snapshotFiles } from '#shared/iceberg/scan.js';
import { S3Storage } from '#shared/storage/s3.js';
import { field, fixed, job, mapping, source, tableRequest } from '#test-support/builders.js';
import { readIcebergTable } from '#test-support/iceberg-reader.js';
import { printLogsOnFailure, startMesh, type TestMesh } from '#test-support/mesh.js';
import { startS3, type TestS3 } from '#test-support/s3.js';
import { tempDir } from '#test-support/temp.js';
import { waitFor } from '#test-support/wait.js';

let s3: TestS3;
let mesh: TestMesh;
const cache = tempDir('query-cache');
printLogsOnFailure(() => mesh);

before(async () => {
  s3 = await startS3();
  await s3.createBucket('lake');
  mesh = await startMesh({
    // Maintenance every 2 s, orphans after 3 s: the second test watches it work on S3.
    env: { ...s3.env, SLUICE_WAREHOUSE: 's3://lake/wh', COMMIT_MAINTENANCE_INTERVAL_MS: '2000', COMMIT_ORPHAN_MIN_AGE_MS: '3000' },
    clientEnv: s3.env,
  });
  // This process queries the table itself: the same variables, and a cache of its own.
  Object.assign(process.env, s3.env, { SLUICE_QUERY_CACHE_DIR: join(cache.path, 'objects') });
});
after(async () => {
  await mesh?.stop();
  await s3?.stop();
  cache.remove();
});

/** Every file below a directory, relative to it. */
async function filesBelow(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
  return entries.filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name).slice(dir.length + 1));
}

it('a job lands its records in an s3:// table, exactly once, and sluice query reads them', async () => {
  const ref = { database: 'lake', table: 'events' };
  await mesh.catalog.createDatabase({ name: ref.database, location: '', properties: {} });
  const { table } = await mesh.catalog.createTable(
    tableRequest(ref, [...fixed, field(4, 'id', 'long'), field(5, 'name', 'string')], {
      // Compacted once two small files exist; snapshots expire at once (the last one kept).
      properties: {
        'sluice.compaction.min-input-files': '2',
        'history.expire.max-snapshot-age-ms': '1',
        'history.expire.min-snapshots-to-keep': '1',
      },
    }),
  );
  assert.match(table!.location, /^s3:\/\/lake\/wh\//);
  await mesh.catalog.createSource({ source: source('events', 'events') });
  await mesh.catalog.createJob({ job: job('events', 'events', ref, { commitIntervalMs: 1000, mapping: mapping() }) });
  mesh.broker.createTopic('events', 2);
  for (const p of [0, 1])
    mesh.broker.append(
      'events',
      p,
      Array.from({ length: 250 }, (_, i) => ({ value: JSON.stringify({ id: p * 1000 + i, name: `n${i}` }) })),
    );
  await mesh.ingestion.startJob({ job: 'events' });
  await waitFor('both partitions committed to their ends', async () => {
    const { offsets } = await mesh.catalog.getCommittedOffsets({ job: 'events' });
    return offsets.length === 2 && offsets.every((o) => o.nextOffset === 250);
  });

  const { rows } = await runQuery(mesh.catalog, 'SELECT count(*)::BIGINT AS n, count(DISTINCT id)::BIGINT AS d FROM lake.events');
  assert.deepEqual(rows, [{ n: 500, d: 500 }]);

  // Iceberg's own Java library reads the same table from the bucket (S3FileIO), and finds it sound.
  const read = await readIcebergTable({
    databaseUrl: mesh.db.url,
    warehouse: 's3://lake/wh',
    table: 'lake.events',
    s3: { endpoint: s3.endpoint, accessKeyId: s3.options.accessKeyId, secretAccessKey: s3.options.secretAccessKey, region: 'us-east-1' },
  });
  assert.deepEqual(read.problems, []);
  assert.equal(read.rows.length, 500);
  assert.deepEqual(
    read.rows.map((r) => Number(r.id)).sort((a, b) => a - b),
    [...Array.from({ length: 250 }, (_, i) => i), ...Array.from({ length: 250 }, (_, i) => 1000 + i)],
  );
  assert.ok(read.files.every((f) => f.path.startsWith('s3://lake/wh/')));

  const objects = await filesBelow(join(s3.dir, 'lake'));
  assert.ok(
    objects.some((o) => /^wh\/.*\/metadata\/.*\.metadata\.json$/.test(o)),
    `metadata in the bucket: ${objects.join(', ')}`,
  );
  assert.ok(
    objects.some((o) => /^wh\/.*\/data\/.*\.parquet$/.test(o)),
    'data files in the bucket',
  );
  assert.ok(
    objects.some((o) => /^wh\/.*\/metadata\/.*\.avro$/.test(o)),
    'manifests in the bucket',
  );
  assert.deepEqual(await filesBelow(join(mesh.warehouse)), [], 'nothing written to the local warehouse');
});

it('maintenance works on S3: small files compacted, old snapshots expired, an orphan object deleted; the rows stay', async () => {
  const ref = { database: 'lake', table: 'events' };
  const { table } = await mesh.catalog.getTable({ ref });
  const storage = new S3Storage(s3.options);
  const orphan = `${table!.location}/data/left-behind-by-a-crash.parquet`;
  await storage.write(orphan, new Uint8Array([1, 2, 3]));

  await waitFor(
    'one compacted data file, one snapshot, and the orphan gone',
    async () => {
      const { table: now } = await mesh.catalog.getTable({ ref });
      const meta = parseMetadata(await storage.read(now!.metadataLocation));
      const snapshot = resolveSnapshot(meta);
      const files = snapshot ? (await snapshotFiles(storage, snapshot)).dataFiles : [];
      return files.length === 1 && meta.snapshots.length === 1 && !(await storage.exists(orphan));
    },
    { timeoutMs: 60_000, intervalMs: 250 },
  );
  const { rows } = await runQuery(mesh.catalog, 'SELECT count(*)::BIGINT AS n, count(DISTINCT id)::BIGINT AS d FROM lake.events');
  assert.deepEqual(rows, [{ n: 500, d: 500 }]);
});

it('with an S3 warehouse, records land exactly once while each service is killed -9 and restarted', async () => {
  const ref = { database: 'lake', table: 'waves' };
  const partitions = 3;
  const perWave = 400;
  // No compaction here: the files of each wave stay apart, for the pruned query at the end.
  await mesh.catalog.createTable(
    tableRequest(ref, [...fixed, field(4, 'id', 'long')], { properties: { 'sluice.compaction.min-input-files': '1000' } }),
  );
  await mesh.catalog.createSource({ source: source('waves', 'waves') });
  await mesh.catalog.createJob({
    job: job('waves', 'waves', ref, { commitIntervalMs: 1000, mapping: mapping({ includeFixedColumns: true }) }),
  });
  mesh.broker.createTopic('waves', partitions);
  await mesh.ingestion.startJob({ job: 'waves' });
  const committed = async () =>
    (await mesh.catalog.getCommittedOffsets({ job: 'waves' })).offsets.reduce((n, o) => n + Number(o.nextOffset), 0);

  let produced = 0;
  for (const victim of ['transformation', 'commit', 'ingestion', 'catalog'] as const) {
    for (let p = 0; p < partitions; p++)
      mesh.broker.append(
        'waves',
        p,
        Array.from({ length: perWave }, () => ({ value: JSON.stringify({ id: produced++ }) })),
      );
    const mark = await committed();
    await mesh.kill(victim);
    await mesh.restart(victim);
    await waitFor(`a commit after ${victim} was killed and restarted`, async () => (await committed()) > mark, {
      timeoutMs: 120_000,
      intervalMs: 250,
    });
  }
  await waitFor('every record committed', async () => (await committed()) === produced, { timeoutMs: 120_000, intervalMs: 250 });
  mesh.assertNoCrash();

  const { rows } = await runQuery(
    mesh.catalog,
    'SELECT count(*)::BIGINT AS n, count(DISTINCT id)::BIGINT AS ids, count(DISTINCT ("partition", "offset"))::BIGINT AS positions FROM lake.waves',
  );
  assert.deepEqual(rows, [{ n: produced, ids: produced, positions: produced }]);

  // The last wave's ids: files of earlier waves are ruled out by their bounds and not fetched;
  // the same question in a form that cannot be pruned gives the same answer.
  const lastWave = produced - partitions * perWave;
  const pruned = await runQuery(
    mesh.catalog,
    `SELECT count(*)::BIGINT AS n, min(id)::BIGINT AS lo FROM lake.waves WHERE id >= ${lastWave}`,
  );
  const whole = await runQuery(
    mesh.catalog,
    `SELECT count(*)::BIGINT AS n, min(id)::BIGINT AS lo FROM lake.waves WHERE id + 0 >= ${lastWave}`,
  );
  assert.deepEqual(pruned.rows, [{ n: partitions * perWave, lo: lastWave }]);
  assert.deepEqual(whole.rows, pruned.rows);
  assert.equal(whole.tables[0].skippedFiles, 0);
  assert.ok(pruned.tables[0].skippedFiles > 0, `files skipped: ${JSON.stringify(pruned.tables)}`);

  // Dropped with purge: every object of the table leaves the bucket; the other table's stay.
  await mesh.ingestion.stopJob({ job: 'waves' });
  await mesh.catalog.deleteJob({ name: 'waves' });
  const { table } = await mesh.catalog.getTable({ ref });
  const tableDir = new URL(table!.location).pathname.slice(1);
  assert.ok((await filesBelow(join(s3.dir, 'lake', tableDir))).length > 0);
  await mesh.catalog.dropTable({ ref, purge: true });
  assert.deepEqual(await filesBelow(join(s3.dir, 'lake', tableDir)), []);
  assert.ok(
    (await filesBelow(join(s3.dir, 'lake'))).some((o) => o.includes('/events')),
    "the other table's objects stay",
  );
});
