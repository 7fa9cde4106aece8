/**
 * Issue 8's acceptance test: the `sluice` CLI driven as a user drives it — separate
 * `node cli/bin/sluice.mjs …` processes against the four services running as real processes,
 * records produced with kcat — from registering a source to querying what landed, time travel
 * included. Every step reads the CLI's --json output, the way a script would.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runSluice, runSluiceJson } from '#test-support/cli.js';
import { printLogsOnFailure, startMesh, type TestMesh } from '#test-support/mesh.js';
import { waitFor } from '#test-support/wait.js';

const KCAT = process.env.KCAT ?? '/usr/bin/kcat';

const suffix = randomBytes(4).toString('hex');
const database = `web_${suffix}`;
const topic = `clicks-${suffix}`;
const source = `clicks-${suffix}`;
const job = `clicks-to-lake-${suffix}`;
const table = `${database}.clicks`;

let mesh: TestMesh | undefined;
printLogsOnFailure(() => mesh);

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** One `sluice` process, as a user would run it, pointed at the test mesh. */
const sluice = (...args: string[]): Promise<Run> => runSluice(mesh!.clientEnv, ...args);

/** `sluice … --json`, which must succeed; its parsed output. */
const sluiceJson = <T = any>(...args: string[]): Promise<T> => runSluiceJson<T>(mesh!.clientEnv, ...args);

/** Produces one message per line with kcat, as a user would from a shell. */
async function kcat(lines: string[], to = topic): Promise<void> {
  const child = spawn(KCAT, ['-b', mesh!.broker.address, '-t', to, '-P'], { stdio: ['pipe', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (t: string) => (stderr += t));
  child.stdin!.end(lines.map((l) => `${l}\n`).join(''));
  const [code] = await once(child, 'exit');
  assert.equal(code, 0, `kcat failed: ${stderr}`);
}

const click = (id: number, name: string, price: number, ok: boolean, at: string, a: number, b: string) =>
  JSON.stringify({ id, name, price, ok, at, tags: { a, b } });

const FIRST = [
  click(1, 'alpha', 9.5, true, '2024-05-01T08:00:00Z', 1, 'x'),
  click(2, 'beta', 10, false, '2024-05-01T09:30:00.123Z', 2, 'y'),
  click(3, 'gamma', -0.25, true, '2024-05-01T23:59:59+02:00', 3, 'z'),
];
const SECOND = [
  click(4, 'delta', 1e6, false, '2024-05-02T00:00:00Z', 4, 'w'),
  click(5, 'épsilon "quoted"', 0, true, '2024-05-02T12:00:00Z', 5, ''),
];

/** The rows `sluice query --json` gives back: numbers as numbers, timestamptz as DuckDB's text in the session zone. */
const EXPECTED = [
  { id: 1, name: 'alpha', price: 9.5, ok: true, at: '2024-05-01 08:00:00+00', tags_a: 1, tags_b: 'x' },
  { id: 2, name: 'beta', price: 10, ok: false, at: '2024-05-01 09:30:00.123+00', tags_a: 2, tags_b: 'y' },
  { id: 3, name: 'gamma', price: -0.25, ok: true, at: '2024-05-01 21:59:59+00', tags_a: 3, tags_b: 'z' },
  { id: 4, name: 'delta', price: 1e6, ok: false, at: '2024-05-02 00:00:00+00', tags_a: 4, tags_b: 'w' },
  { id: 5, name: 'épsilon "quoted"', price: 0, ok: true, at: '2024-05-02 12:00:00+00', tags_a: 5, tags_b: '' },
];

const SPEC = `# what a user writes: a source, a table with its columns, the mapping and a commit interval
name: ${job}
source:
  name: ${source}
  topic: ${topic}
  format: JSON
  startFrom: earliest
table:
  database: ${database}
  name: clicks
  ifExists: use                      # made by sluice table create first
  columns:
    - { name: id, type: long, required: true }
    - { name: name, type: string }
    - { name: price, type: double }
    - { name: ok, type: boolean }
    - { name: at, type: timestamptz }
    - { name: tags_a, type: int }
    - { name: tags_b, type: string }
mapping:
  flattenLevel: 2
commit:
  intervalMs: 1000
`;

interface JobStatusJson {
  state: string;
  recordsIn: number;
  rowsOut: number;
  partitions: { partition: number; highWatermark: number; committedOffset: number; lag: number }[];
  lastCommit?: { snapshotId: number; committedAtMs: number; rows: number };
}
interface HistoryJson {
  currentSnapshotId: number;
  snapshots: { snapshotId: number; timestampMs: number; summary: Record<string, string> }[];
}

/** Polls `sluice job status --json` until every produced record is committed. */
async function committedThrough(total: number): Promise<JobStatusJson> {
  let last: JobStatusJson | undefined;
  try {
    return await waitFor(
      `sluice job status to show ${total} records committed`,
      async () => {
        mesh!.assertNoCrash();
        const status = (last = await sluiceJson<JobStatusJson>('job', 'status', job));
        const high = status.partitions.reduce((sum, p) => sum + p.highWatermark, 0);
        // kcat's partitioner may leave a partition empty: nothing to commit there (-1 = no commit yet).
        const caughtUp = (p: JobStatusJson['partitions'][number]) =>
          p.committedOffset === p.highWatermark || (p.highWatermark === 0 && p.committedOffset === -1);
        return status.partitions.length === 2 && high === total && status.partitions.every(caughtUp) && status;
      },
      { timeoutMs: 60_000, intervalMs: 500 },
    );
  } catch (err) {
    throw new Error(`${(err as Error).message}; the last status was ${JSON.stringify(last)}`);
  }
}

const ids = (result: { rows: { id: number }[] }) => result.rows.map((r) => r.id);

describe('the sluice CLI against the running mesh', () => {
  const spec = () => join(mesh!.dir, 'clicks.yaml');
  let firstSnapshot: HistoryJson['snapshots'][number];
  /** The history once every record is committed. */
  let history: HistoryJson;
  const current = () => history.snapshots.find((s) => s.snapshotId === history.currentSnapshotId)!;

  before(async () => {
    mesh = await startMesh({ partitions: 2 });
    mesh.broker.createTopic(topic, 2);
    await writeFile(spec(), SPEC);
  });
  after(async () => {
    await mesh?.stop();
  });

  it('sluice source add registers the topic', async () => {
    const added = await sluiceJson('source', 'add', source, '--topic', topic, '--format', 'JSON');
    assert.equal(added.name, source);
    assert.equal(added.topic, topic);
    assert.equal(added.format, 'MESSAGE_FORMAT_JSON');
    assert.deepEqual(added.brokers, [mesh!.broker.address], 'the default brokers come from KAFKA_BROKERS');
  });

  it('sluice infer proposes columns from messages produced with kcat', async () => {
    await kcat(FIRST);
    const inferred = await sluiceJson<{ fields: { name: string; path: string; type: { kind: { value: string } }; required: boolean }[] }>(
      'infer',
      source,
      '--flatten-level',
      '2',
    );
    assert.deepEqual(
      inferred.fields.map((f) => [f.name, f.path, f.type.kind.value, f.required]),
      [
        ['id', 'id', 'long', false],
        ['name', 'name', 'string', false],
        ['price', 'price', 'double', false],
        ['ok', 'ok', 'boolean', false],
        ['at', 'at', 'timestamptz', false],
        ['tags_a', 'tags.a', 'long', false],
        ['tags_b', 'tags.b', 'string', false],
      ],
    );
    // What a person sees: level 1 by default (seed 000), every column optional as created.
    const human = await sluice('infer', source);
    assert.equal(human.code, 0, human.stderr);
    assert.deepEqual(
      human.stdout
        .split('\n')
        .slice(0, 3)
        .map((l) => l.split(/\s+/).slice(0, 3)),
      [
        ['COLUMN', 'TYPE', 'NULLS'],
        ['id', 'long', 'optional'],
        ['name', 'string', 'optional'],
      ],
    );
    assert.match(human.stdout, /^tags\s+string\s+optional\s+tags\s+\{"a":\d,"b":"[xyz]"\}$/m, 'a nested object is JSON text at level 1');
  });

  it('table create and job create --start from a spec file land the records, and query returns them', async () => {
    const created = await sluiceJson('table', 'create', '-f', spec());
    assert.deepEqual(created.ref, { database, table: 'clicks' });
    const started = await sluiceJson<JobStatusJson>('job', 'create', '-f', spec(), '--start');
    assert.equal(started.state, 'JOB_STATE_RUNNING');

    await committedThrough(FIRST.length);
    const result = await sluiceJson('query', `SELECT * FROM ${table} ORDER BY id`);
    assert.deepEqual(result.columns, ['id', 'name', 'price', 'ok', 'at', 'tags_a', 'tags_b']);
    assert.deepEqual(result.rows, EXPECTED.slice(0, FIRST.length));
    const first = await sluiceJson<HistoryJson>('table', 'history', table);
    firstSnapshot = first.snapshots.find((s) => s.snapshotId === first.currentSnapshotId)!;
    assert.equal(firstSnapshot.summary['total-records'], String(FIRST.length), 'the current snapshot is in the history, with every record');
  });

  it('after more records, --snapshot and --as-of read the earlier snapshot; the current one has everything', async () => {
    await kcat(SECOND);
    await committedThrough(FIRST.length + SECOND.length);
    history = await sluiceJson<HistoryJson>('table', 'history', table);
    assert.notEqual(history.currentSnapshotId, firstSnapshot.snapshotId);
    assert.equal(current().summary['total-records'], String(FIRST.length + SECOND.length));

    const sql = `SELECT * FROM ${table} ORDER BY id`;
    assert.deepEqual((await sluiceJson('query', sql)).rows, EXPECTED);
    const bySnapshot = await sluiceJson('query', sql, '--snapshot', String(firstSnapshot.snapshotId));
    assert.deepEqual(bySnapshot.rows, EXPECTED.slice(0, FIRST.length));
    assert.equal(bySnapshot.tables[0].snapshotId, firstSnapshot.snapshotId);
    assert.deepEqual(ids(await sluiceJson('query', sql, '--as-of', String(firstSnapshot.timestampMs))), [1, 2, 3]);
    assert.deepEqual(ids(await sluiceJson('query', sql, '--as-of', new Date(current().timestampMs).toISOString())), [1, 2, 3, 4, 5]);
    const earliest = history.snapshots.reduce((a, b) => (b.timestampMs < a.timestampMs ? b : a));
    const before = await sluice('query', sql, '--as-of', String(earliest.timestampMs - 1));
    assert.equal(before.code, 2, 'before the first snapshot is bad input, not an empty table');
    assert.equal(
      before.stderr,
      `sluice: ${table}: no snapshot as of ${new Date(earliest.timestampMs - 1).toISOString()}: the table's first snapshot (${earliest.snapshotId}) was committed at ${new Date(earliest.timestampMs).toISOString()}\n`,
    );

    // What a person sees: a table and a row count.
    const human = await sluice('query', `SELECT count(*) AS n, sum(tags_a) AS s FROM ${table}`);
    assert.equal(human.code, 0, human.stderr);
    assert.equal(human.stdout, 'n  s\n5  15\n(1 row)\n');
  });

  it('sluice job status --json shows the job running, caught up, with its last commit', async () => {
    const status = await sluiceJson<JobStatusJson>('job', 'status', job);
    assert.equal(status.state, 'JOB_STATE_RUNNING');
    assert.equal(status.recordsIn, FIRST.length + SECOND.length);
    assert.equal(status.rowsOut, FIRST.length + SECOND.length);
    assert.deepEqual(
      status.partitions.map((p) => p.lag),
      [0, 0],
    );
    assert.equal(status.lastCommit?.snapshotId, history.currentSnapshotId);
    assert.equal(status.lastCommit?.rows, Number(current().summary['added-records']));
  });

  it('sluice table describe --json shows the schema and the current snapshot', async () => {
    const described = await sluiceJson('table', 'describe', table);
    assert.deepEqual(described.ref, { database, table: 'clicks' });
    assert.equal(described.location, join(mesh!.warehouse, database, 'clicks'));
    assert.equal(described.currentSnapshotId, history.currentSnapshotId);
    assert.deepEqual(
      described.schema.fields.map((f: { id: number; name: string; required: boolean; type: { kind: { value: string } } }) => [
        f.id,
        f.name,
        f.type.kind.value,
        f.required,
      ]),
      [
        [1, 'id', 'long', true],
        [2, 'name', 'string', false],
        [3, 'price', 'double', false],
        [4, 'ok', 'boolean', false],
        [5, 'at', 'timestamptz', false],
        [6, 'tags_a', 'int', false],
        [7, 'tags_b', 'string', false],
      ],
    );
  });

  it('table create --key makes the named columns the table key (Iceberg identifier fields), which describe shows; a bad key is refused', async () => {
    const keyed = `${database}.keyed`;
    const created = await sluiceJson(
      'table',
      'create',
      keyed,
      '--columns',
      'region string required, id long required, total double',
      '--key',
      'region,id',
    );
    assert.deepEqual(created.schema.identifierFieldIds, [1, 2]);
    const described = await sluice('table', 'describe', keyed);
    assert.match(described.stdout, /^key {8}region, id$/m);
    const refused = await sluice('table', 'create', `${database}.keyed_bad`, '--columns', 'id long, total double', '--key', 'id');
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /--key: key column "id" must be required/);
  });

  it('a bad spec is one line naming the file key, exit 2, and creates nothing', async () => {
    const bad = join(mesh!.dir, 'bad.yaml');
    await writeFile(bad, SPEC.replace(`name: ${job}`, 'name: clicks-again').replace('intervalMs: 1000', 'intervalMs: 10'));
    const run = await sluice('job', 'create', '-f', bad);
    assert.equal(run.code, 2);
    assert.equal(run.stdout, '');
    assert.equal(run.stderr, 'sluice: invalid job spec: commit.intervalMs: must be at least 1000, not 10\n');
    const jobs = await sluiceJson<{ name: string }[]>('job', 'list');
    assert.deepEqual(
      jobs.map((j) => j.name),
      [job],
    );
  });

  it('a mistyped table in a query is one line naming it, exit 1', async () => {
    const run = await sluice('query', `SELECT count(*) FROM ${database}.clikcs`);
    assert.equal(run.code, 1);
    assert.equal(run.stdout, '');
    assert.equal(
      run.stderr,
      `sluice: the query names no Sluice table (no table ${database}.clikcs); write tables as <database>.<table>, e.g. SELECT count(*) FROM shop.orders\n`,
    );
  });

  it('job create refuses an existing table unless the spec says ifExists: use, a column of another type, and a second job on the topic; each leaves nothing behind', async () => {
    const again = join(mesh!.dir, 'again.yaml');
    const other = (text: string) => text.replace(`name: ${job}`, `name: ${job}-again`).replace(`name: ${source}`, `name: ${source}-again`);
    await writeFile(again, other(SPEC).replace(/ {2}ifExists: use.*\n/, ''));
    let run = await sluice('job', 'create', '-f', again, '--json');
    assert.equal(run.code, 2);
    assert.equal(
      run.stderr,
      `sluice: table ${table} already exists; to write into it set table.ifExists: use in the spec, or name another table\n`,
    );

    await writeFile(again, other(SPEC).replace('{ name: id, type: long, required: true }', '{ name: id, type: string }'));
    run = await sluice('job', 'create', '-f', again, '--json');
    assert.equal(run.code, 2);
    assert.equal(run.stderr, `sluice: column "id" is long in table ${table}, but the spec declares it string\n`);

    // Compatible, but the running job already lands this topic in the table: every row would land twice.
    await writeFile(again, other(SPEC));
    run = await sluice('job', 'create', '-f', again, '--json');
    assert.equal(run.code, 1);
    assert.equal(
      run.stderr,
      `sluice: job ${job} already writes table ${table} from topic ${topic}; two jobs may write one table only when they read different topics (stop ${job}, or write another table)\n`,
    );
    const sources = await sluiceJson<{ name: string }[]>('source', 'list');
    assert.deepEqual(
      sources.map((s) => s.name).filter((n) => n.startsWith(source)),
      [source],
      'the source the failed create made is gone again',
    );
    assert.deepEqual(
      (await sluiceJson<{ name: string }[]>('job', 'list')).map((j) => j.name),
      [job],
    );
  });

  it('a create that fails at its last step (the job name is taken) removes the source, database and table it made', async () => {
    const spec = join(mesh!.dir, 'taken.yaml');
    await writeFile(
      spec,
      `name: ${job}\nsource: { name: taken-${suffix}, topic: ${topic} }\ntable: { database: taken_${suffix}, name: t, columns: [{ name: id, type: long }] }\n`,
    );
    const run = await sluice('job', 'create', '-f', spec, '--json');
    assert.equal(run.code, 1);
    assert.equal(run.stderr, `sluice: job ${job} already exists\n`);
    assert.ok(!(await sluiceJson<{ name: string }[]>('source', 'list')).some((s) => s.name === `taken-${suffix}`));
    assert.equal((await sluice('table', 'describe', `taken_${suffix}.t`)).code, 1, 'the table is gone');
    const databases = await mesh!.catalog.listDatabases({});
    assert.ok(!databases.databases.some((d) => d.name === `taken_${suffix}`), 'the database is gone');
  });

  it('job create refuses more members than the topic has partitions, naming both, and creates nothing', async () => {
    const spec = join(mesh!.dir, 'wide.yaml');
    await writeFile(
      spec,
      `name: wide-${suffix}\nsource: { name: wide-${suffix}, topic: ${topic} }\ntable: { database: wide_${suffix}, name: t, columns: [{ name: id, type: long }] }\nparallelism: 8\n`,
    );
    const run = await sluice('job', 'create', '-f', spec, '--json');
    assert.equal(run.code, 2);
    assert.equal(run.stderr, `sluice: parallelism 8 is more than the 2 partitions of topic ${topic}; set parallelism to 2 or fewer\n`);
    assert.ok(!(await sluiceJson<{ name: string }[]>('source', 'list')).some((s) => s.name === `wide-${suffix}`));
    assert.equal((await sluice('table', 'describe', `wide_${suffix}.t`)).code, 1, 'no table');
  });

  it('a job whose columns must be inferred from a topic that does not exist is one line naming it, and creates nothing', async () => {
    const spec = join(mesh!.dir, 'missing.yaml');
    await writeFile(spec, `name: lost-${suffix}\nsource: { topic: nosuch-${suffix} }\ntable: { database: lost_${suffix}, name: t }\n`);
    const run = await sluice('job', 'create', '-f', spec, '--json');
    assert.equal(run.code, 1);
    assert.equal(
      run.stderr,
      `sluice: topic nosuch-${suffix} does not exist on ${mesh!.broker.address} (the brokers of source lost-${suffix}); create it or fix the source's topic\n`,
    );
    assert.ok(!(await sluiceJson<{ name: string }[]>('source', 'list')).some((s) => s.name === `lost-${suffix}`));
    const described = await sluice('table', 'describe', `lost_${suffix}.t`);
    assert.equal(described.code, 1);
    assert.equal(described.stderr, `sluice: table lost_${suffix}.t does not exist\n`);
  });

  it('sluice infer of a TEXT source proposes key and value; of JSON, exact 64-bit integers, decimals and times', async () => {
    const lines = `lines-${suffix}`;
    mesh!.broker.createTopic(lines, 1);
    await kcat(['hello', 'world'], lines);
    await sluiceJson('source', 'add', lines, '--topic', lines, '--format', 'TEXT');
    const text = await sluiceJson<{ fields: { name: string; type: { kind: { value: string } }; sample: string }[] }>('infer', lines);
    assert.deepEqual(
      text.fields.map((f) => [f.name, f.type.kind.value, f.sample]),
      [
        ['key', 'string', ''],
        ['value', 'string', 'hello'],
      ],
    );

    const exact = `exact-${suffix}`;
    mesh!.broker.createTopic(exact, 1);
    await kcat(['{"id":9007199254740993,"amount":12.50,"at":"2024-05-01T08:00:00","day":"2024-05-01"}'], exact);
    await sluiceJson('source', 'add', exact, '--topic', exact);
    const inferred = await sluiceJson<{ fields: { name: string; type: { kind: { value: string } }; sample: string }[] }>('infer', exact);
    assert.deepEqual(
      inferred.fields.map((f) => [f.name, f.type.kind.value, f.sample]),
      [
        ['id', 'long', '9007199254740993'],
        ['amount', 'decimal(18, 2)', '12.50'],
        ['at', 'timestamp', '2024-05-01T08:00:00'],
        ['day', 'date', '2024-05-01'],
      ],
    );
    const human = await sluice('infer', exact);
    assert.match(human.stdout, /^id\s+long\s+optional\s+id\s+9007199254740993$/m, 'shown exactly, not rounded');
  });

  /** Creates and starts a job from spec text; its rows once `count` have landed, by the query. */
  async function landed(name: string, specText: string, sql: string, count: number): Promise<unknown[]> {
    const file = join(mesh!.dir, `${name}.yaml`);
    await writeFile(file, specText);
    const started = await sluiceJson<JobStatusJson>('job', 'create', '-f', file, '--start');
    assert.equal(started.state, 'JOB_STATE_RUNNING');
    const rows = await waitFor(
      `${count} rows of ${name}`,
      async () => {
        mesh!.assertNoCrash();
        const result = await sluiceJson<{ rows: unknown[] }>('query', sql);
        return result.rows.length >= count && result.rows;
      },
      { timeoutMs: 60_000, intervalMs: 500 },
    );
    await sluiceJson('job', 'stop', name);
    return rows;
  }

  it('job create of a CSV source infers the named columns, typed, and lands the rows', async () => {
    const people = `people-${suffix}`;
    mesh!.broker.createTopic(people, 1);
    await kcat(['1103,zhangsan,china,12.50', '1104,lisi,usa,3.99'], people);
    const spec = `name: ${people}
source: { topic: ${people}, format: CSV, startFrom: earliest, csv: { columns: [id, name, region, amount] } }
table: { database: ${database}, name: people }
commit: { intervalMs: 1000 }
`;
    const rows = await landed(
      people,
      spec,
      `SELECT id, name, region, CAST(amount AS VARCHAR) AS amount FROM ${database}.people ORDER BY id`,
      2,
    );
    assert.deepEqual(rows, [
      { id: 1103, name: 'zhangsan', region: 'china', amount: '12.50' },
      { id: 1104, name: 'lisi', region: 'usa', amount: '3.99' },
    ]);
    const described = await sluiceJson('table', 'describe', `${database}.people`);
    assert.deepEqual(
      described.schema.fields.map((f: { name: string; type: { kind: { value: string } } }) => [f.name, f.type.kind.value]),
      [
        ['id', 'long'],
        ['name', 'string'],
        ['region', 'string'],
        ['amount', 'decimal(18, 2)'],
      ],
    );
  });

  it('includeFixedColumns on an inferred table creates topic, partition and offset, and the job fills them', async () => {
    const fixed = `fixed-${suffix}`;
    mesh!.broker.createTopic(fixed, 1);
    await kcat(['{"v":"a"}', '{"v":"b"}'], fixed);
    const spec = `name: ${fixed}
source: { topic: ${fixed}, startFrom: earliest }
table: { database: ${database}, name: fixed }
mapping: { flattenLevel: 1, includeFixedColumns: true }
commit: { intervalMs: 1000 }
`;
    const rows = await landed(fixed, spec, `SELECT topic, "partition", "offset", v FROM ${database}.fixed ORDER BY "offset"`, 2);
    assert.deepEqual(rows, [
      { topic: fixed, partition: 0, offset: 0, v: 'a' },
      { topic: fixed, partition: 0, offset: 1, v: 'b' },
    ]);
  });
});
