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
async function kcat(lines: string[]): Promise<void> {
  const child = spawn(KCAT, ['-b', mesh!.broker.address, '-t', topic, '-P'], { stdio: ['pipe', 'ignore', 'pipe'] });
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
    const inferred = await sluiceJson<{ fields: { name: string; path: string; type: { kind: { value: string } } }[] }>(
      'infer',
      source,
      '--flatten-level',
      '2',
    );
    assert.deepEqual(
      inferred.fields.map((f) => [f.name, f.path, f.type.kind.value]),
      [
        ['id', 'id', 'int'],
        ['name', 'name', 'string'],
        ['price', 'price', 'double'],
        ['ok', 'ok', 'boolean'],
        ['at', 'at', 'string'],
        ['tags_a', 'tags.a', 'int'],
        ['tags_b', 'tags.b', 'string'],
      ],
    );
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
    assert.deepEqual(
      ids(await sluiceJson('query', sql, '--as-of', String(firstSnapshot.timestampMs - 1))),
      [],
      'before the first snapshot the table was empty',
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
});
