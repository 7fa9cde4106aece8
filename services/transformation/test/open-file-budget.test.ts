/**
 * The open-file budget with real writers (DuckDB, real files): over the budget, the appending
 * stream's largest open file is written out early, another stream's files are left alone, and
 * the early file is still handed over at the next close with every row.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { parsePrimitive } from '#shared/iceberg/single-value.js';
import type { CellValue, WriterColumn } from '#shared/parquet/writer.js';
import { createStorage } from '#shared/storage/index.js';
import { PartitionedFiles } from '../src/files.js';
import { OpenFileBudget } from '../src/open-file-budget.js';

const columns: WriterColumn[] = [
  { fieldId: 1, name: 'id', type: parsePrimitive('long'), required: true },
  { fieldId: 2, name: 'text', type: parsePrimitive('string'), required: false },
];
const rows = (from: number, count: number): CellValue[][] =>
  Array.from({ length: count }, (_, i) => [from + i, `row ${from + i} ${'x'.repeat(100)}`]);
const partition = (key: string) => ({ key, path: key === '' ? '' : `p=${key}`, values: [] });

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sluice-budget-'));
});
after(() => rm(dir, { recursive: true, force: true }));

const filesOf = (worker: string) =>
  new PartitionedFiles({
    location: join(dir, worker),
    columns,
    specId: 0,
    workerId: worker,
    targetFileBytes: 1 << 30,
    storage: createStorage(),
    spoolDir: join(dir, 'spool'),
  });

test('over the budget, the appending stream writes out its largest open file; under it, nothing changes', async () => {
  const mine = filesOf('mine');
  const theirs = filesOf('theirs');
  const budget = new OpenFileBudget(20_000);
  const unregister = budget.register(mine, theirs);

  await theirs.append(partition(''), rows(0, 200));
  await mine.append(partition('a'), rows(0, 50));
  await mine.append(partition('b'), rows(50, 150));
  const theirsBefore = theirs.openBytes;
  assert.ok(budget.openBytes > 20_000 && theirs.openBytes > 20_000, `${budget.openBytes} bytes open`);

  const rolled = await budget.enforce([mine]);
  assert.equal(rolled, 2, 'b first (the largest), then a, until only the other stream is left');
  assert.equal(mine.openBytes, 0);
  assert.equal(theirs.openBytes, theirsBefore, "another stream's files are not its to write");
  assert.equal(await budget.enforce([mine]), 0, 'nothing of its own left to write');

  await mine.append(partition('a'), rows(200, 10));
  const handed = await mine.close();
  assert.deepEqual(
    handed.map((f) => f.recordCount).sort((x, y) => x - y),
    [10, 50, 150],
    'the early files and the new one, every row',
  );
  assert.equal(new Set(handed.map((f) => f.filePath)).size, 3);

  unregister();
  assert.equal(budget.openBytes, 0, 'unregistered sets are not counted');
  await theirs.discard();
});

test('under the budget nothing is written early', async () => {
  const mine = filesOf('under');
  const budget = new OpenFileBudget(1 << 30);
  budget.register(mine);
  await mine.append(partition(''), rows(0, 100));
  assert.equal(await budget.enforce([mine]), 0);
  assert.ok(mine.openBytes > 0);
  assert.deepEqual(
    (await mine.close()).map((f) => f.recordCount),
    [100],
  );
});
