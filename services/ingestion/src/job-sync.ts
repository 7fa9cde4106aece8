/**
 * Keeping every ingestion process's members of a job in line with the job's state in the
 * catalog. `StartJob`, `PauseJob`, `ResumeJob` and `StopJob` may reach any ingestion replica;
 * it records the new state and announces it (`JobChanged` on NATS), and each process — on the
 * announcement, and periodically in case one was lost — reads the state and does what this
 * table says to its own members. Pure: the registry gathers the inputs and applies the answer.
 */
import { JobState } from '#shared/gen/sluice/v1/catalog.js';

/** What this process's members of a job are doing. */
export type LocalJob =
  /** No member here, or only members that stopped or failed: nothing of the job runs here. */
  | 'absent'
  | 'running'
  | 'paused'
  /**
   * A bounded job finishing, finished or handed over to the group's leader: it ends on its own.
   * Also a member that failed, until its failure is recorded (the catalog then says FAILED).
   */
  | 'ending';

export type SyncAction = 'none' | 'start' | 'start paused' | 'pause' | 'resume' | 'stop';

/** The job's state in the catalog, or `deleted` when the catalog no longer has it. */
export type CatalogJob = JobState | 'deleted';

export function syncAction(catalog: CatalogJob, local: LocalJob): SyncAction {
  if (local === 'ending') return 'none';
  const live = local === 'running' || local === 'paused';
  switch (catalog) {
    case JobState.JOB_STATE_RUNNING:
      return local === 'absent' ? 'start' : local === 'paused' ? 'resume' : 'none';
    case JobState.JOB_STATE_PAUSED:
      return local === 'absent' ? 'start paused' : local === 'running' ? 'pause' : 'none';
    case JobState.JOB_STATE_STOPPING:
    case JobState.JOB_STATE_STOPPED:
    case JobState.JOB_STATE_FAILED:
    case 'deleted':
      // A member failing elsewhere failed the job: the members here stop with a final flush,
      // committing what they read, rather than read on into a job that is over.
      return live ? 'stop' : 'none';
    default:
      // CREATED (never started) and FINISHED (its members end by themselves).
      return 'none';
  }
}
