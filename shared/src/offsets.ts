/**
 * Offset contiguity, the exactly-once rule (DESIGN.md, "Offsets are declared by ingestion,
 * checked by everyone"): a job's committed range on a partition begins exactly where the
 * partition's committed offsets end or, before the job's first commit there, at the start the
 * job recorded for it (RecordJobStart). The catalog enforces it inside CommitTable's
 * transaction (services/catalog/src/offsets.ts); the commit service checks reports against it
 * before committing them (services/commit/src/offsets.ts). Pure.
 */

/** Kafka topic names are [a-zA-Z0-9._-], so `/` cannot occur inside one. */
export const partitionKey = (topic: string, partition: number): string => `${topic}/${partition}`;

export interface CommittedNext {
  readonly topic: string;
  readonly partition: number;
  readonly nextOffset: number;
}

export interface RecordedStart {
  readonly topic: string;
  readonly partition: number;
  readonly offset: number;
}

/**
 * Per partition (partitionKey), where the job's next committed range must start: the committed
 * next offset, else the recorded start. A partition in neither has no allowed start yet.
 */
export function expectedOffsets(committed: readonly CommittedNext[], starts: readonly RecordedStart[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const s of starts) out.set(partitionKey(s.topic, s.partition), s.offset);
  // A commit supersedes the start: the start only decides where the first commit begins.
  for (const c of committed) out.set(partitionKey(c.topic, c.partition), c.nextOffset);
  return out;
}

/** How a range starting at `start` meets the expected offset: a later start loses records, an earlier one repeats them. */
export function continuity(start: number, expected: number): 'continues' | 'gap' | 'overlap' {
  return start === expected ? 'continues' : start > expected ? 'gap' : 'overlap';
}
