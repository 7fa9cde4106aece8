import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { JobState } from '#shared/gen/sluice/v1/catalog.js';
import { acceptsBatches, canTransition, isLive, jobStateOf, type Phase, type PhaseName, PREDECESSORS, reasonOf } from '../src/phase.js';

const NAMES = Object.keys(PREDECESSORS) as PhaseName[];

describe('phase transitions', () => {
  // Every legal transition, with why the runner takes it; every pair not listed is illegal.
  const legal: [PhaseName, PhaseName, string][] = [
    ['starting', 'retrying', 'the first session failed (topic missing, broker down)'],
    ['retrying', 'retrying', 'the next session failed too'],
    ['resyncing', 'retrying', 'the consumer crashed during a resync'],
    ['running', 'retrying', 'the consumer crashed'],
    ['finishing', 'retrying', 'the consumer crashed while waiting for the final commit'],
    ['starting', 'resyncing', 'joined the group'],
    ['retrying', 'resyncing', 'joined the group again'],
    ['resyncing', 'resyncing', 'another rebalance, or the resync failed'],
    ['running', 'resyncing', 'rebalance, rewind, broken stream, failed error-topic produce'],
    ['finishing', 'resyncing', 'rebalance while waiting for the final commit'],
    ['resyncing', 'running', 'stream open, partitions sought'],
    ['starting', 'finishing', 'a restart after everything was committed'],
    ['retrying', 'finishing', 'the end was committed while the source was away'],
    ['resyncing', 'finishing', 'everything committed, found at a session start'],
    ['running', 'finishing', 'the end offsets were read, or the job was idle'],
    ['starting', 'stopping', 'StopJob'],
    ['retrying', 'stopping', 'StopJob'],
    ['resyncing', 'stopping', 'StopJob'],
    ['running', 'stopping', 'StopJob'],
    ['finishing', 'stopping', 'StopJob'],
    ['stopping', 'stopped', 'the stop flush is done (or timed out)'],
    ['finishing', 'finished', 'the final commit covers the end'],
    ['finishing', 'handed over', 'END_POSITION: own partitions committed to their ends, another process leads the group'],
    ['starting', 'failed', 'a start position outside the partition'],
    ['retrying', 'failed', 'a start position outside the partition'],
    ['resyncing', 'failed', 'expired offsets without offset_reset'],
    ['running', 'failed', 'expired offsets found by a fetch'],
    ['finishing', 'failed', 'expired offsets found by a fetch'],
    ['starting', 'shut down', 'process shutdown'],
    ['retrying', 'shut down', 'process shutdown'],
    ['resyncing', 'shut down', 'process shutdown'],
    ['running', 'shut down', 'process shutdown'],
    ['finishing', 'shut down', 'process shutdown'],
    ['stopping', 'shut down', 'process shutdown during a stop flush'],
  ];
  const isLegal = (from: PhaseName, to: PhaseName) => legal.some(([f, t]) => f === from && t === to);
  for (const [from, to, why] of legal) it(`${from} -> ${to}: ${why}`, () => assert.equal(canTransition(from, to), true));

  it('every other transition is illegal (nothing leaves an end phase; nothing re-enters starting)', () => {
    const extra: string[] = [];
    for (const from of NAMES) for (const to of NAMES) if (!isLegal(from, to) && canTransition(from, to)) extra.push(`${from} -> ${to}`);
    assert.deepEqual(extra, []);
  });

  const ends: PhaseName[] = ['stopped', 'finished', 'failed', 'shut down', 'handed over'];
  for (const end of ends) {
    it(`${end} is final`, () =>
      assert.deepEqual(
        NAMES.filter((to) => canTransition(end, to)),
        [],
      ));
  }
});

describe('what a phase means', () => {
  const cases: [Phase, boolean, boolean][] = [
    [{ name: 'starting' }, true, false],
    [{ name: 'retrying', attempt: 1, cause: 'x', delayMs: 500 }, true, false],
    [{ name: 'resyncing', cause: 'rebalancing', problem: null }, true, false],
    [{ name: 'running' }, true, true],
    [{ name: 'finishing' }, true, true],
    [{ name: 'stopping' }, false, false],
    [{ name: 'stopped' }, false, false],
    [{ name: 'finished', summary: '' }, false, false],
    [{ name: 'failed', reason: 'x' }, false, false],
    [{ name: 'shut down' }, false, false],
    [{ name: 'handed over' }, false, false],
  ];
  for (const [phase, live, batches] of cases) {
    it(`${phase.name}: ${live ? 'live' : 'ending'}, ${batches ? 'sends batches' : 'sends nothing'}`, () => {
      assert.equal(isLive(phase), live);
      assert.equal(acceptsBatches(phase), batches);
    });
  }
});

describe('status derived from the phase', () => {
  const {
    JOB_STATE_RUNNING: RUNNING,
    JOB_STATE_PAUSED: PAUSED,
    JOB_STATE_STOPPING,
    JOB_STATE_STOPPED,
    JOB_STATE_FINISHED,
    JOB_STATE_FAILED,
  } = JobState;
  const cases: [Phase, boolean, JobState, string][] = [
    [{ name: 'starting' }, false, RUNNING, ''],
    [{ name: 'starting' }, true, PAUSED, ''],
    [
      { name: 'retrying', attempt: 3, cause: 'topic "t" does not exist', delayMs: 2000 },
      false,
      RUNNING,
      'topic "t" does not exist; retrying in 2000 ms (attempt 3)',
    ],
    [{ name: 'resyncing', cause: 'rebalancing', problem: null }, false, RUNNING, ''],
    [
      { name: 'resyncing', cause: 'stream broke', problem: 'transformation stream broke: gone' },
      true,
      PAUSED,
      'transformation stream broke: gone',
    ],
    [{ name: 'running' }, false, RUNNING, ''],
    [{ name: 'running' }, true, PAUSED, ''],
    [{ name: 'finishing' }, false, RUNNING, ''],
    [{ name: 'stopping' }, true, JOB_STATE_STOPPING, 'flushing before stop'],
    [{ name: 'stopped' }, false, JOB_STATE_STOPPED, 'stopped'],
    [{ name: 'finished', summary: '3 records read' }, false, JOB_STATE_FINISHED, 'finished: 3 records read'],
    [{ name: 'failed', reason: 'OFFSET_OUT_OF_RANGE: …' }, true, JOB_STATE_FAILED, 'OFFSET_OUT_OF_RANGE: …'],
    [{ name: 'shut down' }, false, RUNNING, ''],
    [
      { name: 'handed over' },
      false,
      RUNNING,
      'this process read its partitions to their ends; the group leader in another ingestion process finishes the job',
    ],
  ];
  for (const [phase, paused, state, reason] of cases) {
    it(`${phase.name}${paused ? ' (paused)' : ''}: ${JobState[state]}`, () => {
      assert.equal(jobStateOf(phase, paused), state);
      assert.equal(reasonOf(phase), reason);
    });
  }
});
