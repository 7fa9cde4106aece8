/**
 * The flush protocol for one job writing one table (DESIGN.md, "Flush rounds"): decide when
 * a flush is due, run the round (FlushEvent, wait for the live workers or the deadline),
 * admit the reports by offset contiguity, commit, announce. One round at a time; reports
 * that arrive while a round is committing wait for the next one, and so does a late worker.
 */
import { context, ROOT_CONTEXT, trace, type SpanContext } from '@opentelemetry/api';
import { withSpan } from '#shared/tracing.js';
import { randomUUID } from 'node:crypto';
import type { ReportDataFilesRequest } from '#shared/gen/sluice/v1/commit.js';
import { performance } from 'node:perf_hooks';
import { commitMetrics } from './metrics.js';
import type { WorkerHeartbeat } from '#shared/gen/sluice/v1/events.js';
import type { DataFile, OffsetRange, Schema, TableRef } from '#shared/gen/sluice/v1/types.js';
import { grpcMessage } from '#shared/errors.js';
import { commitAppend, commitErrorAppend, instancePartition, type PartitionRef, sumErrorCounts } from './append.js';
import { tableName } from './catalog.js';
import { CommitError } from './errors.js';
import type { Announcer } from './announcer.js';
import { DeliveryLog } from './deliveries.js';
import { ErrorReports } from './error-reports.js';
import { admitReports, advancesAny, describeMisfit, OffsetLedger } from './offsets.js';
import { FlushRound } from './round.js';
import { mergeReportedSchemas } from './schema-merge.js';
import type { CoordinatorContext } from './context.js';
import { WorkerRegistry } from './workers.js';

export interface PipelineHost {
  readonly ref: TableRef;
  /** The held lease epoch, acquiring it if needed; throws CommitError('fenced') otherwise. */
  leaseEpoch(): Promise<number>;
  leaseLost(reason: string): void;
  /** Runs fn after every other commit or maintenance step of the table (one at a time). */
  exclusive<T>(fn: () => Promise<T>): Promise<T>;
  committed(snapshotId: number, atMs: number): void;
}

interface JobSettings {
  intervalMs: number;
  bufferBytes: number;
  /** A scheduled instance's run or rerun: its first commit replaces this partition. */
  replacePartition?: PartitionRef;
}

/** A data report waiting for its round, with the error-table reports it came with. */
interface Queued {
  report: ReportDataFilesRequest;
  /** Emptied once committed, so a retried round does not append them twice. */
  errors: ReportDataFilesRequest[];
  readonly offsets: readonly OffsetRange[];
  /** The span that received the report (its ReportDataFiles call): the round's span links to it. */
  readonly trace: SpanContext | undefined;
}

export class JobPipeline {
  readonly workers: WorkerRegistry;
  private pending: Queued[] = [];
  private readonly deliveries = new DeliveryLog();
  private readonly errorReports = new ErrorReports();
  private round: FlushRound | undefined;
  private roundTimer: NodeJS.Timeout | undefined;
  private committing: Promise<void> | undefined;
  private queued: { flushId: string; reason: string } | undefined;
  private ledger: OffsetLedger | undefined;
  /** Whether the job had committed when the ledger was read: only its first commit replaces a partition. */
  private committedBefore = false;
  private settings: JobSettings | undefined;
  private intervalTimer: NodeJS.Timeout | undefined;
  /** Bumped whenever the interval timer is disarmed, so a settings load in flight does not re-arm it. */
  private intervalGeneration = 0;
  private intervalArmed = false;
  /** When the last round started (ctx.now()): interval rounds start one interval apart. */
  private lastRoundAt: number | undefined;
  /** Reports of the round being committed. */
  private inCommit: Queued[] = [];
  private stopped = false;
  /** A buffer-bytes trigger is waiting for the lease: further beats must not queue another. */
  private starting = false;

  private get metricLabels() {
    return { table: tableName(this.host.ref), job: this.job };
  }

  constructor(
    private readonly host: PipelineHost,
    readonly job: string,
    private readonly ctx: CoordinatorContext,
    private readonly announce: Announcer,
  ) {
    this.workers = new WorkerRegistry(ctx.settings.workerTtlMs);
  }

  private get where() {
    return { table: tableName(this.host.ref), job: this.job };
  }

  // -- inputs ---------------------------------------------------------------------------

  onHeartbeat(hb: WorkerHeartbeat): void {
    const now = this.ctx.now();
    this.workers.beat(hb.workerId, now, hb.bufferedBytes, hb.alive);
    if (!hb.alive) {
      this.round?.workerGone(hb.workerId);
      this.forget(hb.workerId);
    }
    this.ensureIntervalTimer();
    const limit = this.settings?.bufferBytes ?? 0;
    if (limit > 0 && !this.round && !this.queued && !this.committing && !this.starting && this.workers.bufferedBytes() >= limit) {
      this.starting = true;
      void this.trigger('buffer-bytes')
        .catch(() => undefined)
        .finally(() => (this.starting = false));
    }
    this.maybeComplete();
  }

  /**
   * Queues a data report for the open round (or the next one), with the error-table reports
   * it says came before it. A second delivery of the same report is ignored; one whose error
   * reports are missing is dropped and its worker rewound (committing it alone would commit
   * offsets of refused records whose rows are nowhere).
   */
  onReport(report: ReportDataFilesRequest): void {
    this.workers.sawReport(report.workerId, this.ctx.now());
    if (this.isRepeat(report)) return;
    const errors = this.errorReports.take(report.workerId, report.flushId);
    const expected = report.errorReports ?? 0;
    if (errors.length < expected) {
      this.rewind([
        {
          workerId: report.workerId,
          reason: `flush ${report.flushId}: ${expected} error-table report(s) announced, ${errors.length} received (coordinator restarted in between?)`,
        },
      ]);
    } else {
      this.pending.push({ report, errors, offsets: report.offsets, trace: trace.getSpanContext(context.active()) });
    }
    if (this.round && report.flushId === this.round.flushId) this.round.reported(report.workerId);
    this.ensureIntervalTimer();
    this.maybeComplete();
  }

  /** Keeps an error-table report until the data report of its worker and flush takes it. */
  onErrorReport(report: ReportDataFilesRequest): void {
    this.workers.sawReport(report.workerId, this.ctx.now());
    if (this.isRepeat(report)) return;
    this.errorReports.add(report);
  }

  private isRepeat(report: ReportDataFilesRequest): boolean {
    if (!this.deliveries.repeated(report)) return false;
    this.ctx.logger.info(
      { ...this.where, worker: report.workerId, flushId: report.flushId, table: tableName(report.table!) },
      'report delivered twice; the copy is ignored',
    );
    return true;
  }

  /** Expires silent workers; a round waiting only for them completes. */
  sweep(): void {
    for (const gone of this.workers.expire(this.ctx.now())) this.round?.workerGone(gone);
    for (const id of this.deliveries.workerIds()) if (!this.workers.has(id)) this.forget(id);
    this.maybeComplete();
  }

  /** A worker that went away: what it left behind can never be paired or repeated. */
  private forget(workerId: string): void {
    this.deliveries.forget(workerId);
    const orphaned = this.errorReports.forget(workerId);
    if (orphaned > 0)
      this.ctx.logger.warn(
        { ...this.where, worker: workerId, reports: orphaned },
        'worker went away between its error-table and data reports; its error files are orphans',
      );
  }

  /**
   * Starts a flush round (or queues one behind the round in progress) and returns its id.
   * A queued round has not published its FlushEvent yet, so every trigger that lands on it
   * is covered by it: triggers coalesce, and none returns an id whose round started before
   * it was called.
   */
  async trigger(reason: string, flushId?: string): Promise<string> {
    if (this.stopped) throw new CommitError('fenced', `coordinator for ${tableName(this.host.ref)} is stopping`);
    await this.host.leaseEpoch();
    if (this.round || this.committing) {
      this.queued ??= { flushId: flushId ?? randomUUID(), reason };
      return this.queued.flushId;
    }
    return this.startRound(flushId ?? randomUUID(), reason);
  }

  // -- the round ------------------------------------------------------------------------

  private startRound(flushId: string, reason: string): string {
    const now = this.ctx.now();
    this.lastRoundAt = now;
    const deadlineMs = now + this.ctx.settings.flushTimeoutMs;
    this.round = new FlushRound(flushId, deadlineMs, this.workers.live(now), reason);
    this.clearIntervalTimer();
    this.announce.flush({ table: this.host.ref, flushId, deadlineMs, job: this.job });
    this.roundTimer = setTimeout(() => this.finishRound(), this.ctx.settings.flushTimeoutMs);
    this.roundTimer.unref();
    // Reports of this flush id may have raced ahead of the round (they never do in
    // practice, but counting them keeps completion exact).
    for (const q of this.pending) if (q.report.flushId === flushId) this.round.reported(q.report.workerId);
    this.maybeComplete();
    return flushId;
  }

  private maybeComplete(): void {
    if (this.round?.complete) this.finishRound();
  }

  private finishRound(): void {
    const round = this.round;
    if (!round) return;
    this.round = undefined;
    if (this.roundTimer) clearTimeout(this.roundTimer);
    this.roundTimer = undefined;
    const late = round.pendingWorkers();
    if (late.length > 0)
      this.ctx.logger.info(
        { ...this.where, flushId: round.flushId, late },
        'flush round closed at its deadline; late workers go to the next round',
      );
    const reports = this.pending;
    this.pending = [];
    this.inCommit = reports;
    this.committing = this.host
      .exclusive(() => this.commitRound(round.flushId, reports))
      .catch((err) => this.ctx.logger.error({ ...this.where, flushId: round.flushId, err: (err as Error).message }, 'flush round failed'))
      .finally(() => {
        const startedAt = round.deadlineMs - this.ctx.settings.flushTimeoutMs;
        commitMetrics().roundEnded(this.metricLabels, (this.ctx.now() - startedAt) / 1000);
        this.committing = undefined;
        this.inCommit = [];
        // Read the job's interval and buffer size again for the next round: a job edited in
        // the catalog takes effect without restarting the coordinator.
        this.settings = undefined;
        const next = this.queued;
        this.queued = undefined;
        if (next && !this.stopped) {
          void this.trigger(next.reason, next.flushId).catch((err) =>
            this.ctx.logger.warn({ ...this.where, err: (err as Error).message }, 'queued flush not started'),
          );
        } else this.ensureIntervalTimer();
      });
  }

  private async offsets(): Promise<OffsetLedger> {
    if (!this.ledger) {
      const { offsets, starts } = await this.ctx.catalog.getCommittedOffsets({ job: this.job });
      this.committedBefore = offsets.length > 0;
      // Only this table's partitions matter, but a job writes one table, so all of them are.
      this.ledger = OffsetLedger.fromCommitted(offsets, starts);
    }
    return this.ledger;
  }

  /**
   * Admission, commit, announcements. Runs with the table's exclusive section held. The
   * admitted reports' error-table files are committed first: a crash between the two commits
   * re-reads the records and duplicates error rows, but never commits an offset whose refused
   * record has no row.
   */
  private async commitRound(flushId: string, reports: Queued[], retriedOffsets = false): Promise<void> {
    const ledger = await this.offsets();
    let schema: Schema | undefined;
    ({ reports, schema } = await this.evolvedSchema(reports));
    const { admitted, dropped, offsets } = admitReports(ledger, reports);
    this.rewind(dropped.map((d) => ({ workerId: d.report.report.workerId, reason: describeMisfit(d.misfit) })));
    const files = admitted.flatMap((q) => q.report.files);
    const withErrors = admitted.filter((q) => q.errors.length > 0);
    if (files.length === 0 && withErrors.length === 0 && !advancesAny(offsets)) {
      // Nothing to commit; still answer the flush so a TriggerFlush caller is not left waiting.
      const { table } = await this.ctx.catalog.getTable({ ref: this.host.ref });
      this.announce.committed({
        table: this.host.ref,
        job: this.job,
        snapshotId: table?.currentSnapshotId ?? 0,
        addedRecords: 0,
        addedFiles: 0,
        offsets: [],
        committedAtMs: this.ctx.now(),
        flushId,
      });
      return;
    }
    let epoch: number;
    try {
      epoch = await this.host.leaseEpoch();
    } catch (err) {
      // Not ours to commit: whoever holds the lease rewinds these workers when their next
      // report does not continue its offsets.
      this.ctx.logger.warn({ ...this.where, flushId, err: (err as Error).message }, 'round dropped: commit lease not held');
      return;
    }
    const startedAt = performance.now();
    const replacePartition = this.committedBefore ? undefined : (await this.jobSettings()).replacePartition;
    try {
      await this.commitErrorRows(flushId, withErrors);
      // The round aggregates many batches' traces: its span links to each admitted report's.
      const links = admitted.flatMap((q) => (q.trace ? [{ context: q.trace }] : []));
      const roundAttributes = { 'sluice.job': this.job, 'sluice.flush_id': flushId, 'sluice.reports': admitted.length };
      const result = await withSpan(
        'commit.round',
        roundAttributes,
        () =>
          commitAppend({
            catalog: this.ctx.catalog,
            storage: this.ctx.storage,
            ref: this.host.ref,
            job: this.job,
            flushId,
            files,
            offsets,
            leaseEpoch: epoch,
            schema,
            errorCounts: sumErrorCounts(admitted.map((q) => q.report.errorCounts)),
            replacePartition,
            // A keyed table's workers report row changes with their files (row-changes.ts).
            rows: admitted.some((q) => q.report.changes)
              ? admitted.map((q) => ({ workerId: q.report.workerId, files: q.report.files, changes: q.report.changes }))
              : undefined,
          }),
        // A trace of its own, linked to the reports it commits (each in its flush's trace).
        { parent: ROOT_CONTEXT, links },
      );
      ledger.advance(offsets);
      this.committedBefore = true;
      commitMetrics().committed(this.metricLabels, files, result.addedRecords, (performance.now() - startedAt) / 1000);
      const at = this.ctx.now();
      this.host.committed(result.snapshotId, at);
      this.announce.committed({
        table: this.host.ref,
        job: this.job,
        snapshotId: result.snapshotId,
        addedRecords: result.addedRecords,
        addedFiles: result.addedFiles,
        offsets,
        committedAtMs: at,
        flushId,
      });
      this.ctx.logger.info(
        {
          ...this.where,
          flushId,
          snapshotId: result.snapshotId,
          files: result.addedFiles,
          records: result.addedRecords,
          attempts: result.attempts,
        },
        'snapshot committed',
      );
    } catch (err) {
      // Whatever happened, our picture of the committed offsets may be wrong now (a lost
      // response can hide a successful commit): read them again before the next round.
      this.ledger = undefined;
      const kind = err instanceof CommitError ? err.kind : 'catalog';
      if (kind === 'fenced') {
        this.host.leaseLost(grpcMessage(err));
        this.ctx.logger.warn({ ...this.where, flushId, err: (err as Error).message }, 'commit fenced: another coordinator owns this table');
        return;
      }
      if (kind === 'offsets-rejected' && !retriedOffsets) {
        // The catalog knows better (e.g. a commit we thought failed went through): admit
        // again against its offsets; what no longer fits is dropped and rewound.
        return this.commitRound(flushId, reports, true);
      }
      // The files are orphans now; the workers' next reports will not continue the
      // committed offsets, and that rewinds them.
      this.rewind(admitted.map((q) => ({ workerId: q.report.workerId, reason: `commit failed: ${(err as Error).message}` })));
      throw err;
    }
  }

  /**
   * The schema the round commits with its files, when workers evolved the table's
   * (schema-merge.ts); a report whose schema does not fit is dropped and its worker rewound.
   */
  private async evolvedSchema(reports: Queued[]): Promise<{ reports: Queued[]; schema: Schema | undefined }> {
    if (!reports.some((q) => q.report.schema)) return { reports, schema: undefined };
    const { table } = await this.ctx.catalog.getTable({ ref: this.host.ref });
    const merge = mergeReportedSchemas(
      table!.schema!,
      table!.lastColumnId,
      reports.map((q) => q.report.schema),
    );
    if (merge.misfits.length === 0) return { reports, schema: merge.schema ?? undefined };
    this.rewind(merge.misfits.map((m) => ({ workerId: reports[m.index].report.workerId, reason: m.reason })));
    const out = new Set(merge.misfits.map((m) => m.index));
    return { reports: reports.filter((_, i) => !out.has(i)), schema: merge.schema ?? undefined };
  }

  /** One append per error table for the admitted reports' refused records. */
  private async commitErrorRows(flushId: string, queued: Queued[]): Promise<void> {
    const byTable = new Map<string, { ref: TableRef; files: DataFile[] }>();
    for (const q of queued) {
      for (const e of q.errors) {
        const key = tableName(e.table!);
        let entry = byTable.get(key);
        if (!entry) byTable.set(key, (entry = { ref: e.table!, files: [] }));
        entry.files.push(...e.files);
      }
    }
    for (const [name, { ref, files }] of byTable) {
      if (files.length === 0) continue;
      const result = await commitErrorAppend({ catalog: this.ctx.catalog, storage: this.ctx.storage, ref, job: this.job, flushId, files });
      this.ctx.logger.info(
        { ...this.where, errorTable: name, flushId, snapshotId: result.snapshotId, files: result.addedFiles, records: result.addedRecords },
        'error rows committed',
      );
    }
    for (const q of queued) q.errors = [];
  }

  private rewind(items: { workerId: string; reason: string }[]): void {
    if (items.length > 0) commitMetrics().rewound(this.metricLabels, items.length);
    const seen = new Set<string>();
    for (const { workerId, reason } of items) {
      if (seen.has(workerId)) continue;
      seen.add(workerId);
      this.ctx.logger.warn({ ...this.where, workerId, reason }, 'report dropped; worker rewinds');
      this.announce.rewind({ job: this.job, workerId, table: this.host.ref, reason });
    }
  }

  // -- the interval trigger -------------------------------------------------------------

  private async jobSettings(): Promise<JobSettings> {
    if (!this.settings) {
      let intervalMs = this.ctx.settings.defaultIntervalMs;
      let bufferBytes = 0;
      let replacePartition: PartitionRef | undefined;
      try {
        const { job } = await this.ctx.catalog.getJob({ name: this.job });
        if (job && job.commitIntervalMs > 0) intervalMs = Math.max(1000, job.commitIntervalMs);
        if (job) bufferBytes = job.bufferBytes;
        replacePartition = job ? instancePartition(job) : undefined;
      } catch (err) {
        this.ctx.logger.warn({ ...this.where, err: grpcMessage(err) }, 'job settings unavailable; using the default commit interval');
      }
      this.settings = { intervalMs, bufferBytes, replacePartition };
    }
    return this.settings;
  }

  /**
   * Keeps one interval timer armed while the job has workers or reports and no round runs. It
   * fires one interval after the last round started, not after it ended: a round (the flush,
   * the commit) takes a few hundred milliseconds, and counting the interval from its end made
   * a record wait for the round it just missed, a whole interval, and the next round.
   */
  private ensureIntervalTimer(): void {
    if (this.stopped || this.intervalArmed || this.round || this.committing) return;
    this.intervalArmed = true;
    const generation = this.intervalGeneration;
    void this.jobSettings().then(({ intervalMs }) => {
      if (generation !== this.intervalGeneration || this.stopped) return;
      this.intervalTimer = setTimeout(
        () => {
          this.intervalTimer = undefined;
          this.intervalArmed = false;
          const idle = this.workers.live(this.ctx.now()).length === 0 && this.pending.length === 0;
          if (idle) return; // nothing to flush; the next beat or report re-arms the timer
          void this.trigger('interval').catch((err) =>
            this.ctx.logger.debug({ ...this.where, err: (err as Error).message }, 'interval flush skipped'),
          );
        },
        intervalDelayMs(intervalMs, this.lastRoundAt, this.ctx.now()),
      );
      this.intervalTimer.unref();
    });
  }

  private clearIntervalTimer(): void {
    if (this.intervalTimer) clearTimeout(this.intervalTimer);
    this.intervalTimer = undefined;
    this.intervalArmed = false;
    this.intervalGeneration++;
  }

  // -- status ---------------------------------------------------------------------------

  get inFlightFlushId(): string {
    return this.round?.flushId ?? this.queued?.flushId ?? '';
  }

  pendingWorkers(): string[] {
    return this.round?.pendingWorkers() ?? [];
  }

  /** Files reported but not committed yet: orphan cleanup must leave them alone. */
  pendingFiles(): string[] {
    const out = this.errorReports.files();
    for (const q of [...this.pending, ...this.inCommit]) {
      for (const r of [q.report, ...q.errors]) for (const f of r.files) out.push(f.filePath);
    }
    return out;
  }

  /** Waits for the commit in progress (graceful stop: nothing half-done). */
  async stop(): Promise<void> {
    this.stopped = true;
    this.clearIntervalTimer();
    if (this.roundTimer) clearTimeout(this.roundTimer);
    this.round = undefined;
    await this.committing;
  }
}

/**
 * How long the interval timer waits when armed at `now`: until one interval after the last
 * round started (at once if that has passed), or a whole interval when no round ran yet.
 */
export function intervalDelayMs(intervalMs: number, lastRoundAt: number | undefined, now: number): number {
  if (lastRoundAt === undefined) return intervalMs;
  return Math.min(intervalMs, Math.max(0, lastRoundAt + intervalMs - now));
}
