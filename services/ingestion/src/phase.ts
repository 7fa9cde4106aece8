/**
 * The lifecycle of one job in this ingestion process, as one value. The runner holds exactly
 * one Phase and changes it only through JobRunner.transitionTo, which checks PREDECESSORS
 * (an illegal transition is a programming error and throws) and performs the side effects of
 * entering the phase. What job status shows (JobState and reason) is derived from the phase
 * here; nothing reads the reason text back.
 *
 * Live phases (the job has not been asked to end) and where they lead:
 *   starting  -> resyncing (joined the group) | retrying (source failure) | finishing (nothing left)
 *   retrying  -> resyncing | retrying | finishing
 *   resyncing -> running (stream open, partitions sought) | resyncing | retrying | finishing
 *   running   -> resyncing (rebalance, rewind, broken stream) | retrying | finishing (end read, or idle)
 *   finishing -> finished (the final commit covers the end) | handed over (END_POSITION, several
 *                processes: this one's partitions are committed to their ends, and the group's
 *                leader finishes the job) | resyncing | retrying (the finish is abandoned and
 *                detected again once reading resumes)
 * Ending: any live phase -> stopping -> stopped; any live phase -> failed; a live phase or
 * stopping -> shut down. Nothing leaves stopped, finished, failed, shut down or handed over.
 */
import { JobState } from '#shared/gen/sluice/v1/catalog.js';

export type Phase =
  /** The first consumer session is being set up (positions resolved, group joined). */
  | { readonly name: 'starting' }
  /** The source failed; waiting `delayMs`, then a new session (until it is in the group again). */
  | { readonly name: 'retrying'; readonly attempt: number; readonly cause: string; readonly delayMs: number }
  /**
   * In the group, but the data path is closed: a rebalance, rewind, broken stream or failed
   * produce is dropping uncommitted work; positions are re-read from the catalog and a new
   * stream opened. `problem` is what status shows (null for routine rebalances and rewinds).
   */
  | { readonly name: 'resyncing'; readonly cause: string; readonly problem: string | null }
  /** Reading: batches go to the current stream. */
  | { readonly name: 'running' }
  /** A bounded job reached its end: still reading, waiting for the commit that covers it. */
  | { readonly name: 'finishing' }
  /** StopJob: fetching paused, waiting (bounded) for the commit of what was sent. */
  | { readonly name: 'stopping' }
  | { readonly name: 'stopped' }
  | { readonly name: 'finished'; readonly summary: string }
  | { readonly name: 'failed'; readonly reason: string }
  /** The process is shutting down: the group is left, the catalog keeps the job RUNNING. */
  | { readonly name: 'shut down' }
  /**
   * END_POSITION with several processes in the group: this one's partitions ended and are
   * committed, but only the partitions' readers know where the others end. It leaves the group,
   * so the leader is assigned them, finds their ends again at the committed offsets and records
   * FINISHED (completion.ts handsOver). The catalog keeps the job RUNNING until then.
   */
  | { readonly name: 'handed over' };

export type PhaseName = Phase['name'];

/** Phases in which the job is still reading (or about to): the job has not been asked to end. */
const LIVE = ['starting', 'retrying', 'resyncing', 'running', 'finishing'] as const satisfies readonly PhaseName[];

/** For each phase, the phases it may be entered from. `starting` is only the initial phase. */
export const PREDECESSORS: { readonly [P in PhaseName]: readonly PhaseName[] } = {
  starting: [],
  retrying: LIVE,
  resyncing: LIVE,
  running: ['resyncing'],
  // From a session's start too: a restart after everything was committed finishes at once.
  finishing: ['starting', 'retrying', 'resyncing', 'running'],
  stopping: LIVE,
  stopped: ['stopping'],
  finished: ['finishing'],
  'handed over': ['finishing'],
  failed: LIVE,
  'shut down': [...LIVE, 'stopping'],
};

export function canTransition(from: PhaseName, to: PhaseName): boolean {
  return PREDECESSORS[to].includes(from);
}

/** The job has not been asked to end (no stop, shutdown, failure or finish yet). */
export function isLive(phase: Phase): boolean {
  return (LIVE as readonly PhaseName[]).includes(phase.name);
}

/** Batches are sent only in these phases; elsewhere a fetched batch is dropped (re-read later). */
export function acceptsBatches(phase: Phase): boolean {
  return phase.name === 'running' || phase.name === 'finishing';
}

/** The JobState status shows. A user pause is not a phase: it stops fetching in any live phase. */
export function jobStateOf(phase: Phase, userPaused: boolean): JobState {
  switch (phase.name) {
    case 'stopping':
      return JobState.JOB_STATE_STOPPING;
    case 'stopped':
      return JobState.JOB_STATE_STOPPED;
    case 'finished':
      return JobState.JOB_STATE_FINISHED;
    case 'failed':
      return JobState.JOB_STATE_FAILED;
    default:
      return userPaused ? JobState.JOB_STATE_PAUSED : JobState.JOB_STATE_RUNNING;
  }
}

/** The one-line reason status shows (display only). */
export function reasonOf(phase: Phase): string {
  switch (phase.name) {
    case 'retrying':
      return `${phase.cause}; retrying in ${phase.delayMs} ms (attempt ${phase.attempt})`;
    case 'resyncing':
      return phase.problem ?? '';
    case 'stopping':
      return 'flushing before stop';
    case 'stopped':
      return 'stopped';
    case 'finished':
      return `finished: ${phase.summary}`;
    case 'handed over':
      return 'this process read its partitions to their ends; the group leader in another ingestion process finishes the job';
    case 'failed':
      return phase.reason;
    default:
      return '';
  }
}
