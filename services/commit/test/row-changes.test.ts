/** A keyed round's changes against the row index: which positions are deleted, what the index becomes, what is counted. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { DataFile, RowChanges } from '#shared/gen/sluice/v1/types.js';
import { planRowDeletes, roundRows, type ReportRows } from '../src/row-changes.js';

const file = (filePath: string, recordCount: number): DataFile =>
  ({
    filePath,
    recordCount,
    specId: 0,
    partition: [],
    fileSizeInBytes: 1,
    columnStats: [],
    splitOffsets: [],
    fileFormat: 'parquet',
  }) as DataFile;

/** A report: files with their keys in row order, and deleted keys. */
function report(
  workerId: string,
  files: Record<string, string[]>,
  deletedKeys: string[] = [],
  positions: Record<string, number[]> = {},
): ReportRows {
  const changes: RowChanges = {
    files: Object.entries(files).map(([filePath, keys]) => ({ filePath, keys, positions: positions[filePath] ?? [] })),
    deletedKeys,
    deletedPositions: positions.deleted ?? [],
  };
  return { workerId, files: Object.entries(files).map(([path, keys]) => file(path, keys.length)), changes };
}

describe('roundRows: the last change per key of a round', () => {
  const cases: { name: string; reports: ReportRows[]; last: [string, string | null][]; superseded: string[] }[] = [
    {
      name: 'rows of one report',
      reports: [report('w1', { a: ['[1]', '[2]'] })],
      last: [
        ['[1]', 'a@0'],
        ['[2]', 'a@1'],
      ],
      superseded: [],
    },
    {
      name: 'a later report replaces a key of an earlier one',
      reports: [report('w1', { a: ['[1]', '[2]'] }), report('w2', { b: ['[2]'] })],
      last: [
        ['[1]', 'a@0'],
        ['[2]', 'b@0'],
      ],
      superseded: ['a@1'],
    },
    {
      name: 'a later delete removes a row of an earlier report',
      reports: [report('w1', { a: ['[1]'] }), report('w2', {}, ['[1]'])],
      last: [['[1]', null]],
      superseded: ['a@0'],
    },
    {
      name: 'a delete then a row: the row',
      reports: [report('w1', {}, ['[7]']), report('w2', { b: ['[7]'] })],
      last: [['[7]', 'b@0']],
      superseded: [],
    },
    {
      name: 'by source position, an older change of a later report does not win (the key moved partitions)',
      reports: [report('w1', { a: ['[1]'] }, [], { a: [200] }), report('w2', { b: ['[1]'] }, [], { b: [100] })],
      last: [['[1]', 'a@0']],
      superseded: ['b@0'],
    },
    {
      name: 'by source position, an older delete does not remove a newer row',
      reports: [report('w1', { a: ['[1]'] }, [], { a: [200] }), report('w2', {}, ['[1]'], { deleted: [100] })],
      last: [['[1]', 'a@0']],
      superseded: [],
    },
    {
      name: 'without positions on both sides, report order decides',
      reports: [report('w1', { a: ['[1]'] }, [], { a: [200] }), report('w2', { b: ['[1]'] })],
      last: [['[1]', 'b@0']],
      superseded: ['a@0'],
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const round = roundRows(c.reports);
      assert.deepEqual(
        [...round.last].map(([k, at]) => [k, at ? `${at.filePath}@${at.pos}` : null]),
        c.last,
      );
      assert.deepEqual(
        round.superseded.map((at) => `${at.filePath}@${at.pos}`),
        c.superseded,
      );
    });
  }

  it('refuses a report whose keys do not describe its files', () => {
    const bad: ReportRows = {
      workerId: 'w1',
      files: [file('a', 3)],
      changes: { files: [{ filePath: 'a', keys: ['[1]'], positions: [] }], deletedKeys: [], deletedPositions: [] },
    };
    assert.throws(() => roundRows([bad]), /worker w1 reported 1 keys for data file a of 3 rows/);
    assert.throws(() => roundRows([{ workerId: 'w2', files: [file('b', 1)], changes: undefined }]), /without their keys/);
  });
});

describe('planRowDeletes: positions, index and counts', () => {
  it('deletes every found row and every superseded new row; counts inserts, updates and deletes', () => {
    const round = roundRows([report('w1', { new1: ['[1]', '[2]', '[3]'] }, ['[4]', '[5]']), report('w2', { new2: ['[3]'] })]);
    const found = [
      { filePath: 'old', keys: ['[1]', '[4]'], positions: [9, 2] },
      { filePath: 'older', keys: ['[3]'], positions: [0] },
    ];
    const plan = planRowDeletes(round, found, [file('new1', 3), file('new2', 1), file('unused', 1)]);
    assert.deepEqual(Object.fromEntries(plan.positions), { old: [2, 9], older: [0], new1: [2] });
    // [1] and [3] replaced (updates), [2] new (insert), [4] removed (delete), [5] absent: nothing.
    assert.deepEqual(plan.counts, { inserted: 1, updated: 2, deleted: 1 });
    assert.deepEqual(plan.index.upserts, [
      { filePath: 'new1', keys: ['[1]', '[2]'], positions: [0, 1] },
      { filePath: 'new2', keys: ['[3]'], positions: [0] },
    ]);
    assert.deepEqual(plan.index.deletes, ['[4]']);
    assert.deepEqual(
      plan.index.files.map((f) => f.filePath),
      ['new1', 'new2'],
    );
  });

  it('a delete of an absent key does nothing', () => {
    const plan = planRowDeletes(roundRows([report('w1', {}, ['[1]'])]), [], []);
    assert.equal(plan.positions.size, 0);
    assert.deepEqual(plan.counts, { inserted: 0, updated: 0, deleted: 0 });
    assert.deepEqual(plan.index.deletes, []);
  });
});
