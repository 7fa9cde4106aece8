import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { JobState } from '#shared/gen/sluice/v1/catalog.js';
import type { JobStatus } from '#shared/gen/sluice/v1/ingestion.js';
import { assignMembers, memberInFlightBytes, mergeMemberStatuses } from '../src/members.js';

describe('assignMembers: N active members, spread over the processes, the rest standing by', () => {
  // Member ids as kafkajs makes them: <client>-<uuid>; index = which member of its process.
  const m = (process: string, index: number) => ({ memberId: `${process}-${index}`, index });
  const six = [0, 1, 2, 3, 4, 5];
  const cases: [string, ReturnType<typeof m>[], number[], number, Record<string, number[]>][] = [
    [
      'one process, parallelism 3 on 6 partitions: two each',
      [m('a', 0), m('a', 1), m('a', 2)],
      six,
      3,
      { 'a-0': [0, 3], 'a-1': [1, 4], 'a-2': [2, 5] },
    ],
    [
      'two processes, parallelism 3: index 0 of each first, then one index 1; the rest stand by',
      [m('a', 0), m('a', 1), m('a', 2), m('b', 0), m('b', 1), m('b', 2)],
      six,
      3,
      { 'a-0': [0, 3], 'b-0': [1, 4], 'a-1': [2, 5], 'b-1': [], 'a-2': [], 'b-2': [] },
    ],
    [
      'parallelism 1 over two processes: one stream, the other process stands by',
      [m('a', 0), m('b', 0)],
      [0, 1],
      1,
      { 'a-0': [0, 1], 'b-0': [] },
    ],
    [
      'fewer members than the parallelism (a process died): the survivors take everything',
      [m('b', 0), m('b', 1)],
      six,
      3,
      { 'b-0': [0, 2, 4], 'b-1': [1, 3, 5] },
    ],
    [
      'more members than partitions: one partition each, the rest idle',
      [m('a', 0), m('a', 1), m('a', 2)],
      [7, 3],
      3,
      { 'a-0': [3], 'a-1': [7], 'a-2': [] },
    ],
    ['no partitions', [m('a', 0)], [], 2, { 'a-0': [] }],
  ];
  for (const [name, members, partitions, parallelism, want] of cases)
    it(name, () => assert.deepEqual(Object.fromEntries(assignMembers(members, partitions, parallelism)), want));
});

describe("memberInFlightBytes: the job's in-flight budget in a process, shared by its members", () => {
  // Before: each of N members took the whole INGESTION_IN_FLIGHT_BYTES, N times the stated bound.
  const cases: [string, number, number, number][] = [
    ['one member: all of it', 32 << 20, 1, 32 << 20],
    ['three members: a third each, rounded down', 100, 3, 33],
    ['never zero', 2, 3, 1],
  ];
  for (const [name, bytes, members, want] of cases) it(name, () => assert.equal(memberInFlightBytes(bytes, members), want));
});

describe('mergeMemberStatuses: one job status from its members in this process', () => {
  /** A member's row of a partition; `workerId` is its stream ('' for a standby). */
  const part = (workerId: string) => (partition: number) => ({
    topic: 't',
    partition,
    position: 1,
    highWatermark: 2,
    committedOffset: 1,
    lag: 1,
    endOffset: undefined,
    workerId,
  });
  const status = (state: JobState, reason: string, partitions: number[], over: Partial<JobStatus> = {}, workerId = 'w'): JobStatus => ({
    job: 'j',
    state,
    reason,
    partitions: partitions.map(part(workerId)),
    recordsIn: 10,
    bytesIn: 100,
    rowsOut: 8,
    recordsExcluded: 1,
    errors: [{ reason: 'invalid_json', count: 1 }],
    unmappedFields: [],
    lastCommit: undefined,
    startedAtMs: 100,
    ...over,
  });
  const R = JobState.JOB_STATE_RUNNING;

  it('sums counts, joins the owners partitions, takes the latest commit and the earliest start', () => {
    const merged = mergeMemberStatuses([
      { status: status(R, '', [3, 1], { lastCommit: { snapshotId: 1, committedAtMs: 5, rows: 2 } }, 'w1'), owns: true },
      { status: status(R, '', [0, 2], { startedAtMs: 90, lastCommit: { snapshotId: 2, committedAtMs: 7, rows: 3 } }, 'w2'), owns: true },
      { status: status(R, 'standing by', [0, 1, 2, 3], { errors: [] }, ''), owns: false },
    ]);
    assert.deepEqual(
      merged.partitions.map((p) => [p.partition, p.workerId]),
      [
        [0, 'w2'],
        [1, 'w1'],
        [2, 'w2'],
        [3, 'w1'],
      ],
      'a standby lists every partition, without a stream; only the owners count, each partition with the stream reading it',
    );
    assert.deepEqual([merged.recordsIn, merged.bytesIn, merged.rowsOut, merged.recordsExcluded], [30, 300, 24, 3]);
    assert.deepEqual(merged.errors, [{ reason: 'invalid_json', count: 2 }]);
    assert.deepEqual([merged.lastCommit?.snapshotId, merged.startedAtMs], [2, 90]);
  });

  const speakers: [string, [JobState, string, boolean][], [JobState, string]][] = [
    [
      'a failed member speaks for the job',
      [
        [R, '', true],
        [JobState.JOB_STATE_FAILED, 'dirty record refused', true],
      ],
      [JobState.JOB_STATE_FAILED, 'dirty record refused'],
    ],
    [
      'the group leader finished the job; a standby handed over',
      [
        [R, 'handed over', false],
        [JobState.JOB_STATE_FINISHED, 'finished', true],
      ],
      [JobState.JOB_STATE_FINISHED, 'finished'],
    ],
    [
      'a member reading partitions over a standby',
      [
        [R, 'standing by', false],
        [JobState.JOB_STATE_PAUSED, 'paused', true],
      ],
      [JobState.JOB_STATE_PAUSED, 'paused'],
    ],
    [
      'all stopped: the first',
      [
        [JobState.JOB_STATE_STOPPED, 'stopped', false],
        [JobState.JOB_STATE_STOPPED, 'stopped', false],
      ],
      [JobState.JOB_STATE_STOPPED, 'stopped'],
    ],
  ];
  for (const [name, members, [state, reason]] of speakers)
    it(name, () => {
      const merged = mergeMemberStatuses(members.map(([s, r, owns]) => ({ status: status(s, r, [0]), owns })));
      assert.deepEqual([merged.state, merged.reason], [state, reason]);
    });
});
