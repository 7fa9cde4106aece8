/**
 * When a bounded job is done. Pure decisions over the runner's per-partition cursors; the
 * runner asks them after each batch, resync and commit, and acts on the answers (pause,
 * final flush, FINISHED).
 *
 * A job ends one of three ways (DESIGN.md, bounded jobs):
 * - 'unbounded': a continuous job never completes by itself;
 * - 'end-offsets': an END_POSITION window completes when every partition of the topic is
 *   committed up to the end offset resolved at start;
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
  /** END_POSITION jobs: the exclusive end resolved at start; null otherwise. */
  readonly endOffset: number | null;
  /** The catalog's committed next offset; undefined before the first commit. */
  readonly committed: number | undefined;
}

/** The mode of a job from its window (null: continuous) and idle timeout (null: END_POSITION). */
export function completionMode(hasWindow: boolean, idleTimeoutMs: number | null): CompletionMode {
  if (!hasWindow) return 'unbounded';
  return idleTimeoutMs === null ? 'end-offsets' : 'idle';
}

/** This partition was read up to its end offset (nothing more to fetch from it). */
export function readToEnd(p: PartitionProgress): boolean {
  return p.endOffset !== null && p.position >= p.endOffset;
}

/** END_POSITION jobs: every owned partition was read up to its end, so the job can finish. */
export function ownedDone(mode: CompletionMode, owned: readonly PartitionProgress[]): boolean {
  return mode === 'end-offsets' && owned.every(readToEnd);
}

/**
 * END_POSITION jobs: every partition of the topic (whichever process reads it) is committed
 * up to its end, or was empty from the start (start position already at the end).
 */
export function boundedComplete(mode: CompletionMode, all: readonly PartitionProgress[]): boolean {
  if (mode !== 'end-offsets' || all.length === 0) return false;
  return all.every((p) => p.endOffset !== null && Math.max(p.committed ?? -1, p.initialStart) >= p.endOffset);
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

/** A job's window (null: continuous), idle timeout (null: not IDLE) and completion mode. */
export interface JobBounds {
  readonly window: TimeBounds | null;
  readonly idleTimeoutMs: number | null;
  readonly completion: CompletionMode;
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
  return { window, idleTimeoutMs, completion: completionMode(window !== null, idleTimeoutMs) };
}
