/**
 * The process's bound on rows held in memory: an open data file keeps its rows in DuckDB until
 * it is written (at a flush, or at the target file size), so with a stalled commit service and
 * a backlog, every stream would hold up to a target-sized file per partition value. Above the
 * budget (TRANSFORMATION_OPEN_FILE_BYTES, estimated uncompressed bytes over all streams), the
 * stream that just appended writes out its largest open files early. They stay unreported
 * until its next flush, like any rolled file, so nothing about exactly-once changes; the
 * price is smaller files under memory pressure.
 *
 * The early file is written while the stream goes on (writer.ts), one at a time in the
 * process: the rows in memory are bounded by the budget plus the one file being written.
 */
import type { PartitionedFiles } from './files.js';

export class OpenFileBudget {
  private readonly sets = new Set<PartitionedFiles>();
  /** The file written early that is being written, if any. */
  private writing: Promise<void> | null = null;

  constructor(readonly limitBytes: number) {
    if (!(limitBytes > 0)) throw new RangeError(`open-file budget must be > 0 bytes, got ${limitBytes}`);
  }

  /** Counts a stream's file sets until the returned function is called. */
  register(...sets: PartitionedFiles[]): () => void {
    for (const s of sets) this.sets.add(s);
    return () => {
      for (const s of sets) this.sets.delete(s);
    };
  }

  get openBytes(): number {
    let total = 0;
    for (const s of this.sets) total += s.openBytes;
    return total;
  }

  /**
   * Over the budget: writes out `own` sets' largest open files until under it or none is open.
   * Returns once the last is being written, after the one before it was written.
   */
  async enforce(own: readonly PartitionedFiles[]): Promise<number> {
    let rolled = 0;
    while (this.openBytes > this.limitBytes) {
      await this.writing;
      const largest = own.reduce<PartitionedFiles | null>((a, s) => (s.openBytes > (a?.openBytes ?? 0) ? s : a), null);
      if (largest === null || !(await largest.rollLargest())) break;
      this.writing = largest.written();
      rolled++;
    }
    return rolled;
  }
}
