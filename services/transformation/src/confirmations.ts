/**
 * Error-topic confirmations of one Transform stream (ERROR_TOPIC policy; DESIGN.md, "Error
 * topic"). Transformation returns a batch's refused records in its ack; ingestion produces
 * them to the error topic and then sends ErrorsProduced{sequence}. A flush report may cover
 * that batch's offsets only after the confirmation: otherwise the offsets could be committed
 * while the refused record is in no topic, and a crash of ingestion in between would lose it.
 *
 * Ingestion produces in ack order, so one number says it all: every batch up to `confirmed`
 * is in the error topic. Pure apart from the deadline timers.
 *
 * A confirmation for a batch never acknowledged is ingestion's mistake (INVALID_ARGUMENT); a
 * report that cannot wait any longer (the flush deadline, the stream ending) is ABORTED: its
 * offsets were never committed, so ingestion re-reads them.
 */
import { SluiceError } from '#shared/errors.js';
import { status } from '@grpc/grpc-js';
import { WORK_DROPPED } from './errors.js';

export type ConfirmationFailure = 'protocol' | 'deadline' | 'closed';

export class ConfirmationError extends SluiceError {
  constructor(
    readonly reason: ConfirmationFailure,
    message: string,
    details: Record<string, string>,
  ) {
    super(reason === 'protocol' ? status.INVALID_ARGUMENT : status.ABORTED, message, details);
    this.name = 'ConfirmationError';
  }
}

/** The report of flush `flushId` is given up: it never reaches the coordinator. */
const abandoned = (reason: ConfirmationFailure, flushId: string, why: string) =>
  new ConfirmationError(reason, `flush ${flushId}: ${why}; ${WORK_DROPPED}`, { flush_id: flushId });

interface Waiter {
  sequence: number;
  flushId: string;
  resolve(): void;
  reject(err: ConfirmationError): void;
  timer: NodeJS.Timeout;
}

export class ErrorConfirmations {
  /** The last batch acknowledged, and the last one whose ack carried error records. */
  private acked = 0;
  private owed = 0;
  private confirmed = 0;
  /** Why the stream ended, once it did: no report can be confirmed after that. */
  private closedBecause: string | null = null;
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
        'protocol',
        `ErrorsProduced names batch ${sequence}, but the batches acknowledged so far end at ${this.acked}`,
        { sequence: String(sequence) },
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

  /**
   * Resolves once batch `sequence` is confirmed; rejects at deadlineMs (epoch ms) or on close,
   * naming the flush whose report waits.
   */
  wait(sequence: number, flushId: string, deadlineMs: number, nowMs: number): Promise<void> {
    if (sequence <= this.confirmed) return Promise.resolve();
    if (this.closedBecause !== null) return Promise.reject(abandoned('closed', flushId, this.closedBecause));
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = {
        sequence,
        flushId,
        resolve,
        reject,
        timer: setTimeout(
          () => {
            this.settle(waiter).reject(
              abandoned(
                'deadline',
                flushId,
                `the error records of batch ${sequence} were not confirmed produced to the error topic by the flush deadline (confirmed up to batch ${this.confirmed})`,
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
    this.closedBecause ??= reason;
    for (const w of this.waiters) this.settle(w).reject(abandoned('closed', w.flushId, this.closedBecause));
  }

  private settle(w: Waiter): Waiter {
    clearTimeout(w.timer);
    this.waiters.delete(w);
    return w;
  }
}
