/**
 * Job state machine. A job is CREATED, then RUNNING; it can pause and resume; it stops
 * (through STOPPING) or finishes (bounded jobs); it can fail from any live state, and a
 * stopped or failed job can be started again. FINISHED is final. Setting the current state
 * again is accepted (idempotent retries).
 */
import { JobState } from '#shared/gen/sluice/v1/catalog.js';

const S = JobState;
const NEXT: Partial<Record<JobState, JobState[]>> = {
  [S.JOB_STATE_CREATED]: [S.JOB_STATE_RUNNING, S.JOB_STATE_STOPPED, S.JOB_STATE_FAILED],
  [S.JOB_STATE_RUNNING]: [S.JOB_STATE_PAUSED, S.JOB_STATE_STOPPING, S.JOB_STATE_STOPPED, S.JOB_STATE_FINISHED, S.JOB_STATE_FAILED],
  [S.JOB_STATE_PAUSED]: [S.JOB_STATE_RUNNING, S.JOB_STATE_STOPPING, S.JOB_STATE_STOPPED, S.JOB_STATE_FAILED],
  [S.JOB_STATE_STOPPING]: [S.JOB_STATE_STOPPED, S.JOB_STATE_FINISHED, S.JOB_STATE_FAILED],
  [S.JOB_STATE_STOPPED]: [S.JOB_STATE_RUNNING],
  [S.JOB_STATE_FAILED]: [S.JOB_STATE_RUNNING, S.JOB_STATE_STOPPED],
  [S.JOB_STATE_FINISHED]: [],
};

export function canTransition(from: JobState, to: JobState): boolean {
  return from === to || (NEXT[from] ?? []).includes(to);
}

/** States in which a job may be deleted: nothing is consuming for it. */
export function isQuiescent(state: JobState): boolean {
  return state !== S.JOB_STATE_RUNNING && state !== S.JOB_STATE_PAUSED && state !== S.JOB_STATE_STOPPING;
}
