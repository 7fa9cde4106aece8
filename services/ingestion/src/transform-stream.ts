/**
 * One incarnation of a job's Transform stream (TransformOpen, then ordered RecordBatches; one
 * BatchAck per batch comes back). A stream is never reused after a rewind or rebalance: the
 * runner cancels it, which tells transformation to delete its open files, and opens a new one
 * under a new worker_id.
 */
import * as grpc from '@grpc/grpc-js';
import type {
  TransformationServiceService,
  BatchAck,
  TransformOpen,
  TransformRequest,
  TransformResponse,
} from '#shared/gen/sluice/v1/transformation.js';
import type { OffsetRange } from '#shared/gen/sluice/v1/types.js';
import type { ServiceClient } from '#shared/grpc/client.js';
import type { FetchedRecords } from './kafka/fetched-records.js';
import { encodeBatch } from './batch-encoder.js';
import { FRAME_HEADER_BYTES, framedInPlace } from '#shared/grpc/framing.js';
import { requestBuffers } from './request-buffers.js';

/** What a record costs the in-flight budget beyond its key and value (and what a batch costs). */
export const RECORD_OVERHEAD_BYTES = 64;

/** Records of one partition as a fetch returned them, and which of them to send. */
export interface RecordsToSend {
  topic: string;
  partition: number;
  records: FetchedRecords;
  /** Indexes into `records`, in offset order. */
  send: ArrayLike<number>;
}

export type TransformationClient = ServiceClient<typeof TransformationServiceService>;

export interface StreamListener {
  onAck(ack: BatchAck): void;
  /**
   * The stream ended without being asked to (transformation failed or went away). `fatal`:
   * re-reading cannot help (streamEndIsFatal), so the job must fail instead of resyncing.
   */
  onBroken(reason: string, fatal: boolean): void;
}

/**
 * Whether a stream's end is a verdict on the job rather than an accident. Transformation
 * answers FAILED_PRECONDITION when the job itself cannot go on: a record its `fail` policy (or
 * an exhausted `skipUpTo` budget) refused, an error table that cannot hold refused records.
 * Re-reading would meet the same record and end the same way, forever; every other end (a
 * restart, a network break, a deadline, a protocol slip) is worth a resync.
 */
export function streamEndIsFatal(code: number | undefined): boolean {
  return code === grpc.status.FAILED_PRECONDITION;
}

export class TransformStream {
  private sequence = 0;
  private closed = false;
  private readonly call: grpc.ClientDuplexStream<TransformRequest | Buffer, TransformResponse>;
  private readonly buffers = requestBuffers();

  constructor(
    client: TransformationClient,
    readonly open: TransformOpen,
    listener: StreamListener,
  ) {
    this.call = client.openStream('transform');
    this.call.on('data', (response: TransformResponse) => {
      if (response.message?.$case === 'ack') listener.onAck(response.message.value);
    });
    const broken = (reason: string, fatal: boolean) => {
      if (this.closed) return;
      this.closed = true;
      listener.onBroken(reason, fatal);
    };
    this.call.on('error', (err: grpc.ServiceError) => broken(err.details || err.message, streamEndIsFatal(err.code)));
    this.call.on('end', () => broken('transformation ended the stream', false));
    this.call.write({ message: { $case: 'open', value: open } });
  }

  get workerId(): string {
    return this.open.workerId;
  }

  get isOpen(): boolean {
    return !this.closed;
  }

  /**
   * Sends one batch: its covers and fetched records of one partition, in offset order (none
   * for a batch of covers only), with the batch span's `traceparent`. The records are encoded
   * (copied) before this returns, so they need not outlive the call. Returns its sequence
   * number (1, 2, … within the stream) and what it costs the in-flight budget.
   */
  send(
    covers: OffsetRange[],
    records?: RecordsToSend,
    traceparent = '',
  ): { sequence: number; inFlightBytes: number; payloadBytes: number } {
    if (this.closed) throw new Error(`Transform stream ${this.workerId} is closed`);
    const sequence = ++this.sequence;
    let buffer: Buffer | null = null;
    const { request, inFlightBytes, payloadBytes } = encodeBatch(
      sequence,
      covers,
      records?.topic ?? '',
      records?.partition ?? 0,
      records?.records ?? null,
      records?.send ?? [],
      RECORD_OVERHEAD_BYTES,
      traceparent,
      // The request goes after room for its gRPC frame header, so it is sent without a copy.
      (bytes) => (buffer = this.buffers.take(FRAME_HEADER_BYTES + bytes)).subarray(FRAME_HEADER_BYTES),
    );
    // Written to the socket (the client has no retry buffer): the buffer may carry a later batch.
    this.call.write(framedInPlace(buffer!, request.length), (err: Error | null | undefined) => {
      if (!err) this.buffers.give(buffer!);
    });
    return { sequence, inFlightBytes, payloadBytes };
  }

  /**
   * ErrorsProduced: the error records of batches up to `sequence` are in the error topic, so
   * transformation may report offsets covering them. A closed stream has nothing to report.
   */
  confirmErrorsProduced(sequence: number): void {
    if (this.closed) return;
    this.call.write({ message: { $case: 'errorsProduced', value: { sequence } } });
  }

  /** Half-closes after everything sent was acknowledged (a graceful stop). */
  end(): void {
    if (this.closed) return;
    this.closed = true;
    this.call.end();
  }

  /** Drops the stream and its uncommitted work (rewind, rebalance, failure). */
  cancel(): void {
    this.closed = true;
    this.call.cancel();
  }
}
