/**
 * When a bounded job is done. Pure decisions over the runner's per-partition cursors; the
 * runner asks them after each batch, resync, watermark check and commit, and acts on the
 * answers (pause, final flush, FINISHED).
 *
 * A job ends one of three ways (DESIGN.md, bounded jobs):
 * - 'unbounded': a continuous job never completes by itself;
 * - 'end-offsets': an END_POSITION window completes when every partition of the topic has
 *   ended and is committed up to its end. A partition ends where reading finds it over: at its
 *   first record stamped at or after the window's close time (end + allowed lateness), or, once
 *   that time has passed on the wall clock, at the high watermark it was read up to (see
 *   endWithoutRecord). Ends are found by reading, never looked up by timestamp, so transaction
 *   markers (stamped with the broker's clock) never decide them and a window whose end is still
 *   ahead waits for it;
 * - 'idle': an IDLE window completes when no record arrived for the idle timeout and this
 *   process's positions are committed.
 */
import { CompletionPolicy, type TimeWindow } from '#shared/gen/sluice/v1/catalog.js';
import type { TimeBounds } from './coverage.js';

export type CompletionMode = 'unbounded' | 'end-offsets' | 'idle';

/** What completion reads of one partition's cursor. */
export interface PartitionProgress {
  /** Next offset to account for: everything below was sent or covered in this incarnation. */
  readonly position: number;
  /** Where the job started on this partition before any commit. */
  readonly initialStart: number;
  /** END_POSITION jobs: the exclusive end once reading found the partition over; null before, and for other jobs. */
  readonly endOffset: number | null;
  /** The catalog's committed next offset; undefined before the first commit. */
  readonly committed: number | undefined;
}

/** The mode of a job from its window (null: continuous) and idle timeout (null: END_POSITION). */
export function completionMode(hasWindow: boolean, idleTimeoutMs: number | null): CompletionMode {
  if (!hasWindow) return 'unbounded';
  return idleTimeoutMs === null ? 'end-offsets' : 'idle';
}

/** This partition ended and was read up to its end (nothing more to fetch from it). */
export function readToEnd(p: PartitionProgress): boolean {
  return p.endOffset !== null && p.position >= p.endOffset;
}

/** END_POSITION jobs: every owned partition ended and was read up to its end, so the job can finish. */
export function ownedDone(mode: CompletionMode, owned: readonly PartitionProgress[]): boolean {
  return mode === 'end-offsets' && owned.every(readToEnd);
}

/**
 * END_POSITION jobs: every partition of the topic (whichever process reads it) has ended and is
 * committed up to its end, or ended where it started (nothing to commit).
 */
export function boundedComplete(mode: CompletionMode, all: readonly PartitionProgress[]): boolean {
  if (mode !== 'end-offsets' || all.length === 0) return false;
  return all.every(committedToEnd);
}

/** The partition ended and is committed up to its end, or ended where it started. */
function committedToEnd(p: PartitionProgress): boolean {
  return p.endOffset !== null && Math.max(p.committed ?? -1, p.initialStart) >= p.endOffset;
}

/**
 * END_POSITION jobs read by several processes of the consumer group: only a partition's reader
 * finds where it ends, so no process can judge the partitions it never read. A member that is
 * not the group's leader, and whose owned partitions all ended and are committed up to their
 * ends, hands over: it leaves the group, the leader is assigned its partitions, finds their ends
 * again at the committed offsets (the record there, or the high watermark) and finishes the
 * job. The leader never hands over; a process that knows every end finishes instead.
 */
export function handsOver(
  mode: CompletionMode,
  isLeader: boolean,
  owned: readonly PartitionProgress[],
  all: readonly PartitionProgress[],
): boolean {
  if (mode !== 'end-offsets' || isLeader || boundedComplete(mode, all)) return false;
  return owned.every(committedToEnd);
}

/** What decides whether an END_POSITION partition without a record past the close time is over. */
export interface OpenPartition {
  /** Next offset to account for: everything below was read. */
  readonly position: number;
  /** The partition's high watermark as last asked of the broker, and when it was asked (wall clock, ms). */
  readonly highWatermark: number;
  readonly highWatermarkAtMs: number;
}

/**
 * END_POSITION: where a partition in which no record stamped at or after the close time
 * (window end + allowed lateness) was read ends, or null while it stays open. It ends once it
 * was read up to a high watermark asked for after the close time had passed: everything the
 * partition held by then was read, and records appended later are later than the allowed
 * lateness on the wall clock. Before the close time it stays open whatever it holds (a window
 * whose end is ahead waits for it; an empty partition too), so records produced meanwhile are
 * read. A high watermark asked for earlier decides nothing, however far reading got.
 */
export function endWithoutRecord(p: OpenPartition, closeAtMs: number): number | null {
  return p.highWatermarkAtMs >= closeAtMs && p.position >= p.highWatermark ? p.position : null;
}

/**
 * The catalog's commits reached `target` on every partition named (a graceful stop's or an
 * IDLE finish's positions). A target at or below the start needs no commit: nothing was read.
 */
export function coveredUpTo(targets: ReadonlyMap<number, number>, progress: (partition: number) => PartitionProgress): boolean {
  for (const [partition, target] of targets) {
    const p = progress(partition);
    if (target > p.initialStart && (p.committed ?? -1) < target) return false;
  }
  return true;
}

/** What decides whether an IDLE job's member is over: what it reads, what awaits an ack, when a record last came. */
export interface MemberQuiet {
  /** Partitions the group assigned the member (0: a standby, members.ts). */
  readonly owned: number;
  /** Batches sent and not yet acknowledged. */
  readonly inFlight: number;
  /** When a fetch last returned records (wall clock, ms). */
  readonly lastRecordAtMs: number;
}

/**
 * IDLE jobs: the member finishes (and records the job FINISHED) once no record came for the idle
 * timeout and everything it sent was acknowledged. A standby, which reads no partition, never
 * does: its quiet says nothing of the job's, and it would record FINISHED while the readers read.
 */
export function idleOver(m: MemberQuiet, nowMs: number, idleMs: number): boolean {
  return m.owned > 0 && m.inFlight === 0 && nowMs - m.lastRecordAtMs >= idleMs;
}

/** A job's window (null: continuous), idle timeout (null: not IDLE), completion mode and close time. */
export interface JobBounds {
  readonly window: TimeBounds | null;
  readonly idleTimeoutMs: number | null;
  readonly completion: CompletionMode;
  /**
   * END_POSITION jobs: window end + allowed lateness. A record stamped at or after it ends its
   * partition; once the wall clock passed it, a partition read to its high watermark ends. null otherwise.
   */
  readonly closeAtMs: number | null;
}

/** An IDLE window names no timeout: one minute without records. */
const DEFAULT_IDLE_TIMEOUT_MS = 60_000;

/** The bounds of a job from its window spec; a window without an end time is no window. */
export function jobBounds(w: TimeWindow | undefined): JobBounds {
  const window = w && w.endTimeMs > 0 ? { startTimeMs: w.startTimeMs, endTimeMs: w.endTimeMs } : null;
  const idleTimeoutMs =
    w && window && w.completion === CompletionPolicy.COMPLETION_POLICY_IDLE
      ? Math.max(1, w.idleTimeoutMs || DEFAULT_IDLE_TIMEOUT_MS)
      : null;
  const completion = completionMode(window !== null, idleTimeoutMs);
  const closeAtMs = w && window && completion === 'end-offsets' ? window.endTimeMs + Math.max(0, w.allowedLatenessMs) : null;
  return { window, idleTimeoutMs, completion, closeAtMs };
}
