/** Table-driven tests of the stream's pure pieces: coverage, error-table rows, reports. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { KafkaRecord, OffsetRange } from '#shared/gen/sluice/v1/types.js';
import { parsePrimitive } from '#shared/iceberg/single-value.js';
import type { WriterColumn } from '#shared/parquet/writer.js';
import { Coverage, CoverageError, unfitRun } from '../src/coverage.js';
import { recordRuns, runRecords } from '#shared/record-runs.js';
import { RunCursor } from '../src/run-cursor.js';
import { errorRowMapper, ErrorTableShapeError } from '../src/error-sink.js';
import { fileSafe } from '#shared/data-files.js';
import { backoffMs, buildReport } from '../src/reports.js';
import { rec } from './stream-support.js';

const r = (partition: number, startOffset: number, endOffset: number, topic = 't'): OffsetRange => ({
  topic,
  partition,
  startOffset,
  endOffset,
});

const COVERAGE_CASES: { name: string; batches: OffsetRange[][]; report?: OffsetRange[]; error?: RegExp }[] = [
  {
    name: 'consecutive batches merge per partition',
    batches: [[r(0, 5, 7)], [r(0, 7, 9)], [r(1, 0, 1)]],
    report: [r(0, 5, 9), r(1, 0, 1)],
  },
  { name: 'the first range of a partition may start anywhere', batches: [[r(2, 1000, 1001)]], report: [r(2, 1000, 1001)] },
  { name: 'an empty range continues but is not reported', batches: [[r(0, 3, 3)], [r(0, 3, 4)]], report: [r(0, 3, 4)] },
  {
    name: 'topics sort before partitions',
    batches: [[r(1, 0, 1, 'b'), r(0, 0, 1, 'a'), r(0, 0, 2, 'b')]],
    report: [r(0, 0, 1, 'a'), r(0, 0, 2, 'b'), r(1, 0, 1, 'b')],
  },
  {
    name: 'a gap is refused',
    batches: [[r(0, 0, 5)], [r(0, 6, 7)]],
    error: /t\[0\] starts at offset 6 but the previous batch ended at 5 \(offsets 5\.\.5 are missing\)/,
  },
  { name: 'an overlap is refused', batches: [[r(0, 0, 5)], [r(0, 3, 7)]], error: /offsets 3\.\.4 were already covered/ },
  { name: 'a partition twice in one batch is refused', batches: [[r(0, 0, 1), r(0, 1, 2)]], error: /covers t\[0\] twice/ },
  { name: 'end before start is refused', batches: [[r(0, 5, 4)]], error: /\[5, 4\), not a valid offset range/ },
  { name: 'a negative partition is refused', batches: [[r(-1, 0, 1)]], error: /partition -1/ },
  { name: 'a missing topic is refused', batches: [[r(0, 0, 1, '')]], error: /no topic/ },
];

for (const c of COVERAGE_CASES) {
  test(`coverage: ${c.name}`, () => {
    const cov = new Coverage();
    const run = () => {
      for (const b of c.batches) cov.add(b);
    };
    if (c.error) assert.throws(run, (e: unknown) => e instanceof CoverageError && c.error!.test(e.message));
    else {
      run();
      assert.deepEqual(cov.take(), c.report);
      assert.ok(cov.isEmpty);
    }
  });
}

test('coverage: a refused batch changes nothing, and reports continue across take()', () => {
  const cov = new Coverage();
  cov.add([r(0, 0, 5)]);
  assert.throws(() => cov.add([r(1, 0, 1), r(0, 9, 10)]));
  assert.deepEqual(cov.take(), [r(0, 0, 5)]); // partition 1 was not taken in
  cov.add([r(1, 7, 8)]); // still free to start anywhere
  assert.throws(() => cov.add([r(0, 0, 5)]), /already covered/); // continuity survives take()
  cov.add([r(0, 5, 6)]);
  assert.deepEqual(cov.take(), [r(0, 5, 6), r(1, 7, 8)]);
});

test('unfitRun: names the first record outside the covers', () => {
  const covers = [r(0, 10, 12), r(1, 0, 1)];
  assert.equal(unfitRun(recordRuns([rec('t', 0, 10, 'a'), rec('t', 0, 11, 'a'), rec('t', 1, 0, 'a')]), covers), null);
  assert.match(unfitRun(recordRuns([rec('t', 0, 12, 'a')]), covers)!, /t\[0\] offset 12 lies outside/);
  assert.match(unfitRun(recordRuns([rec('u', 0, 10, 'a')]), covers)!, /u\[0\] offset 10/);
  assert.match(unfitRun(recordRuns([rec('t', 0, 0, 'a')]), [])!, /covers \(none\)/);
});

const wc = (name: string, type: string, required = false, fieldId = 1): WriterColumn => ({
  name,
  type: parsePrimitive(type),
  required,
  fieldId,
});
const ERR = {
  source_topic: 'src',
  source_partition: 2,
  source_offset: 41,
  source_timestamp: 1_700_000_000_123,
  key: Buffer.from('k'),
  value: null,
  reason: 'invalid_json: nope',
  headers: [{ key: 'trace', value: Buffer.from('t1') }],
};

const ERROR_TABLE_CASES: { name: string; columns: WriterColumn[]; row?: unknown[]; error?: RegExp }[] = [
  {
    name: "the core's own shape",
    columns: [
      wc('source_topic', 'string', true),
      wc('source_partition', 'int', true),
      wc('source_offset', 'long', true),
      wc('source_timestamp', 'timestamptz'),
      wc('key', 'binary'),
      wc('value', 'binary'),
      wc('reason', 'string', true),
      wc('headers', 'string'),
    ],
    row: ['src', 2, 41, 1_700_000_000_123_000, Buffer.from('k'), null, 'invalid_json: nope', '[{"key":"trace","value":"t1"}]'],
  },
  {
    name: 'an error table made before the headers column keeps working without it',
    columns: [wc('source_offset', 'long', true), wc('reason', 'string', true)],
    row: [41, 'invalid_json: nope'],
  },
  {
    name: 'a required headers column is refused (most records have none)',
    columns: [wc('headers', 'string', true)],
    error: /column "headers"/,
  },
  {
    name: 'long milliseconds and text key/value',
    columns: [wc('source_timestamp', 'long'), wc('key', 'string'), wc('value', 'string')],
    row: [1_700_000_000_123, 'k', null],
  },
  {
    name: 'an extra optional column stays null',
    columns: [wc('reason', 'string'), wc('note', 'string')],
    row: ['invalid_json: nope', null],
  },
  { name: 'an extra required column is refused', columns: [wc('note', 'string', true)], error: /column "note" \(string, required\)/ },
  { name: 'a wrong type is refused', columns: [wc('source_offset', 'string')], error: /column "source_offset" \(string\)/ },
  { name: 'a required key is refused (keyless records exist)', columns: [wc('key', 'binary', true)], error: /column "key"/ },
];

for (const c of ERROR_TABLE_CASES) {
  test(`error table rows: ${c.name}`, () => {
    if (c.error)
      assert.throws(
        () => errorRowMapper('db.errs', c.columns),
        (e: unknown) => e instanceof ErrorTableShapeError && c.error!.test(e.message) && e.message.startsWith('error table db.errs: '),
      );
    else assert.deepEqual(errorRowMapper('db.errs', c.columns)(ERR), c.row);
  });
}

test("reports: record count is the files' sum; backoff doubles up to its cap", () => {
  const f = (recordCount: number) => ({
    filePath: `/x/${recordCount}`,
    fileFormat: 'PARQUET',
    specId: 0,
    partition: [],
    recordCount,
    fileSizeInBytes: 1,
    columnStats: [],
    splitOffsets: [],
  });
  const report = buildReport({
    flushId: 'f',
    table: { database: 'd', table: 't' },
    job: 'j',
    workerId: 'w',
    files: [f(3), f(4)],
    offsets: [r(0, 0, 9)],
  });
  assert.equal(report.recordCount, 7);
  assert.deepEqual(report.offsets, [r(0, 0, 9)]);
  const p = { budgetMs: 10_000, firstBackoffMs: 100, maxBackoffMs: 1000 };
  assert.deepEqual(
    [1, 2, 3, 4, 5, 9].map((a) => backoffMs(p, a)),
    [100, 200, 400, 800, 1000, 1000],
  );
});

test('file names: worker ids become safe file-name segments', () => {
  const cases: [string, string][] = [
    ['job-host/123-1', 'job-host_123-1'],
    ['a b:c', 'a_b_c'],
    ['ok.name_1-2', 'ok.name_1-2'],
    ['', '_'],
  ];
  for (const [id, safe] of cases) assert.equal(fileSafe(id), safe, id);
});

test('RunCursor reads each run as the reference runRecords does, and a snapshot outlives the step', () => {
  const records = [
    rec('t', 0, 5, '{"a":1}', { key: 'k' }),
    rec('t', 0, 6, undefined),
    { ...rec('t', 0, 9, ''), headers: [{ key: 'h', value: Buffer.from('v') }] },
    rec('t', 1, 0, 'żółw', { timestampMs: -1 }),
    rec('u', 1, 3, '{}', { key: '' }),
  ];
  const cursor = new RunCursor();
  const read: KafkaRecord[] = [];
  const snapshots: KafkaRecord[] = [];
  for (const run of recordRuns(records)) {
    cursor.reset(run);
    while (cursor.next()) {
      const { topic, partition, offset, timestampMs, key, value, headers } = cursor;
      read.push({ topic, partition, offset, timestampMs, key, value, headers: [...headers] });
      snapshots.push(cursor.snapshot());
    }
    assert.equal(cursor.next(), false, 'stays at the end');
  }
  const reference = recordRuns(records).flatMap(runRecords);
  assert.deepEqual(read, reference);
  assert.deepEqual(snapshots, reference);
  assert.deepEqual(snapshots[0].key, Buffer.from('k'));
});
