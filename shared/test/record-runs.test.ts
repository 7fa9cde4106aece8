import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { RecordRun } from '#shared/gen/sluice/v1/transformation.js';
import type { KafkaRecord } from '#shared/gen/sluice/v1/types.js';
import { recordRuns, runLength, runProblem, runRecords } from '#shared/record-runs.js';

const record = (topic: string, partition: number, offset: number, value?: string, extra: Partial<KafkaRecord> = {}): KafkaRecord => ({
  topic,
  partition,
  offset,
  timestampMs: 1_700_000_000_000 + offset,
  key: undefined,
  value: value === undefined ? undefined : Buffer.from(value),
  headers: [],
  ...extra,
});

test('recordRuns and runRecords: records survive the columns unchanged', () => {
  const cases: [string, KafkaRecord[]][] = [
    ['none', []],
    ['one', [record('t', 0, 7, '{"a":1}')]],
    ['null, empty and multi-byte values', [record('t', 0, 0), record('t', 0, 1, ''), record('t', 0, 2, 'żółw 🐢')]],
    [
      'keys on some records only (null keys stay null, empty keys stay empty)',
      [record('t', 0, 0, 'a'), record('t', 0, 1, 'b', { key: Buffer.from('k1') }), record('t', 0, 2, 'c', { key: Buffer.alloc(0) })],
    ],
    [
      'headers on some records, a header with a null value, a repeated header name',
      [
        record('t', 1, 10, 'a', {
          headers: [
            { key: 'h', value: Buffer.from('1') },
            { key: 'h', value: Buffer.from('2') },
          ],
        }),
        record('t', 1, 11, 'b'),
        record('t', 1, 12, 'c', { headers: [{ key: 'n', value: undefined }] }),
      ],
    ],
    ['gaps between offsets (a compacted topic)', [record('t', 0, 5, 'a'), record('t', 0, 9, 'b'), record('t', 0, 4000000000, 'c')]],
    [
      'timestamps before 1970 and none (-1)',
      [record('t', 0, 0, 'a', { timestampMs: -1 }), record('t', 0, 1, 'b', { timestampMs: -86_400_000 })],
    ],
  ];
  for (const [name, records] of cases) {
    const runs = recordRuns(records);
    for (const run of runs) assert.equal(runProblem(run), null, name);
    assert.deepEqual(runs.flatMap(runRecords).map(plain), records.map(plain), name);
  }
});

test('recordRuns: consecutive records of one partition share a run, in order', () => {
  const runs = recordRuns([
    record('t', 0, 0, 'a'),
    record('t', 0, 1, 'b'),
    record('t', 1, 0, 'c'),
    record('u', 1, 0, 'd'),
    record('t', 0, 2, 'e'),
  ]);
  assert.deepEqual(
    runs.map((r) => [r.topic, r.partition, runLength(r)]),
    [
      ['t', 0, 2],
      ['t', 1, 1],
      ['u', 1, 1],
      ['t', 0, 1],
    ],
  );
  assert.deepEqual(runs[0].keyLengths, [], 'no key column when no record has a key');
});

test('runProblem: names the column that does not fit', () => {
  const good = recordRuns([
    record('t', 2, 0, 'ab'),
    record('t', 2, 1, 'c', { key: Buffer.from('k'), headers: [{ key: 'h', value: undefined }] }),
  ])[0];
  const cases: [string, Partial<RecordRun>, RegExp | null][] = [
    ['as built', {}, null],
    ['a timestamp missing', { timestampsMs: [1] }, /t\/2: 1 timestamps for 2 records/],
    ['a value length missing', { valueLengths: [2] }, /1 value lengths for 2 records/],
    ['key lengths for some records only', { keyLengths: [1] }, /1 key lengths for 2 records/],
    ['value lengths beyond the bytes', { valueLengths: [2, 5] }, /value lengths add up to 7 bytes, the values hold 3/],
    ['a length below -1', { valueLengths: [2, -2] }, /t\/2: record 1 has value length -2/],
    ['key lengths short of the bytes', { keyLengths: [-1, 0] }, /key lengths add up to 0 bytes, the keys hold 1/],
    ['a header beyond the records', { headers: [{ index: 2, headers: [] }] }, /header index 2 is out of order or beyond its 2 records/],
    [
      'headers out of order',
      {
        headers: [
          { index: 1, headers: [] },
          { index: 0, headers: [] },
        ],
      },
      /header index 0 is out of order/,
    ],
  ];
  for (const [name, change, expected] of cases) {
    const problem = runProblem({ ...good, ...change });
    if (expected === null) assert.equal(problem, null, name);
    else assert.match(problem ?? '', expected, name);
  }
});

/** A record with plain arrays for its buffers, so views and copies compare equal. */
function plain(r: KafkaRecord) {
  return {
    ...r,
    key: r.key === undefined ? undefined : [...r.key],
    value: r.value === undefined ? undefined : [...r.value],
    headers: r.headers.map((h) => ({ key: h.key, value: h.value === undefined ? undefined : [...h.value] })),
  };
}
