/**
 * The exactly-once rule for offsets, as a pure function: each committed range must begin
 * exactly at the partition's committed next offset. A later start is a gap (records lost),
 * an earlier one an overlap (records twice, or a zombie writer replaying). The first commit
 * of a partition may start anywhere (the job's start position decided it).
 */
import type { OffsetRange } from '#shared/gen/sluice/v1/types.js';

export interface Committed {
  topic: string;
  partition: number;
  nextOffset: number;
}

export type OffsetProblem = { kind: 'invalid'; message: string } | { kind: 'discontinuous'; message: string };

const key = (topic: string, partition: number) => `${topic}\u0000${partition}`;

export function checkOffsetRanges(ranges: OffsetRange[], committed: Committed[]): OffsetProblem | undefined {
  const byKey = new Map(committed.map((c) => [key(c.topic, c.partition), c.nextOffset]));
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
    const k = key(r.topic, r.partition);
    if (seen.has(k)) return { kind: 'invalid', message: `${where}: ${r.topic}/${r.partition} appears twice in one commit` };
    seen.add(k);
    const next = byKey.get(k);
    if (next !== undefined && r.startOffset !== next) {
      const what = r.startOffset > next ? 'gap' : 'overlap';
      return {
        kind: 'discontinuous',
        message: `offset ${what} on ${r.topic}/${r.partition}: committed next offset is ${next} but this commit starts at ${r.startOffset}`,
      };
    }
  }
  return undefined;
}
