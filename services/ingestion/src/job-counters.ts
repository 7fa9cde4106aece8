/**
 * What job status counts for one job in this process: records read, rows written, records
 * excluded by the window or by transformation, errors by reason, and the last commit. Display
 * only: no decision reads these.
 */
import type { JobProgress } from '#shared/gen/sluice/v1/catalog.js';
import type { CommittedEvent } from '#shared/gen/sluice/v1/events.js';
import type { BatchAck } from '#shared/gen/sluice/v1/transformation.js';

export interface LastCommit {
  readonly snapshotId: number;
  readonly committedAtMs: number;
  readonly rows: number;
}

export class JobCounters {
  recordsIn = 0;
  bytesIn = 0;
  rowsOut = 0;
  excluded = 0;
  private readonly errors = new Map<string, number>();
  private readonly unmapped = new Map<string, number>();
  private last: LastCommit | undefined;
  private restored = false;

  /** A batch sent: `read` records fetched, of which `excluded` fell outside the window; `bytes` of keys and values sent. */
  countRead(read: number, excluded: number, bytes = 0): void {
    this.recordsIn += read;
    this.bytesIn += bytes;
    this.excluded += excluded;
  }

  countAck(ack: Pick<BatchAck, 'rows' | 'excluded' | 'errorReasons' | 'unmappedFields'>): void {
    this.rowsOut += ack.rows;
    this.excluded += ack.excluded;
    for (const e of ack.errorReasons) this.countError(e.reason, e.count);
    for (const f of ack.unmappedFields) this.unmapped.set(f.field, (this.unmapped.get(f.field) ?? 0) + f.count);
  }

  countError(reason: string, count: number): void {
    this.errors.set(reason, (this.errors.get(reason) ?? 0) + count);
  }

  /**
   * A round with nothing to commit is announced too (it answers TriggerFlush callers), naming
   * the table's current snapshot with 0 rows; it is not a commit, so it must not replace the
   * last one (job status would show "0 rows" and the wrong time a second after any commit).
   */
  recordCommit(e: Pick<CommittedEvent, 'offsets' | 'addedFiles' | 'snapshotId' | 'committedAtMs' | 'addedRecords'>): void {
    if (e.offsets.length > 0 || e.addedFiles > 0)
      this.last = { snapshotId: e.snapshotId, committedAtMs: e.committedAtMs, rows: e.addedRecords };
  }

  /**
   * What the catalog kept of the job's commits (JobProgress), taken once per job run, before
   * anything is read: so after a restart the status still shows the records refused in what
   * was committed and the last commit, instead of starting from nothing.
   */
  restoreCommitted(p: Pick<JobProgress, 'lastSnapshotId' | 'lastCommitAtMs' | 'lastCommitRows' | 'errorCounts'>): void {
    if (this.restored) return;
    this.restored = true;
    for (const e of p.errorCounts) this.countError(e.reason, e.count);
    if (!this.last && p.lastCommitAtMs > 0)
      this.last = { snapshotId: p.lastSnapshotId, committedAtMs: p.lastCommitAtMs, rows: p.lastCommitRows };
  }

  get lastCommit(): LastCommit | undefined {
    return this.last;
  }

  /** Errors by reason, sorted by reason. */
  errorCounts(): { reason: string; count: number }[] {
    return [...this.errors].map(([reason, count]) => ({ reason, count })).sort((a, b) => a.reason.localeCompare(b.reason));
  }

  /** Fields the table has no column for (schema evolution off), by name, sorted by name. */
  unmappedCounts(): { field: string; count: number }[] {
    return [...this.unmapped].map(([field, count]) => ({ field, count })).sort((a, b) => a.field.localeCompare(b.field));
  }

  /** The counts as a finished job's reason shows them. */
  summary(): string {
    return `${this.recordsIn} records read, ${this.rowsOut} rows written, ${this.excluded} excluded`;
  }
}
