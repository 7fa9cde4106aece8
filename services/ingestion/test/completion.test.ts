import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CompletionPolicy } from '#shared/gen/sluice/v1/catalog.js';
import {
  boundedComplete,
  type CompletionMode,
  completionMode,
  coveredUpTo,
  endWithoutRecord,
  handsOver,
  idleOver,
  type JobBounds,
  type MemberQuiet,
  type OpenPartition,
  jobBounds,
  ownedDone,
  type PartitionProgress,
  readToEnd,
} from '../src/completion.js';

/** A partition cursor: position, start, end offset (null: none), committed (undefined: none yet). */
const at = (position: number, initialStart: number, endOffset: number | null, committed?: number): PartitionProgress => ({
  position,
  initialStart,
  endOffset,
  committed,
});

describe('completion mode', () => {
  const cases: [string, boolean, number | null, CompletionMode][] = [
    ['no window: continuous', false, null, 'unbounded'],
    ['a window without idle timeout: END_POSITION', true, null, 'end-offsets'],
    ['a window with an idle timeout: IDLE', true, 5_000, 'idle'],
  ];
  for (const [name, hasWindow, idle, mode] of cases) it(name, () => assert.equal(completionMode(hasWindow, idle), mode));
});

describe('readToEnd', () => {
  const cases: [string, PartitionProgress, boolean][] = [
    ['no end offset: never', at(100, 0, null), false],
    ['below the end', at(4, 0, 5), false],
    ['at the end', at(5, 0, 5), true],
    ['past the end (a batch truncated there)', at(6, 0, 5), true],
    ['empty from the start', at(0, 0, 0), true],
  ];
  for (const [name, p, want] of cases) it(name, () => assert.equal(readToEnd(p), want));
});

describe('ownedDone', () => {
  const cases: [string, CompletionMode, PartitionProgress[], boolean][] = [
    ['END_POSITION, every owned partition at its end', 'end-offsets', [at(5, 0, 5), at(9, 2, 9)], true],
    ['END_POSITION, one partition short', 'end-offsets', [at(5, 0, 5), at(8, 2, 9)], false],
    ['END_POSITION, owning nothing', 'end-offsets', [], true],
    ['IDLE jobs never finish by end offsets', 'idle', [at(5, 0, 5)], false],
    ['continuous jobs never finish', 'unbounded', [at(5, 0, 5)], false],
  ];
  for (const [name, mode, owned, want] of cases) it(name, () => assert.equal(ownedDone(mode, owned), want));
});

describe('idleOver: IDLE jobs finish once a reading member is quiet', () => {
  const quiet = (owned: number, inFlight: number, lastRecordAtMs: number): MemberQuiet => ({ owned, inFlight, lastRecordAtMs });
  // now = 10_000, idle timeout 2_000
  const cases: [string, MemberQuiet, boolean][] = [
    ['no record for the timeout, everything acknowledged', quiet(2, 0, 8_000), true],
    ['a record within the timeout', quiet(2, 0, 8_001), false],
    ['batches still unacknowledged', quiet(2, 1, 0), false],
    // Before: a standby of a second process recorded the job FINISHED after the timeout while
    // the member reading the partitions was still reading.
    ['a standby (no partitions) never, however long it waited', quiet(0, 0, 0), false],
  ];
  for (const [name, m, want] of cases) it(name, () => assert.equal(idleOver(m, 10_000, 2_000), want));
});

describe('boundedComplete', () => {
  const cases: [string, CompletionMode, PartitionProgress[], boolean][] = [
    ['every partition committed to its end', 'end-offsets', [at(5, 0, 5, 5), at(9, 2, 9, 9)], true],
    ['one partition read but not committed', 'end-offsets', [at(5, 0, 5, 5), at(9, 2, 9, 7)], false],
    ['one partition never committed', 'end-offsets', [at(5, 0, 5, 5), at(9, 2, 9)], false],
    ['a partition empty from the start needs no commit', 'end-offsets', [at(5, 0, 5, 5), at(7, 7, 7)], true],
    ['a start past the end needs no commit', 'end-offsets', [at(9, 9, 7)], true],
    ['no partitions known yet', 'end-offsets', [], false],
    ['a partition without an end offset', 'end-offsets', [at(5, 0, null, 5)], false],
    ['IDLE jobs: never by end offsets', 'idle', [at(5, 0, 5, 5)], false],
    ['continuous jobs: never', 'unbounded', [at(5, 0, 5, 5)], false],
  ];
  for (const [name, mode, all, want] of cases) it(name, () => assert.equal(boundedComplete(mode, all), want));
});

describe('handsOver: END_POSITION across several processes of the group', () => {
  const mine = [at(5, 0, 5, 5)];
  const theirsOpen = at(3, 0, null); // read by another process: its end is unknown here
  const cases: [string, CompletionMode, boolean, PartitionProgress[], PartitionProgress[], boolean][] = [
    [
      'not the leader, own partitions committed to their ends, others unknown: hands over',
      'end-offsets',
      false,
      mine,
      [...mine, theirsOpen],
      true,
    ],
    ['the leader never hands over (it finishes once it knows every end)', 'end-offsets', true, mine, [...mine, theirsOpen], false],
    ['own partition ended but not committed yet: waits', 'end-offsets', false, [at(5, 0, 5, 3)], [at(5, 0, 5, 3), theirsOpen], false],
    ['own partition still open: keeps reading', 'end-offsets', false, [at(3, 0, null)], [at(3, 0, null), theirsOpen], false],
    ['owning nothing (more processes than partitions): hands over', 'end-offsets', false, [], [theirsOpen], true],
    ['every end known and committed: finishes instead', 'end-offsets', false, mine, [...mine, at(9, 2, 9, 9)], false],
    ['IDLE jobs never hand over', 'idle', false, mine, [...mine, theirsOpen], false],
    ['continuous jobs never hand over', 'unbounded', false, mine, [...mine, theirsOpen], false],
  ];
  for (const [name, mode, leader, owned, all, want] of cases) it(name, () => assert.equal(handsOver(mode, leader, owned, all), want));
});

describe('endWithoutRecord: END_POSITION partitions with no record past the close time', () => {
  const CLOSE = 1_000_000;
  /** Position, high watermark, and when the watermark was asked for. */
  const open = (position: number, highWatermark: number, highWatermarkAtMs: number): OpenPartition => ({
    position,
    highWatermark,
    highWatermarkAtMs,
  });
  const cases: [string, OpenPartition, number | null][] = [
    ['close time ahead: a partition read to its watermark stays open (records may still come)', open(7, 7, CLOSE - 1), null],
    ['close time ahead: an empty partition stays open', open(0, 0, CLOSE - 60_000), null],
    ['close time passed, read to a watermark asked for after it: ends there', open(7, 7, CLOSE), 7],
    ['close time passed, an empty partition: ends where it starts', open(0, 0, CLOSE + 5), 0],
    ['close time passed, nothing in the window (started at the watermark): ends there', open(42, 42, CLOSE + 5), 42],
    ['close time passed, records left to read: stays open until they are read', open(5, 7, CLOSE + 5), null],
    ['a watermark asked for before the close time decides nothing, however far reading got', open(9, 7, CLOSE - 1), null],
    ['never asked (time 0): stays open', open(0, 0, 0), null],
  ];
  for (const [name, p, want] of cases) it(name, () => assert.equal(endWithoutRecord(p, CLOSE), want));
});

describe('coveredUpTo', () => {
  const parts = new Map<number, PartitionProgress>([
    [0, at(10, 0, null, 10)],
    [1, at(20, 5, null, 15)],
    [2, at(3, 3, null)],
  ]);
  const progress = (p: number) => parts.get(p)!;
  const cases: [string, [number, number][], boolean][] = [
    ['no targets', [], true],
    ['committed exactly to the target', [[0, 10]], true],
    ['committed past the target', [[0, 8]], true],
    ['committed short of the target', [[1, 20]], false],
    ['nothing read since the start needs no commit', [[2, 3]], true],
    ['read past the start but never committed', [[2, 4]], false],
    [
      'one partition short fails the whole set',
      [
        [0, 10],
        [1, 16],
      ],
      false,
    ],
    [
      'every partition covered',
      [
        [0, 10],
        [1, 15],
        [2, 3],
      ],
      true,
    ],
  ];
  for (const [name, targets, want] of cases) it(name, () => assert.equal(coveredUpTo(new Map(targets), progress), want));
});

describe('jobBounds', () => {
  const IDLE = CompletionPolicy.COMPLETION_POLICY_IDLE;
  const END = CompletionPolicy.COMPLETION_POLICY_END_POSITION;
  const win = (endTimeMs: number, completion: CompletionPolicy, idleTimeoutMs = 0, allowedLatenessMs = 0) => ({
    startTimeMs: 100,
    endTimeMs,
    timeZone: 'UTC',
    completion,
    idleTimeoutMs,
    allowedLatenessMs,
    endOffsets: [],
  });
  const W = { startTimeMs: 100, endTimeMs: 200 };
  const cases: [string, ReturnType<typeof win> | undefined, JobBounds][] = [
    ['no window: continuous', undefined, { window: null, idleTimeoutMs: null, completion: 'unbounded', closeAtMs: null }],
    [
      'a window without an end is no window',
      win(0, IDLE, 5),
      { window: null, idleTimeoutMs: null, completion: 'unbounded', closeAtMs: null },
    ],
    ['END_POSITION closes at the window end', win(200, END), { window: W, idleTimeoutMs: null, completion: 'end-offsets', closeAtMs: 200 }],
    [
      'END_POSITION with an allowed lateness closes that much later',
      win(200, END, 0, 50),
      { window: W, idleTimeoutMs: null, completion: 'end-offsets', closeAtMs: 250 },
    ],
    ['IDLE with its timeout', win(200, IDLE, 5_000), { window: W, idleTimeoutMs: 5_000, completion: 'idle', closeAtMs: null }],
    ['IDLE without a timeout waits a minute', win(200, IDLE), { window: W, idleTimeoutMs: 60_000, completion: 'idle', closeAtMs: null }],
  ];
  for (const [name, w, want] of cases) it(name, () => assert.deepEqual(jobBounds(w), want));
});
