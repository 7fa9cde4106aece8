/**
 * How the transformation fails. Every failure a stream or call can end with is a SluiceError
 * (the shared base, #shared/errors.js), born typed where it is found, with its kind (the gRPC
 * status code) and a message and details naming what was wrong:
 *
 * | error                  | module           | kind                                    |
 * | ---------------------- | ---------------- | --------------------------------------- |
 * | SpecError              | core/errors.ts   | INVALID_ARGUMENT                        |
 * | CoverageError          | coverage.ts      | INVALID_ARGUMENT                        |
 * | ConfirmationError      | confirmations.ts | INVALID_ARGUMENT (protocol) or ABORTED  |
 * | ReportError            | reports.ts       | ABORTED                                 |
 * | FileSetError           | files.ts         | FAILED_PRECONDITION                     |
 * | ErrorTableShapeError   | error-sink.ts    | FAILED_PRECONDITION                     |
 * | DirtyRecordError       | here             | FAILED_PRECONDITION                     |
 *
 * Nothing in between turns one of them into a status: the server wrapper
 * (#shared/grpc/server.js) does that once, at the boundary, and answers anything untyped as
 * INTERNAL without leaking it. Code in between may only add what it was doing (withContext).
 */
import { SluiceError } from '#shared/errors.js';
import { status } from '@grpc/grpc-js';

/** What ingestion must do after an ABORTED stream, said in every such message. */
export const WORK_DROPPED = "the stream's uncommitted work is dropped, re-read it from the committed offsets";

/** A record the job's FAIL policy (or an exhausted SKIP budget) refused: the stream ends naming it. */
export class DirtyRecordError extends SluiceError {
  constructor(
    readonly reason: string,
    /** The policy's description of the refusal (it names the record's topic, partition and offset). */
    description: string,
    record: { topic: string; partition: number; offset: number },
  ) {
    super(status.FAILED_PRECONDITION, `dirty record refused (${reason}): ${description}`, {
      topic: record.topic,
      partition: String(record.partition),
      offset: String(record.offset),
      reason,
    });
    this.name = 'DirtyRecordError';
  }
}

/** The same failure (kind and details kept) with what was being done in front of its message. */
export function withContext(what: string, err: SluiceError): SluiceError {
  return new SluiceError(err.code, `${what}: ${err.message}`, err.details);
}
