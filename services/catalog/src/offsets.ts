/**
 * The exactly-once rule for offsets, as a pure function: each committed range must begin
 * exactly where the partition's committed offsets end, or at the job's recorded start before
 * its first commit there (#shared/offsets.js). A later start is a gap (records lost), an
 * earlier one an overlap (records twice, or a zombie writer replaying). A partition with
 * neither has no start anyone chose, so nothing may be committed on it.
 */
import type { OffsetRange } from '#shared/gen/sluice/v1/types.js';
import { type CommittedNext, continuity, expectedOffsets, partitionKey, type RecordedStart } from '#shared/offsets.js';

export type OffsetProblem =
  | { kind: 'invalid'; message: string }
  | { kind: 'discontinuous'; message: string }
  /** No commit and no recorded start on the partition: the job never resolved a start there. */
  | { kind: 'unstarted'; message: string };

export function checkOffsetRanges(
  job: string,
  ranges: OffsetRange[],
  committed: readonly CommittedNext[],
  starts: readonly RecordedStart[],
): OffsetProblem | undefined {
  const expected = expectedOffsets(committed, starts);
  const firstCommit = new Set(starts.map((s) => partitionKey(s.topic, s.partition)));
  for (const c of committed) firstCommit.delete(partitionKey(c.topic, c.partition));
  const seen = new Set<string>();
  for (const [i, r] of ranges.entries()) {
    const where = `offsets[${i}]`;
    if (!r.topic) return { kind: 'invalid', message: `${where}: topic is required` };
    if (!Number.isInteger(r.partition) || r.partition < 0)
      return { kind: 'invalid', message: `${where}: partition ${r.partition} must be >= 0` };
    if (!Number.isSafeInteger(r.startOffset) || r.startOffset < 0 || !Number.isSafeInteger(r.endOffset) || r.endOffset < r.startOffset) {
      return {
        kind: 'invalid',
        message: `${where}: range [${r.startOffset}, ${r.endOffset}) of ${r.topic}/${r.partition} is not a valid offset range`,
      };
    }
    const k = partitionKey(r.topic, r.partition);
    if (seen.has(k)) return { kind: 'invalid', message: `${where}: ${r.topic}/${r.partition} appears twice in one commit` };
    seen.add(k);
    const next = expected.get(k);
    if (next === undefined) {
      return {
        kind: 'unstarted',
        message: `job ${job} has no start recorded on ${r.topic}/${r.partition} and nothing committed there, so no first commit can start at offset ${r.startOffset}: the job's start must be recorded (RecordJobStart) before its first commit`,
      };
    }
    const fit = continuity(r.startOffset, next);
    if (fit !== 'continues') {
      const from = firstCommit.has(k) ? `job ${job} starts at offset ${next} (its recorded start)` : `committed next offset is ${next}`;
      return {
        kind: 'discontinuous',
        message: `offset ${fit} on ${r.topic}/${r.partition}: ${from} but this commit starts at ${r.startOffset}`,
      };
    }
  }
  return undefined;
}
