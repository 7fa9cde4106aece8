/**
 * Bytes sent to transformation and not yet acknowledged, per job. Over the budget the runner
 * pauses its partitions; it resumes once acknowledgements brought the total down to half the
 * budget, so a steady stream of acks does not flap pause/resume on every batch.
 *
 * The budget is soft by at most one fetch: a batch already fetched is always sent, then the
 * partitions pause. Memory is therefore bounded by budget + one fetch (kafkajs maxBytes).
 */
export class InFlight {
  private readonly batches = new Map<number, number>();
  private total = 0;

  constructor(readonly budgetBytes: number) {
    if (!(budgetBytes > 0)) throw new RangeError(`in-flight budget must be > 0 bytes, got ${budgetBytes}`);
  }

  add(sequence: number, bytes: number): void {
    if (this.batches.has(sequence)) throw new Error(`batch ${sequence} is already in flight`);
    this.batches.set(sequence, bytes);
    this.total += bytes;
  }

  /** Releases an acknowledged batch; false when the sequence was not in flight. */
  ack(sequence: number): boolean {
    const bytes = this.batches.get(sequence);
    if (bytes === undefined) return false;
    this.batches.delete(sequence);
    this.total -= bytes;
    return true;
  }

  /** Forgets everything (the stream these batches went to is gone). */
  clear(): void {
    this.batches.clear();
    this.total = 0;
  }

  get bytes(): number {
    return this.total;
  }

  get count(): number {
    return this.batches.size;
  }

  get overBudget(): boolean {
    return this.total >= this.budgetBytes;
  }

  get drained(): boolean {
    return this.total <= this.budgetBytes / 2;
  }
}
