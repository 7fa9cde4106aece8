/**
 * Typed failures of the commit path, each carrying what went wrong and for which table, so
 * the coordinator can react to the kind (rebase, reload offsets, stop: fenced) and logs and
 * gRPC answers can name the cause.
 */
export type CommitErrorKind =
  /** Another coordinator holds a newer lease epoch: stop committing this table. */
  | 'fenced'
  /** The catalog refused the offsets (they do not continue its committed ones). */
  | 'offsets-rejected'
  /** The table kept moving: still ABORTED after the bounded retries. */
  | 'conflict'
  /** A report or file that cannot be committed as it is. */
  | 'invalid-report'
  /** A replaced file is no longer live (compaction raced with another rewrite). */
  | 'stale-rewrite'
  /** The catalog could not be reached or answered something unexpected. */
  | 'catalog';

export class CommitError extends Error {
  constructor(
    readonly kind: CommitErrorKind,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'CommitError';
  }
}
