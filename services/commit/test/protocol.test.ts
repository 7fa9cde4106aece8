/**
 * The pure parts of the flush protocol: admission by offset contiguity, the worker registry
 * with its TTL, round completion, duplicate deliveries, error-table reports waiting for their
 * data report, and which of a job's tables a report names.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { OffsetRange } from '#shared/gen/sluice/v1/types.js';
import type { ReportDataFilesRequest } from '#shared/gen/sluice/v1/commit.js';
import { ErrorPolicyKind } from '#shared/gen/sluice/v1/types.js';
import type { Job } from '#shared/gen/sluice/v1/catalog.js';
import { DeliveryLog } from '../src/deliveries.js';
import { ErrorReports } from '../src/error-reports.js';
import { roleOf, targetsOf } from '../src/job-tables.js';
import { admitReports, describeMisfit, OffsetLedger } from '../src/offsets.js';
import { FlushRound } from '../src/round.js';
import { WorkerRegistry } from '../src/workers.js';

const r = (partition: number, start: number, end: number, topic = 't'): OffsetRange => ({
  topic,
  partition,
  startOffset: start,
  endOffset: end,
});
const report = (id: string, ...offsets: OffsetRange[]) => ({ id, offsets });
const committed = (entries: [number, number][], starts: [number, number][] = []) =>
  OffsetLedger.fromCommitted(
    entries.map(([partition, nextOffset]) => ({ topic: 't', partition, nextOffset, snapshotId: 1 })),
    starts.map(([partition, offset]) => ({ topic: 't', partition, offset })),
  );

describe('admission by offset contiguity', () => {
  const cases: {
    name: string;
    ledger: [number, number][];
    /** Recorded starts (partition, offset) of the job. */
    starts?: [number, number][];
    reports: ReturnType<typeof report>[];
    admitted: string[];
    dropped: [string, string][];
    offsets: OffsetRange[];
  }[] = [
    {
      name: 'reports continuing the committed offsets are admitted and merged per partition',
      ledger: [
        [0, 10],
        [1, 5],
      ],
      reports: [report('a', r(0, 10, 20)), report('b', r(1, 5, 8)), report('a2', r(0, 20, 25))],
      admitted: ['a', 'b', 'a2'],
      dropped: [],
      offsets: [r(0, 10, 25), r(1, 5, 8)],
    },
    {
      name: 'a stale report (starts before the next offset) is dropped',
      ledger: [[0, 10]],
      reports: [report('zombie', r(0, 4, 12)), report('ok', r(0, 10, 11))],
      admitted: ['ok'],
      dropped: [['zombie', 'stale']],
      offsets: [r(0, 10, 11)],
    },
    {
      name: 'a gap (starts after the next offset) is dropped, and so is its successor',
      ledger: [[0, 10]],
      reports: [report('gap', r(0, 12, 20)), report('next', r(0, 20, 30))],
      admitted: [],
      dropped: [
        ['gap', 'gap'],
        ['next', 'gap'],
      ],
      offsets: [],
    },
    {
      name: 'a first report on a partition must begin at the recorded start',
      ledger: [],
      starts: [
        [3, 1000],
        [4, 7],
      ],
      reports: [report('first', r(3, 1000, 1010)), report('skips', r(4, 12, 20)), report('early', r(4, 6, 20))],
      admitted: ['first'],
      dropped: [
        ['skips', 'gap'],
        ['early', 'stale'],
      ],
      offsets: [r(3, 1000, 1010)],
    },
    {
      name: 'a committed offset supersedes the recorded start',
      ledger: [[3, 1500]],
      starts: [[3, 1000]],
      reports: [report('restart', r(3, 1000, 1010)), report('next', r(3, 1500, 1510))],
      admitted: ['next'],
      dropped: [['restart', 'stale']],
      offsets: [r(3, 1500, 1510)],
    },
    {
      name: 'a partition with neither a commit nor a recorded start here is left to the catalog',
      ledger: [],
      reports: [report('first', r(3, 1000, 1010))],
      admitted: ['first'],
      dropped: [],
      offsets: [r(3, 1000, 1010)],
    },
    {
      name: 'one misfit range drops the whole report (its files span partitions)',
      ledger: [
        [0, 10],
        [1, 10],
      ],
      reports: [report('mixed', r(0, 10, 15), r(1, 9, 15))],
      admitted: [],
      dropped: [['mixed', 'stale']],
      offsets: [],
    },
    {
      name: 'a partition listed twice, or a backwards range, is invalid',
      ledger: [],
      reports: [report('twice', r(0, 1, 2), r(0, 2, 3)), report('backwards', r(1, 5, 4))],
      admitted: [],
      dropped: [
        ['twice', 'invalid'],
        ['backwards', 'invalid'],
      ],
      offsets: [],
    },
    {
      name: 'an empty range (a worker with nothing new) is admitted and moves nothing',
      ledger: [[0, 10]],
      reports: [report('idle', r(0, 10, 10))],
      admitted: ['idle'],
      dropped: [],
      offsets: [r(0, 10, 10)],
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const ledger = committed(c.ledger, c.starts);
      const result = admitReports(ledger, c.reports);
      assert.deepEqual(
        result.admitted.map((x) => x.id),
        c.admitted,
      );
      assert.deepEqual(
        result.dropped.map((d) => [d.report.id, d.misfit.kind]),
        c.dropped,
      );
      assert.deepEqual(result.offsets, c.offsets);
      // The ledger itself only moves when the caller commits.
      assert.deepEqual(
        c.ledger.map(([p]) => ledger.expected('t', p)),
        c.ledger.map(([, n]) => n),
      );
    });
  }

  it('names the partition and offsets of a misfit', () => {
    const misfit = committed([[2, 100]]).check([r(2, 90, 120)])!;
    assert.match(describeMisfit(misfit), /t\[2\] starts at offset 90 but 100 is the next uncommitted offset \(stale report\)/);
    const gap = committed([[2, 100]]).check([r(2, 105, 120)])!;
    assert.match(describeMisfit(gap), /offsets 100\.\.104 are missing/);
  });

  it('advance moves the next offsets to the ends of the committed ranges', () => {
    const ledger = committed([[0, 10]]);
    ledger.advance([r(0, 10, 42), r(7, 3, 9)]);
    assert.equal(ledger.expected('t', 0), 42);
    assert.equal(ledger.expected('t', 7), 9);
    assert.equal(ledger.check([r(0, 10, 50)])?.kind, 'stale');
  });
});

describe('worker registry', () => {
  it('forgets a worker whose beats stopped for longer than the TTL, and one that said goodbye', () => {
    const reg = new WorkerRegistry(1000);
    assert.equal(reg.beat('w1', 0, 10, true), true);
    assert.equal(reg.beat('w2', 0, 20, true), true);
    assert.equal(reg.beat('w1', 500, 30, true), false);
    assert.equal(reg.bufferedBytes(), 50);
    assert.deepEqual(reg.live(1200), ['w1']);
    reg.beat('w1', 1300, 0, false);
    assert.deepEqual(reg.live(1300), []);
  });

  it('counts a report as a sign of life', () => {
    const reg = new WorkerRegistry(1000);
    reg.sawReport('w', 5);
    assert.deepEqual(reg.live(900), ['w']);
  });
});

describe('flush round', () => {
  it('completes when every expected worker reported, whatever the order', () => {
    const round = new FlushRound('f', 0, ['a', 'b', 'c'], 'test');
    round.reported('b');
    round.reported('x'); // not expected: counted as data, not as readiness
    assert.equal(round.complete, false);
    assert.deepEqual(round.pendingWorkers(), ['a', 'c']);
    round.reported('a');
    round.workerGone('c');
    assert.equal(round.complete, true);
  });

  it('with nobody to wait for, completes on the first report (else at the deadline)', () => {
    const round = new FlushRound('f', 0, [], 'rpc');
    assert.equal(round.complete, false);
    round.reported('late-joiner');
    assert.equal(round.complete, true);
  });
});

const delivery = (over: Partial<ReportDataFilesRequest> = {}): ReportDataFilesRequest => ({
  flushId: 'f1',
  table: { database: 'd', table: 'main' },
  job: 'j',
  workerId: 'w1',
  files: [
    {
      filePath: 'file:///wh/d/main/data/a.parquet',
      fileFormat: 'parquet',
      specId: 0,
      partition: [],
      recordCount: 3,
      fileSizeInBytes: 10,
      columnStats: [],
      splitOffsets: [],
    },
  ],
  offsets: [r(0, 0, 4)],
  recordCount: 3,
  errorCounts: [],
  ...over,
});

describe('duplicate deliveries', () => {
  const cases: { name: string; second: Partial<ReportDataFilesRequest>; repeated: boolean }[] = [
    { name: 'the same report again is a repeat', second: {}, repeated: true },
    { name: 'the same report with error_reports spelled out as absent is a repeat', second: { errorReports: undefined }, repeated: true },
    { name: 'the next flush is not', second: { flushId: 'f2', offsets: [r(0, 4, 6)] }, repeated: false },
    { name: 'another worker is not', second: { workerId: 'w2' }, repeated: false },
    {
      name: 'another table (the error table of the same flush) is not',
      second: { table: { database: 'd', table: 'errors' }, offsets: [] },
      repeated: false,
    },
    { name: 'a reused flush id with other offsets is not', second: { offsets: [r(0, 0, 5)] }, repeated: false },
    { name: 'a reused flush id with other files is not', second: { files: [] }, repeated: false },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const log = new DeliveryLog();
      assert.equal(log.repeated(delivery()), false);
      assert.equal(log.repeated(delivery(c.second)), c.repeated);
    });
  }

  it('remembers only the last delivery per worker and table, and forgets a worker', () => {
    const log = new DeliveryLog();
    log.repeated(delivery());
    log.repeated(delivery({ flushId: 'f2' }));
    assert.equal(log.repeated(delivery({ flushId: 'f2' })), true);
    assert.equal(log.repeated(delivery()), false); // f1 is history: a worker never retries an older report
    assert.deepEqual(log.workerIds(), ['w1']);
    log.forget('w1');
    assert.deepEqual(log.workerIds(), []);
    assert.equal(log.repeated(delivery()), false);
  });
});

describe('error-table reports waiting for their data report', () => {
  const err = (workerId: string, flushId: string, path: string) =>
    delivery({
      workerId,
      flushId,
      table: { database: 'd', table: 'errors' },
      offsets: [],
      files: [{ ...delivery().files[0], filePath: path }],
    });

  it('a data report takes exactly its worker and flush; the rest wait; a gone worker leaves nothing behind', () => {
    const store = new ErrorReports();
    store.add(err('w1', 'f1', 'e1'));
    store.add(err('w2', 'f1', 'e2'));
    store.add(err('w1', 'f2', 'e3'));
    assert.deepEqual(store.files().sort(), ['e1', 'e2', 'e3']);
    assert.deepEqual(
      store.take('w1', 'f1').map((x) => x.files[0].filePath),
      ['e1'],
    );
    assert.deepEqual(store.take('w1', 'f1'), []);
    assert.deepEqual(store.take('w3', 'f1'), []);
    assert.deepEqual(store.files().sort(), ['e2', 'e3']);
    assert.equal(store.forget('w1'), 1);
    assert.equal(store.forget('w1'), 0);
    assert.deepEqual(store.files(), ['e2']);
  });
});

describe("a report's role for its job", () => {
  const job = (errorTable?: { database: string; table: string }): Job =>
    ({
      name: 'j',
      table: { database: 'd', table: 'main' },
      mapping: errorTable
        ? { errorPolicy: { kind: ErrorPolicyKind.ERROR_POLICY_KIND_ERROR_TABLE, maxErrors: 0, errorTopic: '', errorTable } }
        : undefined,
    }) as Job;
  const cases: { name: string; job: Job; table: string; role: string | undefined }[] = [
    { name: 'its own table carries data', job: job(), table: 'main', role: 'data' },
    {
      name: "its error table carries error rows, for the own table's pipeline",
      job: job({ database: 'd', table: 'errs' }),
      table: 'errs',
      role: 'errors:main',
    },
    { name: "another table is not the job's", job: job({ database: 'd', table: 'errs' }), table: 'other', role: undefined },
    {
      name: 'an error table named under another policy does not count',
      job: {
        ...job(),
        mapping: {
          errorPolicy: {
            kind: ErrorPolicyKind.ERROR_POLICY_KIND_SKIP,
            maxErrors: 0,
            errorTopic: '',
            errorTable: { database: 'd', table: 'errs' },
          },
        },
      } as Job,
      table: 'errs',
      role: undefined,
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const role = roleOf(targetsOf(c.job), { database: 'd', table: c.table });
      assert.equal(role && (role.kind === 'data' ? 'data' : `errors:${role.jobTable.table}`), c.role);
    });
  }
});
