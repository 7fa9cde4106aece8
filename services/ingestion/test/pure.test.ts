import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { OffsetResetPolicy, StartFrom } from '#shared/gen/sluice/v1/catalog.js';
import { batchEndOffset, leadingGap, planBatch } from '../src/coverage.js';
import { InFlight } from '../src/in-flight.js';
import { checkStartOffsets, chooseStart, endOffsetFor, groupIdFor, onExpired, PositionError, type StartInputs } from '../src/positions.js';

describe('planBatch: covers and window filtering', () => {
  const msgs = (...pairs: [number, number][]) => pairs.map(([o, t]) => ({ offset: String(o), timestamp: String(t) }));
  const W = { startTimeMs: 100, endTimeMs: 200 };
  const cases: {
    name: string;
    position: number;
    end: number | null;
    window: typeof W | null;
    messages: { offset: string; timestamp: string }[];
    batchEnd: number;
    sent: number[];
    cover: [number, number];
    excluded: number;
    reachedEnd: boolean;
  }[] = [
    {
      name: 'continuous, all sent',
      position: 0,
      end: null,
      window: null,
      messages: msgs([0, 1], [1, 2], [2, 3]),
      batchEnd: 3,
      sent: [0, 1, 2],
      cover: [0, 3],
      excluded: 0,
      reachedEnd: false,
    },
    {
      name: 'out-of-order timestamps: outside the window excluded, still covered',
      position: 10,
      end: null,
      window: W,
      messages: msgs([10, 150], [11, 99], [12, 200], [13, 100], [14, 199], [15, 5000]),
      batchEnd: 16,
      sent: [10, 13, 14],
      cover: [10, 16],
      excluded: 3,
      reachedEnd: false,
    },
    {
      name: 'records below the position are skipped (fetched before a seek)',
      position: 5,
      end: null,
      window: null,
      messages: msgs([3, 1], [4, 1], [5, 1], [6, 1]),
      batchEnd: 7,
      sent: [5, 6],
      cover: [5, 7],
      excluded: 0,
      reachedEnd: false,
    },
    {
      name: 'trailing transaction marker is covered',
      position: 0,
      end: null,
      window: null,
      messages: msgs([0, 1], [1, 1]),
      batchEnd: 3,
      sent: [0, 1],
      cover: [0, 3],
      excluded: 0,
      reachedEnd: false,
    },
    {
      name: 'compaction gap inside the batch is covered',
      position: 0,
      end: null,
      window: null,
      messages: msgs([0, 1], [4, 1], [9, 1]),
      batchEnd: 10,
      sent: [0, 4, 9],
      cover: [0, 10],
      excluded: 0,
      reachedEnd: false,
    },
    {
      name: 'truncated at the end offset',
      position: 0,
      end: 3,
      window: W,
      messages: msgs([0, 150], [1, 150], [2, 300], [3, 150], [4, 150]),
      batchEnd: 5,
      sent: [0, 1],
      cover: [0, 3],
      excluded: 1,
      reachedEnd: true,
    },
    {
      name: 'exactly at the end offset',
      position: 0,
      end: 2,
      window: null,
      messages: msgs([0, 1], [1, 1]),
      batchEnd: 2,
      sent: [0, 1],
      cover: [0, 2],
      excluded: 0,
      reachedEnd: true,
    },
    {
      name: 'position already at the end: empty cover',
      position: 4,
      end: 4,
      window: null,
      messages: msgs([4, 1]),
      batchEnd: 5,
      sent: [],
      cover: [4, 4],
      excluded: 0,
      reachedEnd: true,
    },
    {
      name: 'a batch wholly below the position adds nothing',
      position: 9,
      end: null,
      window: null,
      messages: msgs([3, 1], [4, 1]),
      batchEnd: 5,
      sent: [],
      cover: [9, 9],
      excluded: 0,
      reachedEnd: false,
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const plan = planBatch(c.position, c.end, c.window, c.messages, c.batchEnd);
      assert.deepEqual(
        plan.send.map((m) => Number(m.offset)),
        c.sent,
      );
      assert.deepEqual([plan.coverStart, plan.coverEnd], c.cover);
      assert.equal(plan.excluded, c.excluded);
      assert.equal(plan.reachedEnd, c.reachedEnd);
    });
  }

  it('leading gaps and batch ends', () => {
    assert.deepEqual(leadingGap(5, '9'), { start: 5, end: 9 });
    assert.equal(leadingGap(5, '5'), null);
    assert.equal(leadingGap(5, '3'), null);
    assert.equal(leadingGap(5, null), null);
    assert.equal(batchEndOffset('41'), 42);
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
    it(name, () => assert.deepEqual(chooseStart({ ...base, ...over }), { offset, origin }));
  }

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

  it('end offsets: the first offset at or after the end time, else the high watermark', () => {
    assert.equal(endOffsetFor(17, { low: 0, high: 50 }), 17);
    assert.equal(endOffsetFor(-1, { low: 0, high: 50 }), 50);
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
