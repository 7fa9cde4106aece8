/**
 * Flush reports: what a stream tells the commit service when a flush reaches it, and how
 * it makes sure the report is not lost silently. UNAVAILABLE (the coordinator restarting,
 * a connection refused) is retried with backoff for a bounded time; anything else, or a
 * report the coordinator does not accept, is a ReportError (ABORTED) and the stream fails, so
 * ingestion rewinds to the committed offsets and nothing depends on the lost report.
 *
 * A retry can deliver a report twice (the first attempt's response was lost); the coordinator
 * recognises the copy by worker, flush, table and content and answers it accepted. That is
 * why a DEADLINE_EXCEEDED attempt is retried too.
 */
import { status } from '@grpc/grpc-js';
import { setTimeout as sleep } from 'node:timers/promises';
import type { CommitServiceService, ReportDataFilesRequest } from '#shared/gen/sluice/v1/commit.js';
import type { DataFile, ErrorCount, OffsetRange, RowChanges, Schema, TableRef } from '#shared/gen/sluice/v1/types.js';
import { grpcCode, grpcMessage, SluiceError } from '#shared/errors.js';
import type { ServiceClient } from '#shared/grpc/client.js';
import { WORK_DROPPED } from './errors.js';

export type CommitClient = ServiceClient<typeof CommitServiceService>;

export class ReportError extends SluiceError {
  constructor(
    /** Why the report was not delivered (the message adds what ingestion must do now). */
    readonly why: string,
    readonly flushId: string,
  ) {
    super(status.ABORTED, `${why}; ${WORK_DROPPED}`, { flush_id: flushId });
    this.name = 'ReportError';
  }
}

export interface ReportInput {
  flushId: string;
  table: TableRef;
  job: string;
  workerId: string;
  files: DataFile[];
  offsets: OffsetRange[];
  /** Error-table reports of the same flush sent before this one (data reports only). */
  errorReports?: number;
  /** The schema the files were written with, when the stream evolved the table's (data reports only). */
  schema?: Schema;
  /** Records refused among the covered offsets, by reason (data reports only). */
  errorCounts?: ErrorCount[];
  /** A keyed table's row changes (data reports only). */
  changes?: RowChanges;
}

export function buildReport(r: ReportInput): ReportDataFilesRequest {
  let records = 0;
  for (const f of r.files) records += f.recordCount;
  return {
    flushId: r.flushId,
    table: r.table,
    job: r.job,
    workerId: r.workerId,
    files: r.files,
    offsets: r.offsets,
    recordCount: records,
    errorReports: r.errorReports || undefined,
    schema: r.schema,
    errorCounts: r.errorCounts ?? [],
    changes: r.changes,
  };
}

export interface RetryPolicy {
  /** How long UNAVAILABLE is retried before the report counts as failed. */
  budgetMs: number;
  /** Backoff between attempts: first, doubling up to max. */
  firstBackoffMs: number;
  maxBackoffMs: number;
}

/** The backoff before attempt `attempt` (1-based retries), capped. */
export const backoffMs = (p: RetryPolicy, attempt: number): number => Math.min(p.maxBackoffMs, p.firstBackoffMs * 2 ** (attempt - 1));

const describe = (t: TableRef | undefined) => (t ? `${t.database}.${t.table}` : '?');

/** Failures another attempt can fix: the coordinator restarting, or an answer that got lost. */
const RETRIED = new Set<number>([status.UNAVAILABLE, status.DEADLINE_EXCEEDED]);

/** Sends a report until it is accepted; throws ReportError when it cannot be delivered. */
export async function sendReport(
  commit: CommitClient,
  report: ReportDataFilesRequest,
  policy: RetryPolicy,
  now: () => number = Date.now,
): Promise<void> {
  const giveUpAt = now() + policy.budgetMs;
  for (let attempt = 1; ; attempt++) {
    let accepted: boolean;
    try {
      // One attempt per call: the retry loop is here, with its own budget.
      ({ accepted } = await commit.reportDataFiles(report, { retries: 0 }));
    } catch (err) {
      const wait = backoffMs(policy, attempt);
      if (RETRIED.has(grpcCode(err) ?? -1) && now() + wait < giveUpAt) {
        await sleep(wait);
        continue;
      }
      throw new ReportError(
        `report of flush ${report.flushId} for ${describe(report.table)} failed after ${attempt} attempt(s): ${grpcMessage(err)}`,
        report.flushId,
      );
    }
    if (!accepted) {
      throw new ReportError(
        `the commit service did not accept the report of flush ${report.flushId} for ${describe(report.table)} (it does not coordinate that table now)`,
        report.flushId,
      );
    }
    return;
  }
}
