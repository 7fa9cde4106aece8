/**
 * Everything the coordinator does for one table: its commit lease, one pipeline per job
 * writing it, and the maintenance timer. Commits and maintenance of a table run one at a
 * time (`exclusive`), so this process never conflicts with itself; other writers (another
 * coordinator after a takeover, an external engine) are handled by rebase and fencing.
 */
import type { GetCommitStatusResponse } from '#shared/gen/sluice/v1/commit.js';
import type { TableRef } from '#shared/gen/sluice/v1/types.js';
import type { Announcer } from './announcer.js';
import { tableName } from './catalog.js';
import type { CoordinatorContext } from './context.js';
import { LeaseKeeper } from './lease.js';
import { runMaintenance, type MaintenanceReport } from './maintenance/index.js';
import { JobPipeline, type PipelineHost } from './pipeline.js';

export class TableCoordinator implements PipelineHost {
  readonly lease: LeaseKeeper;
  private readonly pipelines = new Map<string, JobPipeline>();
  private tail: Promise<unknown> = Promise.resolve();
  private maintenanceTimer: NodeJS.Timeout | undefined;
  private lastSnapshotId: number | undefined;
  private lastCommitAtMs = 0;
  private commits = 0;

  constructor(
    readonly ref: TableRef,
    private readonly ctx: CoordinatorContext,
    private readonly announce: Announcer,
    /**
     * Every file reported to this process and not committed yet, whichever pipeline holds it:
     * an error table's files wait in the pipeline of the job whose refused records they hold.
     */
    private readonly pendingFiles: () => Iterable<string>,
  ) {
    this.lease = new LeaseKeeper({
      catalog: ctx.catalog,
      ref,
      owner: ctx.owner,
      ttlMs: ctx.settings.leaseTtlMs,
      address: ctx.advertisedAddress,
      logger: ctx.logger,
      now: () => ctx.now(),
    });
    this.scheduleMaintenance();
  }

  pipeline(job: string): JobPipeline {
    let p = this.pipelines.get(job);
    if (!p) {
      p = new JobPipeline(this, job, this.ctx, this.announce);
      this.pipelines.set(job, p);
    }
    return p;
  }

  allPipelines(): JobPipeline[] {
    return [...this.pipelines.values()];
  }

  // -- PipelineHost -----------------------------------------------------------------------

  leaseEpoch(): Promise<number> {
    return this.lease.ensure();
  }

  leaseLost(reason: string): void {
    this.lease.lost(reason);
  }

  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.tail.then(fn, fn);
    this.tail = run.catch(() => undefined);
    return run;
  }

  committed(snapshotId: number, atMs: number): void {
    this.lastSnapshotId = snapshotId;
    this.lastCommitAtMs = atMs;
    this.commits++;
  }

  // -- maintenance ------------------------------------------------------------------------

  /** Expiry, compaction and orphan cleanup, only while this coordinator holds the lease. */
  async maintain(options: { nowMs?: number } = {}): Promise<MaintenanceReport> {
    const epoch = await this.lease.ensure();
    return this.exclusive(() =>
      runMaintenance({
        ctx: this.ctx,
        ref: this.ref,
        leaseEpoch: epoch,
        nowMs: options.nowMs ?? this.ctx.now(),
        pendingFiles: new Set(this.pendingFiles()),
        onCommitted: (snapshotId, at) => this.committed(snapshotId, at),
      }),
    );
  }

  private scheduleMaintenance(): void {
    const every = this.ctx.settings.maintenanceIntervalMs;
    if (every <= 0) return;
    this.maintenanceTimer = setTimeout(async () => {
      // Only a table this process already coordinates: the timer must not take a lease
      // away from the coordinator the table's workers report to.
      if (this.lease.epoch === undefined) return this.scheduleMaintenance();
      try {
        const report = await this.maintain();
        this.ctx.logger.info({ table: tableName(this.ref), ...report }, 'table maintenance done');
      } catch (err) {
        this.ctx.logger.warn({ table: tableName(this.ref), err: (err as Error).message }, 'table maintenance skipped');
      }
      this.scheduleMaintenance();
    }, every);
    this.maintenanceTimer.unref();
  }

  // -- status and lifecycle ---------------------------------------------------------------

  status(): GetCommitStatusResponse {
    const pipelines = this.allPipelines();
    return {
      lastSnapshotId: this.lastSnapshotId,
      lastCommitAtMs: this.lastCommitAtMs,
      commits: this.commits,
      leaseEpoch: this.lease.epoch ?? 0,
      pendingWorkers: [...new Set(pipelines.flatMap((p) => p.pendingWorkers()))].sort(),
      inFlightFlushId: pipelines.map((p) => p.inFlightFlushId).find((id) => id !== '') ?? '',
    };
  }

  sweep(): void {
    for (const p of this.pipelines.values()) p.sweep();
  }

  async stop(): Promise<void> {
    if (this.maintenanceTimer) clearTimeout(this.maintenanceTimer);
    await Promise.all(this.allPipelines().map((p) => p.stop()));
    await this.tail;
    this.lease.stop();
  }
}
