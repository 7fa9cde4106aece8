/**
 * What the catalog and the scheduler both read from a scheduled job's instance attempts:
 * whether one is live, and how far an instance's succeeded attempts read.
 */
import { InstanceState, type JobInstance } from '../gen/sluice/v1/catalog.js';

/** Queued or running: the instance has an attempt under way. */
export const isLiveInstance = (state: InstanceState): boolean =>
  state === InstanceState.INSTANCE_STATE_QUEUED || state === InstanceState.INSTANCE_STATE_RUNNING;

/**
 * Per Kafka partition, the furthest offset the succeeded attempts read to: late records below
 * it have landed, and a next attempt starts (late append) or reads at least (rerun) to there.
 */
export function coveredEnds(attempts: readonly Pick<JobInstance, 'state' | 'endOffsets'>[]): Map<number, number> {
  const covered = new Map<number, number>();
  for (const a of attempts) {
    if (a.state !== InstanceState.INSTANCE_STATE_SUCCEEDED) continue;
    for (const e of a.endOffsets) covered.set(e.partition, Math.max(covered.get(e.partition) ?? 0, e.offset));
  }
  return covered;
}

/** Attempts grouped by instance (scheduled time), each group in the order given. */
export function attemptsByInstance<I extends Pick<JobInstance, 'scheduledTimeMs'>>(attempts: readonly I[]): Map<number, I[]> {
  const out = new Map<number, I[]>();
  for (const a of attempts) {
    const group = out.get(a.scheduledTimeMs);
    if (group) group.push(a);
    else out.set(a.scheduledTimeMs, [a]);
  }
  return out;
}
