/**
 * The commit coordinator of this process: one TableCoordinator per table it has heard of
 * (a heartbeat, a report or a TriggerFlush names it), the NATS inputs, and the gRPC
 * handlers. It keeps no state that matters across restarts: committed offsets and snapshots
 * are in the catalog, workers announce themselves, and a report lost in a crash shows up as
 * a gap that rewinds its worker.
 */
import type {
  GetCommitStatusRequest,
  GetCommitStatusResponse,
  ReportDataFilesRequest,
  ReportDataFilesResponse,
  TriggerFlushRequest,
  TriggerFlushResponse,
} from '#shared/gen/sluice/v1/commit.js';
import { WorkerHeartbeat } from '#shared/gen/sluice/v1/events.js';
import type { TableRef } from '#shared/gen/sluice/v1/types.js';
import { failedPrecondition, grpcCode, grpcMessage, invalidArgument, SluiceError } from '#shared/errors.js';
import { status } from '@grpc/grpc-js';
import { randomUUID } from 'node:crypto';
import type { Announcer } from './announcer.js';
import type { CoordinatorContext } from './context.js';
import { CommitError } from './errors.js';
import { JobTables } from './job-tables.js';
import type { CommitPeer } from './peers.js';
import { checkReportedFiles, checkRowsCovered } from './report-files.js';
import { TableCoordinator } from './table.js';

const IDENT = /^[A-Za-z_][A-Za-z0-9_-]*$/;

function checkRef(ref: TableRef | undefined, field: string): TableRef {
  if (!ref || !IDENT.test(ref.database) || !IDENT.test(ref.table)) {
    throw invalidArgument(`${field} must name a database and a table (letters, digits, _ and -), got ${JSON.stringify(ref ?? null)}`, {
      field,
    });
  }
  return ref;
}

export class CommitCoordinator {
  private readonly tables = new Map<string, TableCoordinator>();
  private readonly jobTables: JobTables;
  private readonly sweeper: NodeJS.Timeout;

  constructor(
    readonly ctx: CoordinatorContext,
    private readonly announce: Announcer,
  ) {
    this.jobTables = new JobTables(ctx.catalog);
    // Worker TTLs are checked on a timer too, so a round waiting for a dead worker ends
    // without waiting for its deadline.
    this.sweeper = setInterval(
      () => {
        for (const t of this.tables.values()) t.sweep();
      },
      Math.max(50, Math.floor(ctx.settings.workerTtlMs / 4)),
    );
    this.sweeper.unref();
  }

  table(ref: TableRef): TableCoordinator {
    const key = `${ref.database}.${ref.table}`;
    let t = this.tables.get(key);
    if (!t) {
      t = new TableCoordinator({ database: ref.database, table: ref.table }, this.ctx, this.announce, () => this.pendingFiles());
      this.tables.set(key, t);
    }
    return t;
  }

  /** Files reported to this process and not committed yet, over every table and job. */
  private *pendingFiles(): Iterable<string> {
    for (const t of this.tables.values()) for (const p of t.allPipelines()) yield* p.pendingFiles();
  }

  onHeartbeat(payload: Uint8Array): void {
    const hb = WorkerHeartbeat.decode(payload);
    if (!hb.table || !hb.job || !hb.workerId) return; // not ours to interpret; nothing to act on
    this.table(hb.table).pipeline(hb.job).onHeartbeat(hb);
  }

  async reportDataFiles(req: ReportDataFilesRequest): Promise<ReportDataFilesResponse> {
    const ref = checkRef(req.table, 'table');
    if (!req.job) throw invalidArgument('job is required', { field: 'job' });
    if (!req.workerId) throw invalidArgument('worker_id is required', { field: 'worker_id' });
    await checkReportedFiles(this.ctx, ref, req); // refused whole, naming the file, before anything is admitted
    // An error table's report belongs to the job's own pipeline: it is committed in the same
    // round as the data report it came with, by whoever coordinates the job's table.
    const role = await this.jobTables.role(req.job, ref);
    const overfull = role.kind === 'errors' ? undefined : checkRowsCovered(req);
    if (overfull) throw invalidArgument(`report of worker ${req.workerId}: ${overfull}; nothing of it is admitted`, { field: 'files' });
    const table = this.table(role.jobTable);
    try {
      await table.leaseEpoch();
    } catch (err) {
      if (err instanceof SluiceError) throw err; // e.g. the table does not exist
      // Another replica holds the lease: the report is its to take.
      const holder = this.holderOf(table, req.forwarded);
      if (holder) return forwarded(() => holder.reportDataFiles({ ...req, forwarded: true }));
      // Nobody we can reach holds it: refuse, so the worker does not believe its data is on its
      // way. Its next report to the right coordinator will not fit and rewind it.
      this.ctx.logger.warn(
        { table: `${ref.database}.${ref.table}`, worker: req.workerId, err: (err as Error).message },
        'report refused: commit lease not held',
      );
      return { accepted: false };
    }
    const pipeline = table.pipeline(req.job);
    if (role.kind === 'errors') {
      pipeline.onErrorReport(req);
      // Its appends need no lease, but its maintenance (snapshot expiry, compaction, orphan
      // cleanup) runs where its lease is held: take it if nobody else has.
      void this.table(ref)
        .leaseEpoch()
        .catch(() => undefined);
    } else pipeline.onReport(req);
    return { accepted: true };
  }

  async triggerFlush(req: TriggerFlushRequest): Promise<TriggerFlushResponse> {
    const ref = checkRef(req.table, 'table');
    const table = this.table(ref);
    const pipelines = req.job ? [table.pipeline(req.job)] : table.allPipelines();
    const flushId = randomUUID();
    try {
      if (pipelines.length === 0) {
        await table.leaseEpoch();
        return { flushId }; // nothing writes this table: there is nothing to flush
      }
      // One id for every job of the table: a caller waits for CommittedEvents naming it.
      await Promise.all(pipelines.map((p) => p.trigger('rpc', flushId)));
    } catch (err) {
      if (err instanceof CommitError && err.kind === 'fenced') {
        const holder = this.holderOf(table, req.forwarded);
        if (holder) return forwarded(() => holder.triggerFlush({ ...req, forwarded: true }));
        throw failedPrecondition(err.message, { table: `${ref.database}.${ref.table}` });
      }
      throw err;
    }
    return { flushId };
  }

  async getCommitStatus(req: GetCommitStatusRequest): Promise<GetCommitStatusResponse> {
    const ref = checkRef(req.table, 'table');
    const table = this.table(ref);
    // The holder's view, when another replica is known to hold the table's lease.
    const holder = table.lease.epoch === undefined ? this.holderOf(table, req.forwarded) : undefined;
    if (holder) return forwarded(() => holder.getCommitStatus({ ...req, forwarded: true }));
    return table.status();
  }

  /**
   * The replica to forward a table's calls to: the lease holder, when the catalog named one
   * other than this process, and the call was not forwarded already (one hop at most: two
   * replicas that each believe the other holds the lease refuse instead of bouncing the call).
   */
  private holderOf(table: TableCoordinator, alreadyForwarded: boolean | undefined): CommitPeer | undefined {
    const address = table.lease.holderAddress;
    if (alreadyForwarded || !address || !this.ctx.peers || address === this.ctx.advertisedAddress?.()) return undefined;
    return this.ctx.peers.get(address);
  }

  async stop(): Promise<void> {
    clearInterval(this.sweeper);
    await Promise.all([...this.tables.values()].map((t) => t.stop()));
    this.ctx.peers?.close();
  }
}

/**
 * The answer of the replica a call was forwarded to, its refusal passed on with its own code
 * and message: the caller (a transformation worker) retries UNAVAILABLE as it would for us.
 */
async function forwarded<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    throw new SluiceError(grpcCode(err) ?? status.UNAVAILABLE, `commit lease holder: ${grpcMessage(err)}`);
  }
}
