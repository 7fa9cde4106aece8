/**
 * Issue 16's acceptance tests: change streams into a keyed table, through the four services as
 * real processes and the CLI as a user runs it.
 *
 * 1. A reference model: random keyed changes (inserts, updates, deletes as tombstones, deletes
 *    of absent keys, repeats of one key within a flush and across flushes) over many keys, in
 *    waves; after each wave is committed, the table read by `sluice query` (merge-on-read)
 *    equals the model's final state, and `job status` counts the model's inserts, updates and
 *    deletes. Between two waves the commit and transformation services, then ingestion, are
 *    killed with SIGKILL: no change is applied twice or lost.
 * 2. Compaction (maintenance every few seconds) rewrites files without their deleted rows and
 *    drops the delete files it applied, moving the row index with them: the table still equals
 *    the model, and later changes still find their rows.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runSluice, runSluiceJson } from '#test-support/cli.js';
import { printLogsOnFailure, startMesh, type TestMesh } from '#test-support/mesh.js';
import { seededRandom } from '#test-support/random.js';
import { waitFor } from '#test-support/wait.js';

const PARTITIONS = 3;

function scenario(prefix: string) {
  const suffix = randomBytes(4).toString('hex');
  return { name: `${prefix}-${suffix}`, database: `${prefix}_${suffix}` };
}

async function writeSpec(mesh: TestMesh, text: string): Promise<string> {
  const path = join(mesh.dir, `spec-${randomBytes(3).toString('hex')}.yaml`);
  await writeFile(path, text);
  return path;
}

interface Row {
  id: number;
  name: string;
  v: number;
}

/** The model: a key's row, or absent; and what the changes did to the table. */
class Model {
  readonly rows = new Map<number, Row>();
  inserted = 0;
  updated = 0;
  deleted = 0;

  upsert(row: Row): void {
    if (this.rows.has(row.id)) this.updated++;
    else this.inserted++;
    this.rows.set(row.id, row);
  }

  delete(id: number): void {
    if (this.rows.delete(id)) this.deleted++;
  }

  sorted(): Row[] {
    return [...this.rows.values()].sort((a, b) => a.id - b.id);
  }
}

describe('keyed changes against a reference model', () => {
  const { name, database } = scenario('upserts');
  const table = `${database}.items`;
  let mesh: TestMesh | undefined;
  printLogsOnFailure(() => mesh);
  const sluiceJson = <T = any>(...args: string[]) => runSluiceJson<T>(mesh!.clientEnv, ...args);
  const model = new Model();
  const random = seededRandom(16);
  const KEYS = 10_000;
  let produced = 0;

  before(async () => {
    // Maintenance every few seconds: compaction rewrites the files with deleted rows while changes land.
    mesh = await startMesh({ partitions: PARTITIONS, env: { COMMIT_MAINTENANCE_INTERVAL_MS: '3000' } });
    mesh.broker.createTopic(name, PARTITIONS);
    const spec = await writeSpec(
      mesh,
      `name: ${name}
source:
  name: ${name}
  topic: ${name}
  format: JSON
table:
  database: ${database}
  name: items
  columns:
    - { name: id, type: long, required: true }
    - { name: name, type: string }
    - { name: v, type: long }
  key: [id]
mapping:
  changes: keyed
commit:
  intervalMs: 1000
`,
    );
    await sluiceJson('job', 'create', '-f', spec, '--start');
  });
  after(async () => {
    await mesh?.stop();
  });

  /** One wave of random changes, each key on its own Kafka partition (as a keyed producer puts it). */
  function wave(changes: number): void {
    const byPartition: { key: string; value: string | null }[][] = Array.from({ length: PARTITIONS }, () => []);
    for (let i = 0; i < changes; i++) {
      const id = Math.floor(random() * KEYS);
      const p = id % PARTITIONS;
      if (random() < 0.15) {
        model.delete(id);
        byPartition[p].push({ key: JSON.stringify({ id }), value: null });
      } else {
        const row = { id, name: `n${Math.floor(random() * 1e6)}`, v: produced + i };
        model.upsert(row);
        byPartition[p].push({ key: JSON.stringify({ id }), value: JSON.stringify(row) });
      }
    }
    produced += changes;
    byPartition.forEach((records, p) => {
      if (records.length > 0) mesh!.broker.append(name, p, records);
    });
  }

  async function tableEqualsModel(what: string): Promise<void> {
    const expected = model.sorted();
    const rows = await waitFor(
      what,
      async () => {
        mesh!.assertNoCrash();
        const result = await sluiceJson<{ rows: Row[] }>('query', `SELECT id, name, v FROM ${table} ORDER BY id`);
        const got = result.rows.map((r) => ({ id: Number(r.id), name: r.name, v: Number(r.v) }));
        const last = got.reduce((m, r) => Math.max(m, r.v), -1);
        // Every change is committed once the newest one shows (or, when it was a delete, the count matches).
        return got.length === expected.length && last === expected.reduce((m, r) => Math.max(m, r.v), -1) ? got : undefined;
      },
      { timeoutMs: 120_000 },
    );
    assert.deepEqual(rows, expected);
  }

  /** The table after the first wave: a past snapshot, read again later with its own deletes. */
  let firstWave: { snapshotId: number; rows: Row[] } | undefined;

  it('each wave committed leaves the table equal to the model, with the model counts', async () => {
    for (let w = 0; w < 3; w++) {
      wave(8_000);
      await tableEqualsModel(`wave ${w} to be committed`);
      if (w === 0) {
        const described = await sluiceJson<{ currentSnapshotId: number }>('table', 'describe', table);
        firstWave = { snapshotId: described.currentSnapshotId, rows: model.sorted() };
      }
    }
    // Changes to one key within a flush collapse to the last, so the job counts what each commit
    // did to the table: at most the model's changes, and its inserts less its deletes are the rows.
    const { changes } = await sluiceJson<{ changes: { inserted: number; updated: number; deleted: number } }>('job', 'status', name);
    const [inserted, updated, deleted] = [changes.inserted, changes.updated, changes.deleted].map(Number);
    assert.equal(inserted - deleted, model.rows.size);
    assert.ok(inserted <= model.inserted && updated <= model.updated && deleted <= model.deleted, JSON.stringify(changes));
    assert.ok(updated > 0 && deleted > 0, JSON.stringify(changes));
  });

  it('SIGKILL of the commit and transformation services applies no change twice', async () => {
    wave(6_000);
    await mesh!.kill('commit');
    await mesh!.kill('transformation');
    await mesh!.restart('transformation');
    await mesh!.restart('commit');
    await tableEqualsModel('the wave after the kills to be committed');
    wave(6_000);
    await tableEqualsModel('one more wave to be committed');
  });

  it('SIGKILL of ingestion with changes in flight: the restarted job re-reads them and applies each once', async () => {
    wave(6_000);
    await mesh!.kill('ingestion');
    wave(2_000);
    await mesh!.restart('ingestion');
    await tableEqualsModel('the waves around the ingestion kill to be committed');
  });

  it('compaction rewrites files without their deleted rows; the table still equals the model', async () => {
    const replaced = await waitFor(
      'a compaction of the keyed table',
      async () => {
        mesh!.assertNoCrash();
        const history = await sluiceJson<{ snapshots: { operation: string; summary: Record<string, string> }[] }>(
          'table',
          'history',
          table,
        );
        return history.snapshots.find((s) => s.operation === 'replace' && Number(s.summary['removed-delete-files'] ?? 0) > 0);
      },
      { timeoutMs: 120_000 },
    );
    assert.ok(
      Number(replaced.summary['deleted-records']) > Number(replaced.summary['added-records'] ?? 0),
      JSON.stringify(replaced.summary),
    );
    wave(4_000);
    await tableEqualsModel('a wave after compaction to be committed');

    // Time travel reads a past snapshot with the deletes it had, before compaction rewrote its files.
    const past = await sluiceJson<{ rows: Row[] }>(
      'query',
      '--snapshot',
      String(firstWave!.snapshotId),
      `SELECT id, name, v FROM ${table} ORDER BY id`,
    );
    assert.deepEqual(
      past.rows.map((r) => ({ id: Number(r.id), name: r.name, v: Number(r.v) })),
      firstWave!.rows,
    );
  });

  it('a change stream without columns, or into a table without a key, is refused with the reason', async () => {
    const noColumns = await writeSpec(
      mesh!,
      `name: ${name}-x\nsource: { name: ${name}-x, topic: ${name}, format: JSON }\ntable: { database: ${database}, name: other }\nmapping: { changes: debezium }\n`,
    );
    const refused = await runSluice(mesh!.clientEnv, 'job', 'create', '-f', noColumns);
    assert.equal(refused.code, 2, refused.stderr);
    assert.match(refused.stderr, /table\.columns: a change stream \(mapping\.changes\) needs the table's columns/);

    const noKey = await writeSpec(
      mesh!,
      `name: ${name}-y\nsource: { name: ${name}-y, topic: ${name}-y, format: JSON }\ntable:\n  database: ${database}\n  name: unkeyed\n  columns: [{ name: id, type: long }]\nmapping: { changes: keyed }\n`,
    );
    const unkeyed = await runSluice(mesh!.clientEnv, 'job', 'create', '-f', noKey);
    assert.notEqual(unkeyed.code, 0);
    assert.match(unkeyed.stderr, /has no key to match changes by/);
  });

  it('describe shows the key and the delete files', async () => {
    const described = await sluiceJson<{ key: string[]; deleteFiles: number; positionDeletes: number }>('table', 'describe', table);
    assert.deepEqual(described.key, ['id']);
    // Maintenance may have compacted them all away by now: a count, not a particular one.
    assert.ok(Number.isInteger(described.deleteFiles) && Number.isInteger(described.positionDeletes), JSON.stringify(described));
    const text = await runSluice(mesh!.clientEnv, 'table', 'describe', table);
    assert.match(text.stdout, /^key {8}id$/m);
    assert.match(text.stdout, /^deletes {4}\d+ position delete files \(\d+ rows deleted\)$/m);
  });
});
