/**
 * Is the topic a job reads still the topic its committed offsets came from? A topic deleted and
 * recreated under the same name starts its offsets over, so the catalog's committed offsets no
 * longer name the records they were taken from: reading on would silently skip the new topic's
 * first records (offsets below the committed ones) or re-read from a reset. The job fails
 * instead, naming the topic. Pure; the reader gathers the inputs (the topic id from Metadata
 * v10+, the partitions and watermarks, the catalog's committed offsets) at every session start
 * and resync.
 *
 * Evidence, strongest first:
 * - the topic id changed (Kafka gives every topic a random id at creation);
 * - a partition the job committed offsets on no longer exists;
 * - a partition ends below the job's committed offset (a log never shrinks otherwise).
 * A recreated topic with the same partitions and at least as many records is told apart only
 * by its id, so that case needs a broker that gives topic ids and a reader that saw the old one.
 */
import type { Watermarks } from './positions.js';

/** What the broker says about the topic now. */
export interface TopicLook {
  /** The topic's id; null when the broker gives none (Metadata below v10). */
  readonly id: string | null;
  /** Per partition of the topic now, its log start and end offsets. */
  readonly watermarks: ReadonlyMap<number, Watermarks>;
}

export type TopicVerdict =
  /** The same topic: remember `id` (the first id seen, or still null) for the next look. */
  { readonly same: true; readonly id: string | null } | { readonly same: false; readonly reason: string };

/**
 * @param knownId the topic id this job saw earlier in this process, null if none yet
 * @param committed the catalog's committed next offset per partition
 */
export function judgeTopic(topic: string, knownId: string | null, committed: ReadonlyMap<number, number>, look: TopicLook): TopicVerdict {
  const recreated = (evidence: string, orTruncated = false): TopicVerdict => ({
    same: false,
    reason:
      `topic "${topic}" was deleted and recreated${orTruncated ? ', or its log truncated' : ''} (${evidence}): the job's committed offsets ` +
      `(${describeOffsets(committed)}) belong to the old topic, so it stops rather than rewind or skip records; ` +
      'create a new job to read the new topic',
  });
  if (knownId !== null && look.id !== null && look.id !== knownId) return recreated(`its topic id changed from ${knownId} to ${look.id}`);
  for (const [partition, next] of [...committed].sort(([a], [b]) => a - b)) {
    const wm = look.watermarks.get(partition);
    if (!wm) return recreated(`partition ${partition}, committed up to offset ${next}, no longer exists`);
    if (wm.high < next) return recreated(`partition ${partition} ends at offset ${wm.high}, below its committed offset ${next}`, true);
  }
  return { same: true, id: knownId ?? look.id };
}

function describeOffsets(committed: ReadonlyMap<number, number>): string {
  if (committed.size === 0) return 'none';
  return [...committed]
    .sort(([a], [b]) => a - b)
    .map(([p, next]) => `${p}: ${next}`)
    .join(', ');
}
