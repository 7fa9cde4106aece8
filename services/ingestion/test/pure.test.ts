import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { OffsetResetPolicy, StartFrom } from '#shared/gen/sluice/v1/catalog.js';
import { findStart, leadingGap, planBatch } from '../src/coverage.js';
import { InFlight } from '../src/in-flight.js';
import { streamEndIsFatal } from '../src/transform-stream.js';
import { status as grpcStatus } from '@grpc/grpc-js';
import {
  checkStartOffsets,
  chooseStart,
  groupIdFor,
  onExpired,
  PositionError,
  type StartInputs,
  startFromRecord,
  startToRecord,
} from '../src/positions.js';

/** Records' offsets and timestamps as the fetch path's holder has them (kafka/fetched-records.ts). */
const stamped = (messages: readonly { offset: number; timestamp: number }[]) => ({
  count: messages.length,
  offsets: messages.map((m) => m.offset),
  timestamps: messages.map((m) => m.timestamp),
  picked: new Int32Array(messages.length),
});

describe('planBatch: covers, window filtering and partition ends', () => {
  const msgs = (...pairs: [number, number][]) => pairs.map(([offset, timestamp]) => ({ offset, timestamp }));
  const W = { startTimeMs: 100, endTimeMs: 200 };
  /** Continuous: no end, no close time, no window. */
  const OPEN = { endOffset: null, closeAtMs: null, window: null };
  /** END_POSITION over W, closing at the window's end (no allowed lateness). */
  const CLOSE_AT_END = { endOffset: null, closeAtMs: 200, window: W };
  const cases: {
    name: string;
    position: number;
    limits: { endOffset: number | null; closeAtMs: number | null; window: typeof W | null };
    messages: { offset: number; timestamp: number }[];
    batchEnd: number;
    sent: number[];
    cover: [number, number];
    excluded: number;
    end: number | null;
  }[] = [
    {
      name: 'continuous, all sent',
      position: 0,
      limits: OPEN,
      messages: msgs([0, 1], [1, 2], [2, 3]),
      batchEnd: 3,
      sent: [0, 1, 2],
      cover: [0, 3],
      excluded: 0,
      end: null,
    },
    {
      name: 'IDLE (no close time): out-of-order timestamps outside the window excluded, still covered',
      position: 10,
      limits: { endOffset: null, closeAtMs: null, window: W },
      messages: msgs([10, 150], [11, 99], [12, 200], [13, 100], [14, 199], [15, 5000]),
      batchEnd: 16,
      sent: [10, 13, 14],
      cover: [10, 16],
      excluded: 3,
      end: null,
    },
    {
      name: 'records below the position are skipped (a fetch inside a batch gets the whole batch)',
      position: 5,
      limits: OPEN,
      messages: msgs([3, 1], [4, 1], [5, 1], [6, 1]),
      batchEnd: 7,
      sent: [5, 6],
      cover: [5, 7],
      excluded: 0,
      end: null,
    },
    {
      name: 'trailing transaction marker is covered',
      position: 0,
      limits: OPEN,
      messages: msgs([0, 1], [1, 1]),
      batchEnd: 3,
      sent: [0, 1],
      cover: [0, 3],
      excluded: 0,
      end: null,
    },
    {
      name: 'compaction gap inside the batch is covered',
      position: 0,
      limits: OPEN,
      messages: msgs([0, 1], [4, 1], [9, 1]),
      batchEnd: 10,
      sent: [0, 4, 9],
      cover: [0, 10],
      excluded: 0,
      end: null,
    },
    {
      name: 'END_POSITION: the first record stamped at the window end ends the partition there',
      position: 0,
      limits: CLOSE_AT_END,
      messages: msgs([0, 150], [1, 50], [2, 200], [3, 150], [4, 150]),
      batchEnd: 5,
      sent: [0],
      cover: [0, 2],
      excluded: 1,
      end: 2,
    },
    {
      name: 'END_POSITION: no record at or after the close time, the partition goes on (markers after the last record covered)',
      position: 0,
      limits: CLOSE_AT_END,
      messages: msgs([0, 150], [1, 50], [2, 199]),
      batchEnd: 4,
      sent: [0, 2],
      cover: [0, 4],
      excluded: 1,
      end: null,
    },
    {
      name: 'END_POSITION with allowed lateness: records after the end but before the close time are excluded, later in-window ones kept',
      position: 0,
      limits: { endOffset: null, closeAtMs: 250, window: W },
      messages: msgs([0, 150], [1, 210], [2, 120], [3, 249], [4, 199], [5, 250], [6, 150]),
      batchEnd: 7,
      sent: [0, 2, 4],
      cover: [0, 5],
      excluded: 2,
      end: 5,
    },
    {
      name: 'END_POSITION: a record past the close time at the position ends the partition with an empty cover',
      position: 4,
      limits: CLOSE_AT_END,
      messages: msgs([4, 900], [5, 150]),
      batchEnd: 6,
      sent: [],
      cover: [4, 4],
      excluded: 0,
      end: 4,
    },
    {
      name: 'END_POSITION: a known end (re-read after a resync) stops the cover there',
      position: 0,
      limits: { endOffset: 3, closeAtMs: 200, window: W },
      messages: msgs([0, 150], [1, 150], [2, 150], [3, 150], [4, 150]),
      batchEnd: 5,
      sent: [0, 1, 2],
      cover: [0, 3],
      excluded: 0,
      end: 3,
    },
    {
      name: 'position already at a known end: empty cover',
      position: 4,
      limits: { endOffset: 4, closeAtMs: 200, window: W },
      messages: msgs([4, 1]),
      batchEnd: 5,
      sent: [],
      cover: [4, 4],
      excluded: 0,
      end: 4,
    },
    {
      name: 'a batch wholly below the position adds nothing',
      position: 9,
      limits: OPEN,
      messages: msgs([3, 1], [4, 1]),
      batchEnd: 5,
      sent: [],
      cover: [9, 9],
      excluded: 0,
      end: null,
    },
    {
      name: 'a record past the close time below the position (already covered) ends nothing',
      position: 2,
      limits: CLOSE_AT_END,
      messages: msgs([1, 500], [2, 150]),
      batchEnd: 3,
      sent: [2],
      cover: [2, 3],
      excluded: 0,
      end: null,
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const plan = planBatch(c.position, c.limits, stamped(c.messages), c.batchEnd);
      assert.deepEqual(
        [...plan.send].map((i) => c.messages[i].offset),
        c.sent,
      );
      assert.deepEqual([plan.coverStart, plan.coverEnd], c.cover);
      assert.equal(plan.excluded, c.excluded);
      assert.equal(plan.end, c.end);
    });
  }

  it('leading gaps', () => {
    assert.deepEqual(leadingGap(5, 9), { start: 5, end: 9 });
    assert.equal(leadingGap(5, 5), null);
    assert.equal(leadingGap(5, 3), null);
    assert.equal(leadingGap(5, null), null);
  });
});

describe('start and end positions', () => {
  const base: StartInputs = {
    topic: 't',
    partition: 0,
    committed: undefined,
    start: undefined,
    windowStartMs: undefined,
    watermarks: { low: 10, high: 50 },
    timestampOffset: undefined,
  };
  const cases: [string, Partial<StartInputs>, number, string][] = [
    [
      'catalog offset wins over everything',
      { committed: 33, start: { from: StartFrom.START_FROM_LATEST, timestampMs: 0, offsets: [] } },
      33,
      'catalog',
    ],
    ['unspecified is earliest', {}, 10, 'earliest'],
    ['earliest', { start: { from: StartFrom.START_FROM_EARLIEST, timestampMs: 0, offsets: [] } }, 10, 'earliest'],
    ['latest', { start: { from: StartFrom.START_FROM_LATEST, timestampMs: 0, offsets: [] } }, 50, 'latest'],
    ['timestamp', { start: { from: StartFrom.START_FROM_TIMESTAMP, timestampMs: 5, offsets: [] }, timestampOffset: 27 }, 27, 'timestamp'],
    [
      'timestamp after every record starts at the high watermark',
      { start: { from: StartFrom.START_FROM_TIMESTAMP, timestampMs: 5, offsets: [] }, timestampOffset: -1 },
      50,
      'timestamp',
    ],
    ['a bounded window without a start starts at its start time', { windowStartMs: 1000, timestampOffset: 20 }, 20, 'timestamp'],
    [
      'explicit offset',
      { start: { from: StartFrom.START_FROM_OFFSETS, timestampMs: 0, offsets: [{ partition: 0, offset: 42 }] } },
      42,
      'offsets',
    ],
    [
      'explicit offsets not naming a partition added after the first commit: earliest',
      { start: { from: StartFrom.START_FROM_OFFSETS, timestampMs: 0, offsets: [{ partition: 1, offset: 42 }] } },
      10,
      'earliest',
    ],
  ];
  for (const [name, over, offset, origin] of cases) {
    it(name, () => {
      const d = chooseStart({ ...base, ...over });
      assert.deepEqual({ offset: d.offset, origin: d.origin }, { offset, origin });
    });
  }

  it('a start found by timestamp is confirmed by reading up to the high watermark of the lookup; other starts are final', () => {
    const at = (timestampMs: number, timestampOffset: number) =>
      chooseStart({ ...base, start: { from: StartFrom.START_FROM_TIMESTAMP, timestampMs, offsets: [] }, timestampOffset }).search;
    assert.deepEqual(at(5, 27), { atMs: 5, untilOffset: 50 });
    assert.equal(at(5, -1), null, 'nothing at or after the time: the high watermark, nothing to confirm');
    assert.deepEqual(chooseStart({ ...base, windowStartMs: 1000, timestampOffset: 20 }).search, { atMs: 1000, untilOffset: 50 });
    assert.equal(chooseStart({ ...base, committed: 33, windowStartMs: 1000, timestampOffset: 20 }).search, null);
    assert.equal(chooseStart(base).search, null);
  });

  it('the catalog records the start decision, and every run uses the recorded one (its offset and how far to confirm it)', () => {
    const timed = { start: { from: StartFrom.START_FROM_TIMESTAMP, timestampMs: 5, offsets: [] } };
    const latest = { start: { from: StartFrom.START_FROM_LATEST, timestampMs: 0, offsets: [] } };
    const cases: [string, Partial<StartInputs>, { offset: number; searchUntilOffset?: number }][] = [
      ['latest: the high watermark, nothing to confirm', latest, { offset: 50, searchUntilOffset: undefined }],
      [
        'timestamp: the lookup, confirmed up to the high watermark',
        { ...timed, timestampOffset: 27 },
        { offset: 27, searchUntilOffset: 50 },
      ],
      ['timestamp after every record: the high watermark', { ...timed, timestampOffset: -1 }, { offset: 50, searchUntilOffset: undefined }],
    ];
    for (const [name, over, want] of cases) {
      const recorded = startToRecord('t', 0, chooseStart({ ...base, ...over }));
      assert.deepEqual(recorded, { topic: 't', partition: 0, ...want }, name);
      // Read back by a later run (or another process), whatever it resolved itself.
      const used = startFromRecord(recorded, { start: over.start, windowStartMs: undefined });
      assert.deepEqual(
        used,
        { offset: want.offset, search: want.searchUntilOffset === undefined ? null : { atMs: 5, untilOffset: want.searchUntilOffset } },
        name,
      );
    }
    // A restart of a job started at latest resolves a new latest (90) but uses the recorded one.
    const recorded = startToRecord('t', 0, chooseStart({ ...base, ...latest }));
    const again = chooseStart({ ...base, ...latest, watermarks: { low: 10, high: 90 } });
    assert.equal(again.offset, 90);
    assert.equal(startFromRecord(recorded, { start: latest.start, windowStartMs: undefined }).offset, 50);
    // A window's start time confirms a recorded start when the job names none.
    assert.deepEqual(
      startFromRecord({ topic: 't', partition: 0, offset: 20, searchUntilOffset: 50 }, { start: undefined, windowStartMs: 1000 }),
      {
        offset: 20,
        search: { atMs: 1000, untilOffset: 50 },
      },
    );
  });

  describe('findStart: the first record stamped at or after the time, whatever a marker made the lookup answer', () => {
    const msgs = (...pairs: [number, number][]) => pairs.map(([offset, timestamp]) => ({ offset, timestamp }));
    const search = { atMs: 100, untilOffset: 10 };
    const cases: [string, number, { offset: number; timestamp: number }[], number, { start: number; found: boolean }][] = [
      ['the first record is at or after the time: it is the start', 2, msgs([2, 100], [3, 50]), 4, { start: 2, found: true }],
      [
        'records stamped earlier after a marker (the lookup answered the marker at 2) are skipped',
        2,
        msgs([3, 40], [5, 120], [6, 50]),
        7,
        { start: 5, found: true },
      ],
      ['none in this batch: the start moves past it, still searching', 2, msgs([3, 40], [4, 99]), 6, { start: 6, found: false }],
      [
        'none before the lookup high watermark: the start is there',
        2,
        msgs([3, 40], [9, 99], [10, 40], [11, 500]),
        12,
        { start: 10, found: true },
      ],
      [
        'records below the position (a fetch inside a batch gets them too) are ignored',
        5,
        msgs([3, 500], [5, 150]),
        6,
        { start: 5, found: true },
      ],
      ['a batch of markers only reaching the limit confirms it', 8, [], 10, { start: 10, found: true }],
    ];
    for (const [name, position, messages, batchEnd, want] of cases)
      it(name, () => assert.deepEqual(findStart(position, search, stamped(messages), batchEnd), want));
  });

  const offsets = (...named: [number, number][]) => ({
    from: StartFrom.START_FROM_OFFSETS,
    timestampMs: 0,
    offsets: named.map(([partition, offset]) => ({ partition, offset })),
  });
  const startOffsetCases: [string, ReturnType<typeof offsets>, number[], boolean, string | null][] = [
    ['every partition named', offsets([0, 5], [1, 0]), [0, 1], false, null],
    [
      'a partition left out',
      offsets([0, 5]),
      [0, 1, 2],
      false,
      'source.startFrom.offsets names no offset for partition 1, 2 (topic t has partitions 0, 1, 2); give an offset for every partition',
    ],
    [
      'a partition the topic lacks',
      offsets([0, 5], [1, 0], [7, 1]),
      [0, 1],
      false,
      'source.startFrom.offsets names partition 7, but topic t has partitions 0, 1',
    ],
    ['after the first commit, later partitions start earliest', offsets([0, 5]), [0, 1], true, null],
  ];
  for (const [name, start, partitions, committedAny, error] of startOffsetCases) {
    it(`start offsets: ${name}`, () => {
      const check = () => checkStartOffsets('t', start, partitions, committedAny);
      if (error === null) check();
      else assert.throws(check, (err: unknown) => err instanceof PositionError && err.message === error);
    });
  }

  it('refuses an explicit offset beyond the partition', () => {
    assert.throws(
      () =>
        chooseStart({ ...base, start: { from: StartFrom.START_FROM_OFFSETS, timestampMs: 0, offsets: [{ partition: 0, offset: 51 }] } }),
      (err: unknown) => err instanceof PositionError && /start offset 51 of t\/0 is outside the partition \(10\.\.50\)/.test(err.message),
    );
  });

  it('expired offsets fail by default and name the fix', () => {
    for (const policy of [OffsetResetPolicy.OFFSET_RESET_POLICY_UNSPECIFIED, OffsetResetPolicy.OFFSET_RESET_POLICY_FAIL]) {
      const d = onExpired('t', 2, 5, 20, policy);
      assert.equal(d.action, 'fail');
      assert.match(d.reason, /OFFSET_OUT_OF_RANGE: offsets 5\.\.19 of t\/2 expired .*cannot come back.*offset_reset to EARLIEST/);
    }
  });

  it('expired offsets with offset_reset=EARLIEST continue and count what was lost', () => {
    const d = onExpired('t', 2, 5, 20, OffsetResetPolicy.OFFSET_RESET_POLICY_EARLIEST);
    assert.deepEqual(d.action === 'skip' && d.lost, 15);
  });

  it('group id', () => assert.equal(groupIdFor('orders_hourly'), 'sluice-orders_hourly'));
});

describe('in-flight budget', () => {
  it('pauses at the budget and resumes at half of it', () => {
    const f = new InFlight(100);
    f.add(1, 40);
    f.add(2, 40);
    assert.equal(f.overBudget, false);
    f.add(3, 30);
    assert.equal(f.overBudget, true);
    assert.equal(f.ack(1), true);
    assert.equal(f.overBudget, false);
    assert.equal(f.drained, false);
    f.ack(2);
    assert.equal(f.drained, true);
    assert.equal(f.ack(2), false, 'an unknown or repeated ack releases nothing');
    assert.equal(f.bytes, 30);
    f.clear();
    assert.equal(f.count, 0);
    assert.throws(() => new InFlight(0), /must be > 0/);
  });
});

describe('streamEndIsFatal: which ends of a Transform stream fail the job instead of a re-read', () => {
  const cases: [string, number | undefined, boolean][] = [
    [
      'a record the fail policy (or a spent skipUpTo) refused, an error table that cannot hold records',
      grpcStatus.FAILED_PRECONDITION,
      true,
    ],
    ['transformation restarting or unreachable', grpcStatus.UNAVAILABLE, false],
    ['a flush report that missed its deadline (work dropped)', grpcStatus.ABORTED, false],
    ['a cover that does not continue the last one (an upstream slip; a resync realigns)', grpcStatus.INVALID_ARGUMENT, false],
    ['cancelled', grpcStatus.CANCELLED, false],
    ['an end with no status', undefined, false],
  ];
  for (const [name, code, fatal] of cases) it(name, () => assert.equal(streamEndIsFatal(code), fatal));
});
