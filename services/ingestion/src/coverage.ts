/**
 * What one fetched Kafka batch contributes to the Transform stream: the records to send and
 * the offset range `[start, end)` the batch accounts for (DESIGN.md, "Offsets are declared by
 * ingestion"). Pure: the job reader feeds it a partition's fetched records and its cursor.
 *
 * Coverage is contiguous even when rows are not: records outside the time window, transaction
 * markers and compaction gaps are covered without being sent, so the committed offset still
 * moves past them.
 */

/** The part of a partition's fetched records (kafka/fetched-records.ts) this module reads. */
export interface StampedRecords {
  readonly count: number;
  readonly offsets: ArrayLike<number>;
  readonly timestamps: ArrayLike<number>;
  /** Room for `count` record indexes, where planBatch writes the ones to send. */
  readonly picked: Int32Array;
}

/** A bounded job's window by record timestamp: startTimeMs <= ts < endTimeMs. */
export interface TimeBounds {
  readonly startTimeMs: number;
  readonly endTimeMs: number;
}

/** What bounds the reading of one partition. */
export interface BatchLimits {
  /** END_POSITION jobs: the partition's end once found (a re-read after a resync stops there); null otherwise. */
  readonly endOffset: number | null;
  /** END_POSITION jobs: the first record stamped at or after this ends the partition; null otherwise. */
  readonly closeAtMs: number | null;
  /** Time bounds, or null for continuous jobs. */
  readonly window: TimeBounds | null;
}

export interface BatchPlan {
  /** The indexes of the records to send, in offset order: a view of the records' `picked`. */
  readonly send: Int32Array;
  /** The range this batch accounts for; empty (start === end) when it adds nothing. */
  readonly coverStart: number;
  readonly coverEnd: number;
  /** Records inside the cover that were left out because of their timestamp. */
  readonly excluded: number;
  /**
   * END_POSITION jobs: the partition's end when the cover reached it (the offset of the first
   * record stamped at or after the close time, or the known end); null while the partition goes on.
   */
  readonly end: number | null;
}

/**
 * Plans one batch of a partition.
 *
 * @param position the partition's next offset to account for (everything below is covered)
 * @param limits the partition's known end, the close time and the window
 * @param records the batch's records in offset order (the fetch path drops control records
 *   and aborted ones, so transaction markers never end a partition)
 * @param batchEnd one past the last offset the fetch accounted for, control records included
 */
export function planBatch(position: number, limits: BatchLimits, records: StampedRecords, batchEnd: number): BatchPlan {
  const { endOffset, closeAtMs, window } = limits;
  let coverEnd = Math.max(position, endOffset === null ? batchEnd : Math.min(batchEnd, endOffset));
  let end = endOffset !== null && coverEnd >= endOffset ? endOffset : null;
  const { offsets, timestamps, picked } = records;
  let sent = 0;
  let excluded = 0;
  for (let i = 0; i < records.count; i++) {
    const offset = offsets[i];
    // Below the position: already covered (a fetch inside a batch gets the whole batch back).
    if (offset < position) continue;
    if (offset >= coverEnd) break;
    if (window !== null) {
      const ts = timestamps[i];
      // The partition's end: this record and everything after it are left for later windows.
      if (closeAtMs !== null && ts >= closeAtMs) {
        coverEnd = offset;
        end = offset;
        break;
      }
      if (ts < window.startTimeMs || ts >= window.endTimeMs) {
        excluded++;
        continue;
      }
    }
    picked[sent++] = i;
  }
  return { send: picked.subarray(0, sent), coverStart: position, coverEnd, excluded, end };
}

/** Where a start by timestamp stands after one batch (positions.ts StartSearch). */
export interface StartFound {
  /** The partition's start as far as read: the records below it are covered without being sent. */
  readonly start: number;
  /** The start is confirmed: a record stamped at or after the time, or the search limit, was reached. */
  readonly found: boolean;
}

/**
 * Confirms a start by timestamp over one batch: the first record from `position` stamped at or
 * after `search.atMs`, below `search.untilOffset`; at `untilOffset` when none is. Until then the
 * start moves past every record of the batch (markers included).
 */
export function findStart(
  position: number,
  search: { readonly atMs: number; readonly untilOffset: number },
  records: Omit<StampedRecords, 'picked'>,
  batchEnd: number,
): StartFound {
  const { offsets, timestamps } = records;
  for (let i = 0; i < records.count; i++) {
    const offset = offsets[i];
    if (offset < position) continue;
    if (offset >= search.untilOffset) break;
    if (timestamps[i] >= search.atMs) return { start: offset, found: true };
  }
  const start = Math.min(Math.max(position, batchEnd), search.untilOffset);
  return { start, found: start >= search.untilOffset };
}

/**
 * The offset range a fetch skips before its first record, when it started past the position
 * (compaction, markers, or records removed by retention). null when there is none.
 */
export function leadingGap(position: number, firstOffset: number | null): { start: number; end: number } | null {
  if (firstOffset === null) return null;
  return firstOffset > position ? { start: position, end: firstOffset } : null;
}
