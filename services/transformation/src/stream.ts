/**
 * The Transform bidi stream over gRPC: an open message, then ordered batches, one ack per
 * batch, and ErrorsProduced confirmations (ERROR_TOPIC policy) among them. The stream ends
 * when ingestion half-closes it (normal end), cancels it (rewind, rebalance), when a batch is
 * refused, when a flush report is lost or not confirmed in time, or when this process drains
 * for shutdown. In every case the session closes: unreported files are deleted.
 */
import type * as grpc from '@grpc/grpc-js';
import { status } from '@grpc/grpc-js';
import type { TransformRequest, TransformResponse } from '#shared/gen/sluice/v1/transformation.js';
import { alreadyExists, invalidArgument, SluiceError, unavailable } from '#shared/errors.js';
import type { Logger } from '#shared/logger.js';
import { releaseBatch } from './request-decoder.js';
import { TransformSession, type SessionDeps } from './session.js';

type Call = grpc.ServerDuplexStream<TransformRequest, TransformResponse>;

/** Messages read ahead of processing before the socket is paused (backpressure to ingestion). */
const READ_AHEAD = 4;

/**
 * The request side of a call as an async queue: next() resolves the next message, null at
 * the client's half-close, and rejects once the call is cancelled or fail() was called.
 */
export class Inbox {
  private readonly queue: TransformRequest[] = [];
  private ended = false;
  private error: SluiceError | null = null;
  private waiter: { resolve: (m: TransformRequest | null) => void; reject: (e: SluiceError) => void } | null = null;
  private paused = false;

  constructor(private readonly call: Call) {
    call.on('data', (m: TransformRequest) => {
      this.queue.push(m);
      if (this.queue.length >= READ_AHEAD && !this.paused) {
        this.paused = true;
        call.pause();
      }
      this.wake();
    });
    call.on('end', () => {
      this.ended = true;
      this.wake();
    });
    call.on('cancelled', () => this.fail(new SluiceError(status.CANCELLED, 'the client cancelled the stream')));
    call.on('error', () => this.fail(new SluiceError(status.CANCELLED, 'the stream broke')));
  }

  /** Makes the next next() reject (a fatal flush failure, a drain); queued messages are dropped. */
  fail(err: SluiceError): void {
    this.error ??= err;
    this.wake();
  }

  next(): Promise<TransformRequest | null> {
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject };
      this.wake();
    });
  }

  private wake(): void {
    const w = this.waiter;
    if (!w) return;
    if (this.error) {
      this.waiter = null;
      w.reject(this.error);
    } else if (this.queue.length > 0) {
      this.waiter = null;
      w.resolve(this.queue.shift()!);
      if (this.paused && this.queue.length < READ_AHEAD) {
        this.paused = false;
        this.call.resume();
      }
    } else if (this.ended) {
      this.waiter = null;
      w.resolve(null);
    }
  }
}

/** The streams of this process, so shutdown can end them and worker ids stay unique. */
export class TransformStreams {
  private readonly open = new Map<string, { session: TransformSession; inbox: Inbox }>();
  private draining = false;

  constructor(
    private readonly deps: SessionDeps,
    private readonly logger: Logger,
  ) {}

  get size(): number {
    return this.open.size;
  }

  /** The Transform handler. Resolves when the stream ended normally; throws its end status otherwise. */
  async handle(call: Call): Promise<void> {
    if (this.draining) throw unavailable('transformation is shutting down; open the stream on another worker');
    const inbox = new Inbox(call);
    const first = await inbox.next().catch(() => null);
    if (first === null) return; // closed before it opened: nothing to do
    if (first.message?.$case !== 'open') throw invalidArgument('the first message of a Transform stream must be TransformOpen');
    const open = first.message.value;
    if (this.open.has(open.workerId))
      throw alreadyExists(`worker ${open.workerId} already has an open Transform stream here`, { worker_id: open.workerId });
    const session = await TransformSession.open(open, this.deps);
    // A drain or duplicate that raced with the (async) open.
    if (this.draining || this.open.has(open.workerId)) {
      await session.close();
      throw this.draining
        ? unavailable('transformation is shutting down; open the stream on another worker')
        : alreadyExists(`worker ${open.workerId} already has an open Transform stream here`);
    }
    this.open.set(open.workerId, { session, inbox });
    session.onFatal = (err) => inbox.fail(err);
    try {
      for (;;) {
        const msg = await inbox.next();
        if (msg === null) return;
        switch (msg.message?.$case) {
          case 'batch': {
            const batch = msg.message.value;
            const ack = await session.batch(batch);
            // Transformed: what outlives the batch holds copies, so its message may be reused.
            releaseBatch(batch);
            call.write({ message: { $case: 'ack', value: ack } });
            break;
          }
          case 'errorsProduced':
            session.errorsProduced(msg.message.value.sequence);
            break;
          case 'open':
            throw invalidArgument('TransformOpen may only be sent once, as the first message');
          default:
            throw invalidArgument('a Transform stream message must be a batch or ErrorsProduced');
        }
      }
    } finally {
      this.open.delete(open.workerId);
      await session.close();
    }
  }

  /**
   * Graceful shutdown: refuses new streams and ends the open ones at their next batch
   * boundary with UNAVAILABLE, so ingestion reopens elsewhere and re-reads from the
   * committed offsets. Unreported files are deleted, never reported half-written.
   */
  async drain(): Promise<void> {
    this.draining = true;
    const all = [...this.open.values()];
    if (all.length > 0) this.logger.info({ streams: all.length }, 'ending open Transform streams for shutdown');
    for (const { inbox } of all) inbox.fail(unavailable('transformation is shutting down; reopen the stream on another worker'));
    await Promise.all(all.map(({ session }) => session.close()));
  }
}
