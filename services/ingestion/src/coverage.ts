/**
 * What one fetched Kafka batch contributes to the Transform stream: the records to send and
 * the offset range `[start, end)` the batch accounts for (DESIGN.md, "Offsets are declared by
 * ingestion"). Pure: the job runner feeds it kafkajs batches and the partition's cursor.
 *
 * Coverage is contiguous even when rows are not: records outside the time window, transaction
 * markers and compaction gaps are covered without being sent, so the committed offset still
 * moves past them.
 */

/** The part of a kafkajs message this module reads (offsets and timestamps are decimal strings). */
export interface OffsetStamped {
  readonly offset: string;
  readonly timestamp: string;
}

/** A bounded job's window by record timestamp: startTimeMs <= ts < endTimeMs. */
export interface TimeBounds {
  readonly startTimeMs: number;
  readonly endTimeMs: number;
}

export interface BatchPlan<M> {
  /** Records to send, in offset order. */
  readonly send: M[];
  /** The range this batch accounts for; empty (start === end) when it adds nothing. */
  readonly coverStart: number;
  readonly coverEnd: number;
  /** Records inside the cover that were left out because of their timestamp. */
  readonly excluded: number;
  /** True when the cover reached the partition's end offset (bounded END_POSITION jobs). */
  readonly reachedEnd: boolean;
}

/**
 * Plans one batch of a partition.
 *
 * @param position the partition's next offset to account for (everything below is covered)
 * @param endOffset exclusive end for END_POSITION jobs, or null for unbounded reading
 * @param window time bounds, or null for continuous jobs
 * @param messages the batch's records in offset order (kafkajs already dropped control records)
 * @param batchEnd one past the last offset the fetch accounted for, control records included
 */
export function planBatch<M extends OffsetStamped>(
  position: number,
  endOffset: number | null,
  window: TimeBounds | null,
  messages: readonly M[],
  batchEnd: number,
): BatchPlan<M> {
  const limit = endOffset === null ? batchEnd : Math.min(batchEnd, endOffset);
  const coverEnd = Math.max(position, limit);
  const send: M[] = [];
  let excluded = 0;
  for (let i = 0; i < messages.length; i++) {
    const m = messages[i];
    const offset = Number(m.offset);
    // Below the position: already covered by an earlier batch (a fetch issued before a seek).
    if (offset < position) continue;
    if (offset >= coverEnd) break;
    if (window !== null) {
      const ts = Number(m.timestamp);
      if (ts < window.startTimeMs || ts >= window.endTimeMs) {
        excluded++;
        continue;
      }
    }
    send.push(m);
  }
  return { send, coverStart: position, coverEnd, excluded, reachedEnd: endOffset !== null && coverEnd >= endOffset };
}

/** One past the last offset a kafkajs batch accounts for (its lastOffset() is inclusive). */
export function batchEndOffset(lastOffset: string): number {
  return Number(lastOffset) + 1;
}

/**
 * The offset range a batch skips before its first record, when the fetch started past the
 * position (compaction, markers, or records removed by retention). null when there is none.
 */
export function leadingGap(position: number, firstOffset: string | null): { start: number; end: number } | null {
  if (firstOffset === null) return null;
  const first = Number(firstOffset);
  return first > position ? { start: position, end: first } : null;
}
