/**
 * One flush round: the workers it waits for and those that answered. Readiness is a set
 * removal per report (O(1)), never a scan of the reports received so far: under backlog the
 * cost of a round stays linear in the number of reports.
 */
export class FlushRound {
  private readonly waiting: Set<string>;
  /** Set when the round started with nobody to wait for: the first report completes it. */
  private readonly anyReportCompletes: boolean;
  private answered = 0;

  constructor(
    readonly flushId: string,
    readonly deadlineMs: number,
    expected: Iterable<string>,
    readonly reason: string,
  ) {
    this.waiting = new Set(expected);
    this.anyReportCompletes = this.waiting.size === 0;
  }

  /** A report naming this round's flush id arrived from workerId. */
  reported(workerId: string): void {
    this.answered++;
    this.waiting.delete(workerId);
  }

  /** The worker went away (goodbye beat or TTL): nothing to wait for any more. */
  workerGone(workerId: string): void {
    this.waiting.delete(workerId);
  }

  get complete(): boolean {
    return this.anyReportCompletes ? this.answered > 0 : this.waiting.size === 0;
  }

  pendingWorkers(): string[] {
    return [...this.waiting].sort();
  }
}
