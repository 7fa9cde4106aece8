/**
 * Error-topic confirmations of one Transform stream (ERROR_TOPIC policy; DESIGN.md, "Error
 * topic"). Transformation returns a batch's refused records in its ack; ingestion produces
 * them to the error topic and then sends ErrorsProduced{sequence}. A flush report may cover
 * that batch's offsets only after the confirmation: otherwise the offsets could be committed
 * while the refused record is in no topic, and a crash of ingestion in between would lose it.
 *
 * Ingestion produces in ack order, so one number says it all: every batch up to `confirmed`
 * is in the error topic. Pure apart from the deadline timers.
 */
export class ConfirmationError extends Error {
  constructor(
    message: string,
    readonly kind: 'protocol' | 'deadline' | 'closed',
  ) {
    super(message);
    this.name = 'ConfirmationError';
  }
}

interface Waiter {
  sequence: number;
  resolve(): void;
  reject(err: ConfirmationError): void;
  timer: NodeJS.Timeout;
}

export class ErrorConfirmations {
  /** The last batch acknowledged, and the last one whose ack carried error records. */
  private acked = 0;
  private owed = 0;
  private confirmed = 0;
  private closedWith: ConfirmationError | null = null;
  private readonly waiters = new Set<Waiter>();

  /** A batch is acknowledged; `errorRecords` of its records go to the error topic. */
  ack(sequence: number, errorRecords: number): void {
    this.acked = sequence;
    if (errorRecords > 0) this.owed = sequence;
  }

  /** ErrorsProduced{sequence} arrived. Throws for a batch that was never acknowledged. */
  confirm(sequence: number): void {
    if (!Number.isSafeInteger(sequence) || sequence < 1 || sequence > this.acked) {
      throw new ConfirmationError(
        `ErrorsProduced names batch ${sequence}, but the batches acknowledged so far end at ${this.acked}`,
        'protocol',
      );
    }
    if (sequence <= this.confirmed) return;
    this.confirmed = sequence;
    for (const w of this.waiters) {
      if (w.sequence <= sequence) this.settle(w).resolve();
    }
  }

  /** The batch a report cut now must wait for (its error records produced); 0 when none. */
  get outstanding(): number {
    return this.owed > this.confirmed ? this.owed : 0;
  }

  /** Resolves once batch `sequence` is confirmed; rejects at deadlineMs (epoch ms) or on close. */
  wait(sequence: number, deadlineMs: number, nowMs: number): Promise<void> {
    if (sequence <= this.confirmed) return Promise.resolve();
    if (this.closedWith) return Promise.reject(this.closedWith);
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = {
        sequence,
        resolve,
        reject,
        timer: setTimeout(
          () => {
            this.settle(waiter).reject(
              new ConfirmationError(
                `the error records of batch ${sequence} were not confirmed produced to the error topic by the flush deadline (confirmed up to batch ${this.confirmed})`,
                'deadline',
              ),
            );
          },
          Math.max(0, deadlineMs - nowMs),
        ),
      };
      this.waiters.add(waiter);
    });
  }

  /** The stream ends: waiting reports will never be confirmed. */
  close(reason: string): void {
    this.closedWith ??= new ConfirmationError(reason, 'closed');
    for (const w of this.waiters) this.settle(w).reject(this.closedWith);
  }

  private settle(w: Waiter): Waiter {
    clearTimeout(w.timer);
    this.waiters.delete(w);
    return w;
  }
}
