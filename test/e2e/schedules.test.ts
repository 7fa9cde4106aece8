/**
 * Issue 17's acceptance tests: scheduled windows (seed 001) through the four services as real
 * processes and the CLI as a user runs it.
 *
 * 1. Records over three past hours; an hourly schedule; `job backfill` of the three instances;
 *    each instance's partition holds exactly its records. A record of the second hour arriving
 *    late is counted, and with `lateData: rerun` it lands exactly once; a manual `job rerun` of
 *    that instance changes nothing further.
 * 2. A 1-minute cycle on an injected clock (INGESTION_SCHEDULER_CLOCK, ten times the wall
 *    clock, a day ahead) runs its instances on its own, while the ingestion process running the
 *    scheduler is killed with SIGKILL between two instances and in the middle of one: no
 *    instance is skipped, none is committed twice. The windows lie ahead of the wall clock, so
 *    an instance ends only at a record stamped past its window: the test decides when the
 *    instance it kills in the middle can end, and nothing depends on timing.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runSluice, runSluiceJson } from '#test-support/cli.js';
import { printLogsOnFailure, startMesh, type TestMesh } from '#test-support/mesh.js';
import { waitFor } from '#test-support/wait.js';

const HOUR = 3_600_000;
const MINUTE = 60_000;
const PARTITIONS = 2;

interface InstanceJson {
  scheduledTimeMs: number;
  attempt: number;
  kind: string;
  job: string;
  partitionValue: string;
  state: string;
  rows: number;
  lateRecords: number;
  latePending: number;
  snapshotId?: number;
}

/** `yyyymmddhh24` (and `mi`) of an instant in UTC, as the schedule's expressions render it. */
const compact = (ms: number, minutes = false) =>
  new Date(ms)
    .toISOString()
    .replace(/[-:T]/g, '')
    .slice(0, minutes ? 12 : 10);
/** `2026-12-04 10:05`: how the CLI reads a time on a UTC schedule's clock. */
const local = (ms: number) => new Date(ms).toISOString().slice(0, 16).replace('T', ' ');

/** Writes the job spec of a scenario (its job, source and topic share a name) into the mesh's directory. */
async function writeSpec(mesh: TestMesh, o: { name: string; topic: string; database: string; schedule: string }): Promise<string> {
  const text = `name: ${o.name}
source:
  name: ${o.name}
  topic: ${o.topic}
  format: JSON
table:
  database: ${o.database}
  name: events
  columns:
    - { name: id, type: long, required: true }
    - { name: at, type: long }
  partitionBy: { column: pt }
mapping:
  flattenLevel: 1
commit:
  intervalMs: 1000
schedule:
${o.schedule}
`;
  const path = join(mesh.dir, `spec-${randomBytes(3).toString('hex')}.yaml`);
  await writeFile(path, text);
  return path;
}

/** Appends records `{id, at}` stamped `at`, round-robin over the partitions. */
function produce(mesh: TestMesh, topic: string, records: { id: number; at: number }[]): void {
  for (let p = 0; p < PARTITIONS; p++) {
    const mine = records.filter((_, i) => i % PARTITIONS === p);
    if (mine.length > 0)
      mesh.broker.append(
        topic,
        p,
        mine.map((r) => ({ value: JSON.stringify(r), timestamp: r.at })),
      );
  }
}

/**
 * Per partition value, its rows and distinct ids (a row landed twice shows as rows > ids):
 * `[pt, rows, ids]`, ordered by pt.
 */
async function partitionCounts(mesh: TestMesh, table: string): Promise<[string, number, number][]> {
  const result = await runSluiceJson<{ rows: { pt: string; rows: number; ids: number }[] }>(
    mesh.clientEnv,
    'query',
    `SELECT pt, count(*) AS rows, count(DISTINCT id) AS ids FROM ${table} GROUP BY pt ORDER BY pt`,
  );
  return result.rows.map((r) => [r.pt, Number(r.rows), Number(r.ids)]);
}

/** One scenario's names, unique per run: its job, source and topic share one. */
function scenario(prefix: string) {
  const suffix = randomBytes(4).toString('hex');
  const name = `${prefix}-${suffix}`;
  const database = `${prefix}_${suffix}`;
  return { name, topic: name, database, table: `${database}.events` };
}

describe('an hourly schedule: backfill, late records, rerun', () => {
  const { name, topic, database, table } = scenario('hourly');
  let mesh: TestMesh | undefined;
  printLogsOnFailure(() => mesh);
  const sluiceJson = <T = any>(...args: string[]) => runSluiceJson<T>(mesh!.clientEnv, ...args);
  const runs = () => sluiceJson<InstanceJson[]>('job', 'runs', name);

  // Three whole past hours, well clear of the live schedule's next firing.
  const now = Date.now();
  const h0 = Math.floor(now / HOUR) * HOUR - 5 * HOUR;
  // The scheduler's clock reads half past the current hour when the test starts and runs at the
  // wall clock's pace, and the job fires nothing at or before that moment (notBefore), so the live
  // schedule (at :05) cannot fire during the test whenever it runs. On the wall clock a run that
  // crossed :05 fired the current hour's instance too; with the default notBefore (the catalog's
  // wall clock) a run started between :00 and :05 fired the :05 instance at once.
  const clockStart = h0 + 5 * HOUR + 30 * MINUTE;
  const clock = `${clockStart}@${now}*1`;
  const scheduled = [1, 2, 3].map((k) => h0 + k * HOUR + 5 * MINUTE);
  const partitionOf = (k: number) => compact(h0 + (k + 1) * HOUR);
  const PER_HOUR = 30;
  const records = [0, 1, 2].flatMap((k) =>
    Array.from({ length: PER_HOUR }, (_, i) => ({ id: k * 1000 + i, at: h0 + k * HOUR + i * MINUTE + 1 })),
  );

  before(async () => {
    mesh = await startMesh({
      partitions: PARTITIONS,
      env: { INGESTION_SCHEDULER_TICK_MS: '200', INGESTION_LATE_CHECK_MS: '300', INGESTION_SCHEDULER_CLOCK: clock },
    });
    mesh.broker.createTopic(topic, PARTITIONS);
    produce(mesh, topic, records);
  });
  after(async () => {
    await mesh?.stop();
  });

  const byPartition = async () => Object.fromEntries((await partitionCounts(mesh!, table)).map(([pt, rows, ids]) => [pt, { rows, ids }]));

  async function settled(what: string, done: (instances: InstanceJson[]) => boolean): Promise<InstanceJson[]> {
    return waitFor(
      what,
      async () => {
        mesh!.assertNoCrash();
        const all = (await runs()).filter((i) => scheduled.includes(i.scheduledTimeMs));
        return done(all) ? all : undefined;
      },
      { timeoutMs: 120_000 },
    );
  }

  it('backfill runs the three past instances in order; each partition holds exactly its hour', async () => {
    const spec = await writeSpec(mesh!, {
      name,
      topic,
      database,
      schedule: `  cycle: { unit: hour, every: 1 }
  startAt: "00:05"
  timeZone: UTC
  window: { start: "$[yyyymmddhh24-1/24]0000", end: "$[yyyymmddhh24]0000" }
  partition: "$[yyyymmddhh24]"
  lateData: rerun
  notBefore: ${clockStart}`,
    });
    const started = await sluiceJson('job', 'create', '-f', spec, '--start');
    assert.equal(started.state, 'JOB_STATE_RUNNING');
    assert.match(started.reason, /scheduled/);

    const backfill = await sluiceJson<{ created: { name: string }[] }>(
      'job',
      'backfill',
      name,
      '--from',
      local(scheduled[0]),
      '--to',
      local(scheduled[2]),
    );
    assert.deepEqual(
      backfill.created.map((j) => j.name),
      scheduled.map((t) => `${name}--${compact(t, true)}`),
    );
    const done = await settled(
      'the three instances to succeed',
      (all) => all.length === 3 && all.every((i) => i.state === 'INSTANCE_STATE_SUCCEEDED'),
    );
    assert.deepEqual(
      done.map((i) => [i.partitionValue, i.rows, i.attempt, i.kind]),
      [0, 1, 2].map((k) => [partitionOf(k), PER_HOUR, 1, 'INSTANCE_KIND_RUN']),
    );
    assert.deepEqual(await byPartition(), Object.fromEntries([0, 1, 2].map((k) => [partitionOf(k), { rows: PER_HOUR, ids: PER_HOUR }])));

    // job list shows the scheduled job, and its instances' jobs only with --all.
    const listed = await sluiceJson<{ name: string }[]>('job', 'list');
    assert.deepEqual(
      listed.filter((j) => j.name.startsWith(name)).map((j) => j.name),
      [name],
    );
    const all = await sluiceJson<{ name: string }[]>('job', 'list', '--all');
    assert.equal(all.filter((j) => j.name.startsWith(`${name}--`)).length, 3);

    // A backfill of instances that ran leaves them as they are.
    const again = await sluiceJson<{ created: unknown[]; existingTimesMs: number[] }>(
      'job',
      'backfill',
      name,
      '--from',
      local(scheduled[0]),
      '--to',
      local(scheduled[2]),
    );
    assert.equal(again.created.length, 0);
    assert.deepEqual(again.existingTimesMs, scheduled);
  });

  it('a late record of the second hour is counted and, with lateData: rerun, lands exactly once', async () => {
    // Stamped in the second hour, appended after everything the second instance read.
    produce(mesh!, topic, [{ id: 1999, at: h0 + HOUR + 30 * MINUTE }]);
    const done = await settled('the late record found and the second instance run again', (all) =>
      all.some((i) => i.attempt === 2 && i.state === 'INSTANCE_STATE_SUCCEEDED'),
    );
    const second = done.filter((i) => i.scheduledTimeMs === scheduled[1]);
    // Each attempt's late records, and how many it left unlanded: the first missed the late one.
    assert.deepEqual(
      second.map((i) => [i.attempt, i.kind, i.state, i.rows, i.lateRecords, i.latePending]),
      [
        [1, 'INSTANCE_KIND_RUN', 'INSTANCE_STATE_SUCCEEDED', PER_HOUR, 1, 1],
        [2, 'INSTANCE_KIND_RERUN', 'INSTANCE_STATE_SUCCEEDED', PER_HOUR + 1, 1, 0],
      ],
    );
    assert.equal(
      done.filter((i) => i.scheduledTimeMs !== scheduled[1]).every((i) => i.attempt === 1 && i.lateRecords === 0),
      true,
    );
    assert.deepEqual(await byPartition(), {
      [partitionOf(0)]: { rows: PER_HOUR, ids: PER_HOUR },
      [partitionOf(1)]: { rows: PER_HOUR + 1, ids: PER_HOUR + 1 },
      [partitionOf(2)]: { rows: PER_HOUR, ids: PER_HOUR },
    });
    // The rerun replaced the partition in one snapshot.
    const history = await sluiceJson<{ snapshots: { snapshotId: number; operation?: string; summary: Record<string, string> }[] }>(
      'table',
      'history',
      table,
    );
    const rerun = history.snapshots.find((s) => s.snapshotId === second[1].snapshotId)!;
    assert.equal(rerun.operation, 'overwrite');
    assert.equal(rerun.summary['sluice.replaced-partition'], `pt=${partitionOf(1)}`);
    assert.equal(rerun.summary['deleted-records'], String(PER_HOUR));
    assert.equal(rerun.summary['added-records'], String(PER_HOUR + 1));

    const status = await runSluice(mesh!.clientEnv, 'job', 'status', name);
    assert.match(status.stdout, /late {7}1 records arrived after their instance read past them/);
  });

  it('a manual rerun of the same instance changes nothing further', async () => {
    const before = await byPartition();
    const rerun = await sluiceJson<{ created: { name: string }[] }>('job', 'rerun', name, '--instance', local(scheduled[1]));
    assert.deepEqual(
      rerun.created.map((j) => j.name),
      [`${name}--${compact(scheduled[1], true)}-3`],
    );
    await settled('the manual rerun to succeed', (all) => all.some((i) => i.attempt === 3 && i.state === 'INSTANCE_STATE_SUCCEEDED'));
    assert.deepEqual(await byPartition(), before);
    const listing = await runSluice(mesh!.clientEnv, 'job', 'runs', name);
    assert.equal(listing.code, 0, listing.stderr);
    // What a user sees (the closing note shows one).
    process.stdout.write(`# sluice job runs ${name}\n${listing.stdout.replace(/^/gm, '# ')}\n`);
    assert.match(listing.stdout, /SCHEDULED +ATTEMPT +KIND +WINDOW +PARTITION +STATE +ROWS +LATE/);
  });
  it('with lateData: append, only the late record is read, and appended to its partition once', async () => {
    const appendName = `${name}-append`;
    const appendTopic = `${topic}-append`;
    const appendDb = `${database}_append`;
    mesh!.broker.createTopic(appendTopic, PARTITIONS);
    produce(mesh!, appendTopic, records);
    const spec = await writeSpec(mesh!, {
      name: appendName,
      topic: appendTopic,
      database: appendDb,
      schedule: `  cycle: { unit: hour, every: 1 }
  startAt: "00:05"
  timeZone: UTC
  window: { start: "$[yyyymmddhh24-1/24]0000", end: "$[yyyymmddhh24]0000" }
  partition: "$[yyyymmddhh24]"
  lateData: append
  notBefore: ${clockStart}`,
    });
    await sluiceJson('job', 'create', '-f', spec, '--start');
    await sluiceJson('job', 'backfill', appendName, '--from', local(scheduled[0]), '--to', local(scheduled[0]));
    const instancesOf = async () =>
      (await sluiceJson<InstanceJson[]>('job', 'runs', appendName)).filter((i) => i.scheduledTimeMs === scheduled[0]);
    await waitFor('the instance to succeed', async () => (await instancesOf()).some((i) => i.state === 'INSTANCE_STATE_SUCCEEDED'), {
      timeoutMs: 120_000,
    });
    produce(mesh!, appendTopic, [{ id: 999, at: h0 + 59 * MINUTE }]);
    const attempts = await waitFor(
      'the late record appended',
      async () => {
        const all = await instancesOf();
        return all.some((i) => i.attempt === 2 && i.state === 'INSTANCE_STATE_SUCCEEDED') ? all : undefined;
      },
      { timeoutMs: 120_000 },
    );
    assert.deepEqual(
      attempts.map((i) => [i.attempt, i.kind, i.rows, i.lateRecords, i.latePending]),
      [
        [1, 'INSTANCE_KIND_RUN', PER_HOUR, 1, 1],
        [2, 'INSTANCE_KIND_LATE_APPEND', 1, 1, 0],
      ],
    );
    assert.deepEqual(await partitionCounts(mesh!, `${appendDb}.events`), [[partitionOf(0), PER_HOUR + 1, PER_HOUR + 1]]);
    const history = await sluiceJson<{ snapshots: { snapshotId: number; operation: string }[] }>('table', 'history', `${appendDb}.events`);
    assert.equal(history.snapshots.find((x) => x.snapshotId === attempts[1].snapshotId)?.operation, 'append');
  });
});

describe('a 1-minute cycle on its own, with the scheduler killed between and in the middle of instances', () => {
  const { name, topic, database, table } = scenario('minutely');
  let mesh: TestMesh | undefined;
  printLogsOnFailure(() => mesh);
  const sluiceJson = <T = any>(...args: string[]) => runSluiceJson<T>(mesh!.clientEnv, ...args);

  // A day ahead of the wall clock, on a minute: no wall-clock reasoning ends these windows.
  const t0 = (Math.floor(Date.now() / MINUTE) + 24 * 60) * MINUTE;
  // Instance k fires at t0 + k minutes and reads [t0 + (k-1) min, t0 + k min).
  const firing = [1, 2, 3, 4].map((k) => t0 + k * MINUTE);
  const PER_WINDOW = 40;
  const records = [0, 1, 2].flatMap((k) =>
    Array.from({ length: PER_WINDOW }, (_, i) => ({ id: k * 1000 + i, at: t0 + k * MINUTE + Math.floor((i * MINUTE) / PER_WINDOW) })),
  );
  const instancesOf = async () => (await sluiceJson<InstanceJson[]>('job', 'runs', name)).filter((i) => firing.includes(i.scheduledTimeMs));
  const stateOf = (all: InstanceJson[], k: number) => all.find((i) => i.scheduledTimeMs === firing[k])?.state;

  before(async () => {
    // Ten times the wall clock, starting a minute before t0 now.
    const clock = `${t0 - MINUTE}@${Date.now()}*10`;
    mesh = await startMesh({ partitions: PARTITIONS, env: { INGESTION_SCHEDULER_TICK_MS: '200', INGESTION_SCHEDULER_CLOCK: clock } });
    mesh.broker.createTopic(topic, PARTITIONS);
    produce(mesh, topic, records);
  });
  after(async () => {
    await mesh?.stop();
  });

  it('fires every instance once, in order, across two kill -9s of the scheduler', async () => {
    const spec = await writeSpec(mesh!, {
      name,
      topic,
      database,
      schedule: `  cycle: { unit: minute, every: 1 }
  startAt: "00:00"
  timeZone: UTC
  notBefore: ${t0}
  window: { start: "$[yyyymmddhh24mi-1/24/60]00", end: "$[yyyymmddhh24mi]00" }
  partition: "$[yyyymmddhh24mi-1/24/60]"`,
    });
    await sluiceJson('job', 'create', '-f', spec, '--start');
    const wait = (what: string, ok: (all: InstanceJson[]) => boolean) =>
      waitFor(
        what,
        async () => {
          const all = await instancesOf().catch(() => undefined);
          return all && ok(all) ? all : undefined;
        },
        { timeoutMs: 120_000 },
      );

    await wait('the first instance to succeed', (all) => stateOf(all, 0) === 'INSTANCE_STATE_SUCCEEDED');
    // Between instances.
    await mesh!.kill('ingestion');
    await mesh!.restart('ingestion');
    // The third instance cannot end: no record is stamped past its window yet.
    await wait('the third instance to be running', (all) => stateOf(all, 2) === 'INSTANCE_STATE_RUNNING');
    await mesh!.kill('ingestion');
    await mesh!.restart('ingestion');
    // A record past every window ends the third and fourth instances' partitions.
    produce(
      mesh!,
      topic,
      [0, 1].map((i) => ({ id: 900_000 + i, at: t0 + HOUR })),
    );
    const all = await wait('four instances to succeed', (xs) => [0, 1, 2, 3].every((k) => stateOf(xs, k) === 'INSTANCE_STATE_SUCCEEDED'));
    await runSluice(mesh!.clientEnv, 'job', 'stop', name);
    mesh!.assertNoCrash();

    // One attempt per scheduled minute, none skipped; each partition exactly its window's records.
    assert.deepEqual(
      all.map((i) => [i.scheduledTimeMs, i.attempt, i.state]).sort((a, b) => Number(a[0]) - Number(b[0])),
      firing.map((t) => [t, 1, 'INSTANCE_STATE_SUCCEEDED']),
    );
    assert.deepEqual(
      await partitionCounts(mesh!, table),
      [0, 1, 2].map((k) => [compact(t0 + k * MINUTE, true), PER_WINDOW, PER_WINDOW]),
    );
  });
});
