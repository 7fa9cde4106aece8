/**
 * Every catalog RPC except commits, over real gRPC against a real PostgreSQL database,
 * with its error codes.
 */
import { existsSync, mkdirSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { status } from '@grpc/grpc-js';
import { CompletionPolicy, JobState, OffsetResetPolicy, StartFrom, type Job } from '#shared/gen/sluice/v1/catalog.js';
import { MessageFormat, MessageMode } from '#shared/gen/sluice/v1/types.js';
import { field, primitive, schema } from '#test-support/builders.js';
import { tempDir } from '#test-support/temp.js';
import { failure, startTestCatalog, type TestCatalog } from './harness.js';

let cat: TestCatalog;
before(async () => {
  cat = await startTestCatalog();
});
after(() => cat.stop());

const events = () =>
  schema(
    field(0, 'id', 'long', true),
    field(0, 'ts', 'timestamptz'),
    field(0, 'price', 'decimal(10,2)'),
    field(0, 'ratio', 'float'),
    field(0, 'n', 'int'),
    field(0, 'address', {
      kind: { $case: 'struct', value: { fields: [field(0, 'city', 'string'), field(0, 'zip', 'string')] } },
    }),
    field(0, 'tags', { kind: { $case: 'list', value: { elementId: 0, elementRequired: false, element: primitive('string') } } }),
    field(0, 'attrs', {
      kind: { $case: 'map', value: { keyId: 0, key: primitive('string'), valueId: 0, valueRequired: false, value: primitive('double') } },
    }),
  );

test('databases: create-if-missing, get, list, drop (refusing non-empty without cascade)', async () => {
  const first = await cat.client.createDatabase({ name: 'sales', location: '', properties: { owner: 'ops' } });
  assert.equal(first.created, true);
  assert.equal(first.database?.location, `${cat.warehouse}/sales`);
  const again = await cat.client.createDatabase({ name: 'sales', location: `${cat.warehouse}/elsewhere`, properties: {} });
  assert.equal(again.created, false);
  assert.deepEqual(again.database, first.database, 'the existing database is returned unchanged');
  assert.deepEqual((await cat.client.getDatabase({ name: 'sales' })).database?.properties, { owner: 'ops' });
  assert.ok((await cat.client.listDatabases({})).databases.some((d) => d.name === 'sales'));

  const jdbc = await cat.pool.query(
    `SELECT property_key FROM public.iceberg_namespace_properties WHERE catalog_name = 'sluice' AND namespace = 'sales' ORDER BY 1`,
  );
  assert.deepEqual(
    jdbc.rows.map((r) => r.property_key),
    ['exists', 'location', 'owner'],
  );

  await cat.client.createTable({
    ref: { database: 'sales', table: 'orders' },
    schema: schema(field(0, 'id', 'long')),
    location: '',
    properties: {},
    ifNotExists: false,
  });
  const refused = await failure(cat.client.dropDatabase({ name: 'sales', cascade: false, purge: false }));
  assert.equal(refused.code, status.FAILED_PRECONDITION);
  assert.match(refused.details, /not empty \(tables: orders\)/);
  await cat.client.dropDatabase({ name: 'sales', cascade: true, purge: true });
  assert.equal((await failure(cat.client.getDatabase({ name: 'sales' }))).code, status.NOT_FOUND);
  assert.equal((await cat.pool.query(`SELECT 1 FROM public.iceberg_tables WHERE table_namespace = 'sales'`)).rowCount, 0);
});

test('names are validated with the field named', async () => {
  const cases: [string, RegExp][] = [
    ['', /name "" is required/],
    ['Sales', /must be lower case/],
    ['../etc', /must match/],
    ['a.b', /must match/],
    ['x'.repeat(129), /longer than 128/],
  ];
  for (const [name, pattern] of cases) {
    const f = await failure(cat.client.createDatabase({ name, location: '', properties: {} }));
    assert.equal(f.code, status.INVALID_ARGUMENT, name);
    assert.match(f.details, pattern, name);
  }
  const badLocation = await failure(cat.client.createDatabase({ name: 'x', location: 's3://bucket/wh', properties: {} }));
  assert.equal(badLocation.code, status.INVALID_ARGUMENT);
  assert.match(badLocation.details, /unsupported storage scheme "s3"/);
});

test('tables: create with nested types and every transform, get, list, duplicates, drop with purge', async () => {
  await cat.client.createDatabase({ name: 'shop', location: '', properties: {} });
  const ref = { database: 'shop', table: 'events' };
  const transforms = ['identity', 'year', 'month', 'day', 'hour', 'bucket[8]', 'truncate[4]'];
  const sources = ['address.city', 'ts', 'ts', 'ts', 'ts', 'id', 'price'];
  const { table } = await cat.client.createTable({
    ref,
    schema: events(),
    partitionSpec: {
      specId: 0,
      fields: transforms.map((t, i) => ({ sourceId: 0, fieldId: 0, name: '', transform: t, sourceName: sources[i] })),
    },
    location: '',
    properties: { 'write.format.default': 'parquet' },
    ifNotExists: false,
  });
  assert.ok(table);
  assert.equal(table.location, `${cat.warehouse}/shop/events`);
  assert.match(table.metadataLocation, /\/metadata\/00001-[0-9a-f-]+\.metadata\.json$/);
  assert.deepEqual(
    table.schema?.fields.map((f) => f.id),
    [1, 2, 3, 4, 5, 6, 7, 8],
  );
  assert.deepEqual(
    table.partitionSpec?.fields.map((f) => [f.name, f.transform, f.sourceName]),
    [
      ['address_city', 'identity', 'address.city'],
      ['ts_year', 'year', 'ts'],
      ['ts_month', 'month', 'ts'],
      ['ts_day', 'day', 'ts'],
      ['ts_hour', 'hour', 'ts'],
      ['id_bucket_8', 'bucket[8]', 'id'],
      ['price_trunc_4', 'truncate[4]', 'price'],
    ],
  );
  assert.equal(table.currentSnapshotId, undefined);
  assert.deepEqual((await cat.client.getTable({ ref })).table, table);
  assert.deepEqual(
    (await cat.client.listTables({ database: 'shop' })).tables.map((t) => t.ref?.table),
    ['events'],
  );
  const jdbc = await cat.pool.query(
    `SELECT metadata_location FROM public.iceberg_tables WHERE catalog_name = 'sluice' AND table_namespace = 'shop' AND table_name = 'events'`,
  );
  assert.equal(jdbc.rows[0].metadata_location, table.metadataLocation);

  const dup = await failure(cat.client.createTable({ ref, schema: events(), location: '', properties: {}, ifNotExists: false }));
  assert.equal(dup.code, status.ALREADY_EXISTS);
  const same = await cat.client.createTable({ ref, schema: events(), location: '', properties: {}, ifNotExists: true });
  assert.equal(same.table?.tableUuid, table.tableUuid);

  // A file beside the table's own, which no snapshot names (before: the purge deleted the whole directory).
  const foreign = join(table!.location, 'notes.txt');
  writeFileSync(foreign, 'not the table');
  await cat.client.dropTable({ ref, purge: true });
  assert.equal((await failure(cat.client.getTable({ ref }))).code, status.NOT_FOUND);
  assert.equal(existsSync(table!.metadataLocation), false, 'purge removed the metadata it names');
  assert.equal(existsSync(foreign), true, 'and left the file it does not name');
});

test('table requests with bad schemas, specs or locations are refused with the right code', async () => {
  await cat.client.createDatabase({ name: 'bad', location: '', properties: {} });
  const create = (over: Record<string, unknown>) =>
    failure(
      cat.client.createTable({
        ref: { database: 'bad', table: 't' },
        schema: schema(field(0, 'id', 'long')),
        location: '',
        properties: {},
        ifNotExists: false,
        ...over,
      }),
    );
  const cases: [string, Record<string, unknown>, number, RegExp][] = [
    ['unknown type', { schema: schema(field(0, 'id', 'varchar')) }, status.INVALID_ARGUMENT, /unknown type "varchar" for id/],
    [
      'hour on a long',
      { partitionSpec: { specId: 0, fields: [{ sourceId: 0, fieldId: 0, name: '', transform: 'hour', sourceName: 'id' }] } },
      status.INVALID_ARGUMENT,
      /hour cannot apply to id/,
    ],
    [
      'unknown source',
      { partitionSpec: { specId: 0, fields: [{ sourceId: 0, fieldId: 0, name: '', transform: 'identity', sourceName: 'nope' }] } },
      status.INVALID_ARGUMENT,
      /column "nope" is not in the schema/,
    ],
    ['missing database', { ref: { database: 'nodb', table: 't' } }, status.NOT_FOUND, /database nodb does not exist/],
    ['no schema', { schema: undefined }, status.INVALID_ARGUMENT, /schema is required/],
    ['dot segments', { location: '/tmp/../etc' }, status.INVALID_ARGUMENT, /dot segment/],
  ];
  for (const [name, over, code, pattern] of cases) {
    const f = await create(over);
    assert.equal(f.code, code, name);
    assert.match(f.details, pattern, name);
  }

  await cat.client.createTable({
    ref: { database: 'bad', table: 'a' },
    schema: schema(field(0, 'id', 'long')),
    location: `${cat.warehouse}/lake/a`,
    properties: {},
    ifNotExists: false,
  });
  for (const location of [`${cat.warehouse}/lake/a/b`, `${cat.warehouse}/lake`, `file://${cat.warehouse}/lake/a/`]) {
    const f = await create({ location });
    assert.equal(f.code, status.FAILED_PRECONDITION, location);
    assert.match(f.details, /overlaps location .*lake\/a of table bad\.a/, location);
  }
  await cat.client.createTable({
    ref: { database: 'bad', table: 'ab' },
    schema: schema(field(0, 'id', 'long')),
    location: `${cat.warehouse}/lake/ab`,
    properties: {},
    ifNotExists: false,
  });
});

test('schema evolution: safe changes applied with fresh ids, unsafe ones refused with the reason', async () => {
  await cat.client.createDatabase({ name: 'evo', location: '', properties: {} });
  const ref = { database: 'evo', table: 't' };
  const created = await cat.client.createTable({ ref, schema: events(), location: '', properties: {}, ifNotExists: false });
  const lastId = 13; // 8 top-level + city, zip, element, key, value
  const { table } = await cat.client.updateSchema({
    ref,
    expectedSchemaId: 0,
    changes: [
      { change: { $case: 'addColumn', value: { parent: '', name: 'note', type: primitive('string'), doc: 'free text', required: false } } },
      {
        change: { $case: 'addColumn', value: { parent: 'address', name: 'country', type: primitive('string'), doc: '', required: false } },
      },
      { change: { $case: 'renameColumn', value: { path: 'ratio', newName: 'share' } } },
      { change: { $case: 'updateColumnType', value: { path: 'n', newType: 'long' } } },
      { change: { $case: 'updateColumnType', value: { path: 'share', newType: 'double' } } },
      { change: { $case: 'updateColumnType', value: { path: 'price', newType: 'decimal(12, 2)' } } },
      { change: { $case: 'makeColumnOptional', value: { path: 'id' } } },
    ],
  });
  assert.ok(table?.schema);
  assert.equal(table.schema.schemaId, 1);
  const byName = new Map(table.schema.fields.map((f) => [f.name, f]));
  assert.equal(byName.get('note')?.id, lastId + 1);
  assert.equal(byName.get('share')?.id, 4, 'rename keeps the id');
  assert.equal(byName.get('share')?.type?.kind?.value, 'double');
  assert.equal(byName.get('n')?.type?.kind?.value, 'long');
  assert.equal(byName.get('price')?.type?.kind?.value, 'decimal(12, 2)');
  assert.equal(byName.get('id')?.required, false);
  const address = byName.get('address')?.type?.kind;
  assert.equal(
    address?.$case === 'struct' && address.value.fields.map((f) => `${f.name}:${f.id}`).join(','),
    `city:9,zip:10,country:${lastId + 2}`,
  );
  assert.equal(table.previousMetadataLocation, created.table?.metadataLocation);

  const stale = await failure(
    cat.client.updateSchema({ ref, expectedSchemaId: 0, changes: [{ change: { $case: 'makeColumnOptional', value: { path: 'ts' } } }] }),
  );
  assert.equal(stale.code, status.ABORTED);

  const unsafe: [string, Parameters<typeof cat.client.updateSchema>[0]['changes'][number], RegExp][] = [
    ['long to int', { change: { $case: 'updateColumnType', value: { path: 'n', newType: 'int' } } }, /cannot change n from long to int/],
    [
      'string to int',
      { change: { $case: 'updateColumnType', value: { path: 'note', newType: 'int' } } },
      /would misread existing data files/,
    ],
    [
      'decimal scale',
      { change: { $case: 'updateColumnType', value: { path: 'price', newType: 'decimal(12, 3)' } } },
      /scale cannot change/,
    ],
    [
      'decimal narrower',
      { change: { $case: 'updateColumnType', value: { path: 'price', newType: 'decimal(11, 2)' } } },
      /precision can only grow/,
    ],
    [
      'required add',
      { change: { $case: 'addColumn', value: { parent: '', name: 'must', type: primitive('int'), doc: '', required: true } } },
      /cannot add required column must/,
    ],
    [
      'existing add',
      { change: { $case: 'addColumn', value: { parent: '', name: 'note', type: primitive('int'), doc: '', required: false } } },
      /already exists/,
    ],
    ['rename clash', { change: { $case: 'renameColumn', value: { path: 'note', newName: 'share' } } }, /already exists there/],
    ['missing column', { change: { $case: 'makeColumnOptional', value: { path: 'nope' } } }, /column nope does not exist/],
    [
      'struct type change',
      { change: { $case: 'updateColumnType', value: { path: 'address', newType: 'string' } } },
      /only primitive columns/,
    ],
  ];
  for (const [name, change, pattern] of unsafe) {
    const f = await failure(cat.client.updateSchema({ ref, changes: [change] }));
    assert.equal(f.code, status.INVALID_ARGUMENT, name);
    assert.match(f.details, pattern, name);
  }
  // Failed evolutions changed nothing.
  assert.equal((await cat.client.getTable({ ref })).table?.schema?.schemaId, 1);
});

test('sources and jobs: CRUD, validation, state machine, delete rules', async () => {
  await cat.client.createDatabase({ name: 'sync', location: '', properties: {} });
  const ref = { database: 'sync', table: 'clicks' };
  await cat.client.createTable({
    ref,
    schema: schema(field(0, 'id', 'long')),
    location: '',
    properties: {},
    ifNotExists: false,
  });
  const source = {
    name: 'clicks_src',
    brokers: ['127.0.0.1:9092'],
    topic: 'clicks.v1',
    format: MessageFormat.MESSAGE_FORMAT_JSON,
    mode: MessageMode.MESSAGE_MODE_UNSPECIFIED,
    properties: {},
    createdAtMs: 0,
  };
  const created = await cat.client.createSource({ source });
  assert.equal(created.source?.topic, 'clicks.v1');
  assert.ok((created.source?.createdAtMs ?? 0) > 0);
  assert.equal((await failure(cat.client.createSource({ source }))).code, status.ALREADY_EXISTS);
  assert.equal(
    (await failure(cat.client.createSource({ source: { ...source, name: 'x', topic: 'bad topic' } }))).code,
    status.INVALID_ARGUMENT,
  );
  assert.equal(
    (await failure(cat.client.createSource({ source: { ...source, name: 'y', brokers: ['nohost'] } }))).code,
    status.INVALID_ARGUMENT,
  );
  assert.deepEqual((await cat.client.getSource({ name: 'clicks_src' })).source, created.source);
  assert.ok((await cat.client.listSources({})).sources.some((s) => s.name === 'clicks_src'));
  assert.equal((await failure(cat.client.getSource({ name: 'nope' }))).code, status.NOT_FOUND);

  const job: Job = {
    name: 'clicks_job',
    source: 'clicks_src',
    table: ref,
    start: { from: StartFrom.START_FROM_EARLIEST, timestampMs: 0, offsets: [] },
    commitIntervalMs: 0,
    bufferBytes: 0,
    parallelism: 2,
    offsetReset: OffsetResetPolicy.OFFSET_RESET_POLICY_UNSPECIFIED,
    state: JobState.JOB_STATE_UNSPECIFIED,
    stateReason: '',
    createdAtMs: 0,
    updatedAtMs: 0,
  };
  const made = (await cat.client.createJob({ job })).job;
  assert.equal(made?.state, JobState.JOB_STATE_CREATED);
  assert.equal(made?.commitIntervalMs, 300000, 'five-minute default');
  assert.deepEqual(made?.table, ref);
  assert.equal((await failure(cat.client.createJob({ job }))).code, status.ALREADY_EXISTS);
  const badJobs: [string, Partial<Job>, number][] = [
    ['unknown source', { name: 'j1', source: 'nope' }, status.NOT_FOUND],
    ['unknown table', { name: 'j2', table: { database: 'sync', table: 'nope' } }, status.NOT_FOUND],
    ['too fast', { name: 'j3', commitIntervalMs: 10 }, status.INVALID_ARGUMENT],
    [
      'window backwards',
      {
        name: 'j4',
        window: {
          startTimeMs: 10,
          endTimeMs: 5,
          timeZone: '',
          completion: CompletionPolicy.COMPLETION_POLICY_UNSPECIFIED,
          idleTimeoutMs: 0,
          allowedLatenessMs: 0,
          endOffsets: [],
        },
      },
      status.INVALID_ARGUMENT,
    ],
    [
      'negative allowed lateness',
      {
        name: 'j4b',
        window: {
          startTimeMs: 5,
          endTimeMs: 10,
          timeZone: '',
          completion: CompletionPolicy.COMPLETION_POLICY_UNSPECIFIED,
          idleTimeoutMs: 0,
          allowedLatenessMs: -1,
          endOffsets: [],
        },
      },
      status.INVALID_ARGUMENT,
    ],
    [
      'offsets missing',
      { name: 'j5', start: { from: StartFrom.START_FROM_OFFSETS, timestampMs: 0, offsets: [] } },
      status.INVALID_ARGUMENT,
    ],
  ];
  for (const [name, over, code] of badJobs)
    assert.equal((await failure(cat.client.createJob({ job: { ...job, ...over } }))).code, code, name);

  const running = await cat.client.updateJobState({
    name: 'clicks_job',
    state: JobState.JOB_STATE_RUNNING,
    reason: 'started',
    expectedStates: [],
  });
  assert.equal(running.job?.state, JobState.JOB_STATE_RUNNING);
  assert.equal(running.job?.stateReason, 'started');
  // A conditional change (a resume that read the job PAUSED) is refused once the job moved on:
  // a job that failed meanwhile is not revived.
  await cat.client.updateJobState({ name: 'clicks_job', state: JobState.JOB_STATE_FAILED, reason: 'topic recreated', expectedStates: [] });
  const revived = await failure(
    cat.client.updateJobState({
      name: 'clicks_job',
      state: JobState.JOB_STATE_RUNNING,
      reason: '',
      expectedStates: [JobState.JOB_STATE_RUNNING, JobState.JOB_STATE_PAUSED],
    }),
  );
  assert.equal(revived.code, status.FAILED_PRECONDITION);
  assert.equal(revived.details, 'job clicks_job is JOB_STATE_FAILED (topic recreated), not JOB_STATE_RUNNING or JOB_STATE_PAUSED');
  assert.equal((await cat.client.getJob({ name: 'clicks_job' })).job?.state, JobState.JOB_STATE_FAILED);
  await cat.client.updateJobState({ name: 'clicks_job', state: JobState.JOB_STATE_RUNNING, reason: 'started', expectedStates: [] });
  assert.equal(
    (await failure(cat.client.updateJobState({ name: 'clicks_job', state: JobState.JOB_STATE_CREATED, reason: '', expectedStates: [] })))
      .code,
    status.FAILED_PRECONDITION,
  );
  assert.equal(
    (await failure(cat.client.deleteJob({ name: 'clicks_job' }))).code,
    status.FAILED_PRECONDITION,
    'running jobs cannot be deleted',
  );
  assert.equal(
    (await failure(cat.client.deleteSource({ name: 'clicks_src' }))).code,
    status.FAILED_PRECONDITION,
    'sources with jobs cannot be deleted',
  );
  assert.equal(
    (await failure(cat.client.dropTable({ ref, purge: false }))).code,
    status.FAILED_PRECONDITION,
    'tables with jobs cannot be dropped',
  );
  // A second job on the table reading the same topic would land every record twice: refused
  // while clicks_job runs, at create and at start; a job reading another topic is welcome.
  await cat.client.createSource({ source: { ...source, name: 'clicks_again' } });
  await cat.client.createSource({ source: { ...source, name: 'views_src', topic: 'views.v1' } });
  const twice = await failure(cat.client.createJob({ job: { ...job, name: 'clicks_twice', source: 'clicks_again' } }));
  assert.equal(twice.code, status.FAILED_PRECONDITION);
  assert.equal(
    twice.details,
    'job clicks_job already writes table sync.clicks from topic clicks.v1; two jobs may write one table only when they read different topics (stop clicks_job, or write another table)',
  );
  await cat.client.createJob({ job: { ...job, name: 'views_job', source: 'views_src' } });
  await cat.client.updateJobState({ name: 'views_job', state: JobState.JOB_STATE_RUNNING, reason: '', expectedStates: [] });
  await cat.client.updateJobState({ name: 'clicks_job', state: JobState.JOB_STATE_STOPPED, reason: '', expectedStates: [] });
  await cat.client.createJob({ job: { ...job, name: 'clicks_twice', source: 'clicks_again' } });
  await cat.client.updateJobState({ name: 'clicks_twice', state: JobState.JOB_STATE_RUNNING, reason: '', expectedStates: [] });
  assert.match(
    (await failure(cat.client.updateJobState({ name: 'clicks_job', state: JobState.JOB_STATE_RUNNING, reason: '', expectedStates: [] })))
      .details,
    /^job clicks_twice already writes table sync.clicks from topic clicks.v1/,
    'a start is refused the same way',
  );
  for (const name of ['clicks_twice', 'views_job']) {
    await cat.client.updateJobState({ name, state: JobState.JOB_STATE_STOPPED, reason: '', expectedStates: [] });
    await cat.client.deleteJob({ name });
  }
  for (const name of ['clicks_again', 'views_src']) await cat.client.deleteSource({ name });
  assert.equal((await cat.client.listJobs({})).jobs.length, 1);
  await cat.client.updateJobState({ name: 'clicks_job', state: JobState.JOB_STATE_STOPPED, reason: '', expectedStates: [] });
  await cat.client.deleteJob({ name: 'clicks_job' });
  assert.equal((await failure(cat.client.getJob({ name: 'clicks_job' }))).code, status.NOT_FOUND);
  await cat.client.deleteSource({ name: 'clicks_src' });
  assert.equal((await failure(cat.client.deleteSource({ name: 'clicks_src' }))).code, status.NOT_FOUND);
});

test('locations stay inside the warehouse (or an allowed root), symlinks followed: nothing is written or purged elsewhere', async () => {
  const outside = tempDir('catalog-outside');
  const confined = await startTestCatalog({ roots: (dir) => [join(dir, 'extra')] });
  try {
    const { client } = confined;
    // Before: both were accepted and the catalog (as root) wrote a metadata file under /etc.
    const db = await failure(client.createDatabase({ name: 'etc', location: 'file:///etc', properties: {} }));
    assert.equal(db.code, status.PERMISSION_DENIED);
    assert.match(db.details, /^location "file:\/\/\/etc" is outside the warehouse .*; set SLUICE_WAREHOUSE_ROOTS to allow more$/);
    await client.createDatabase({ name: 'ok', location: '', properties: {} });
    const table = (location: string) =>
      client.createTable({
        ref: { database: 'ok', table: 't' },
        schema: schema(field(0, 'id', 'long')),
        location,
        properties: {},
        ifNotExists: false,
      });
    for (const location of ['/etc/sluice-probe-table', `file://${outside.path}/t`]) {
      const f = await failure(table(location));
      assert.equal(f.code, status.PERMISSION_DENIED, location);
    }
    assert.ok(!existsSync('/etc/sluice-probe-table'), 'nothing written under /etc');

    // A symlink inside the warehouse that leads out of it is followed, and refused.
    mkdirSync(confined.warehouse, { recursive: true });
    symlinkSync(outside.path, join(confined.warehouse, 'escape'));
    const linked = await failure(table(`${confined.warehouse}/escape/t`));
    assert.equal(linked.code, status.PERMISSION_DENIED);
    assert.deepEqual(readdirSync(outside.path), [], 'nothing written through the link');

    // Another root, when allowed, takes tables.
    const { table: made } = await table(`${confined.dir}/extra/t`);
    assert.equal(made?.location, `${confined.dir}/extra/t`);
  } finally {
    await confined.stop();
    outside.remove();
  }
});

test('a 1 MB name is refused quoting a short prefix, and the connection keeps answering', async () => {
  const huge = 'x'.repeat(1_000_000);
  // Before: the error repeated the whole name in its trailers, no reply ever came, and other calls on the connection timed out.
  const [bad, other] = await Promise.all([
    failure(cat.client.createDatabase({ name: huge, location: '', properties: {} })),
    cat.client.listDatabases({}),
  ]);
  assert.equal(bad.code, status.INVALID_ARGUMENT);
  assert.ok(bad.details.length < 300, `a short message (${bad.details.length} characters)`);
  assert.match(bad.details, /^name "x{64}"… \(1000000 characters\) is longer than 128 characters$/);
  assert.ok(Array.isArray(other.databases));
});

test('a job created without a mapping reads its source as the source describes it', async () => {
  await cat.client.createDatabase({ name: 'plain', location: '', properties: {} });
  const ref = { database: 'plain', table: 'lines' };
  await cat.client.createTable({ ref, schema: schema(field(0, 'c1', 'string')), location: '', properties: {}, ifNotExists: false });
  const csv = { delimiter: ';', quote: '"', columns: ['c1'] };
  await cat.client.createSource({
    source: {
      name: 'lines_src',
      brokers: [],
      topic: 'lines',
      format: MessageFormat.MESSAGE_FORMAT_CSV,
      mode: MessageMode.MESSAGE_MODE_VALUE,
      csv,
      properties: {},
      createdAtMs: 0,
    },
  });
  const { job } = await cat.client.createJob({
    job: {
      name: 'lines_job',
      source: 'lines_src',
      table: ref,
      commitIntervalMs: 0,
      bufferBytes: 0,
      parallelism: 1,
      offsetReset: OffsetResetPolicy.OFFSET_RESET_POLICY_UNSPECIFIED,
      state: JobState.JOB_STATE_UNSPECIFIED,
      stateReason: '',
      createdAtMs: 0,
      updatedAtMs: 0,
    },
  });
  assert.equal(job?.mapping?.format, MessageFormat.MESSAGE_FORMAT_CSV);
  assert.equal(job?.mapping?.mode, MessageMode.MESSAGE_MODE_VALUE);
  assert.deepEqual(job?.mapping?.csv, csv);
  assert.deepEqual((await cat.client.getJob({ name: 'lines_job' })).job?.mapping, job?.mapping);
});
