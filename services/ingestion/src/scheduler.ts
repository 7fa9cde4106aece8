/**
 * The scheduler of scheduled jobs (seed 001), inside the ingestion processes: no process of its
 * own. Each tick, the process holding the catalog's scheduler lease
 *   1. fires the instances that came due (all missed ones in order after downtime, or only the
 *      latest, by the schedule's catch-up) — the catalog creates each one's job exactly once;
 *   2. starts queued instances in scheduled order, up to the schedule's concurrency, as any job
 *      is started (recorded RUNNING and announced, so every ingestion process runs its members);
 *   3. every INGESTION_LATE_CHECK_MS, reads past each finished instance's end for records stamped
 *      inside its window and records them in the catalog (late records);
 *   4. with `lateData: rerun` or `append`, asks for one more attempt of each instance with late
 *      records no attempt has landed.
 * Everything it decides from is in the catalog, so a scheduler killed at any point is replaced
 * by the next lease holder, which carries on from there: an instance is never fired twice (the
 * catalog's unique key) and never skipped (the next due time is found from the last fired one).
 */
import type { KafkaMessage } from 'kafkajs';
import {
  type CatalogServiceService,
  CatchUp,
  InstanceRequest,
  InstanceState,
  type Job,
  type JobInstance,
  JobState,
  LateDataPolicy,
  type LateRecord,
} from '#shared/gen/sluice/v1/catalog.js';
import { grpcMessage } from '#shared/errors.js';
import type { ServiceClient } from '#shared/grpc/client.js';
import type { Logger } from '#shared/logger.js';
import { compileSchedule, type CompiledSchedule, fireTimes, MAX_FIRE_TIMES } from '#shared/schedule/cycle.js';
import { readRanges } from '#shared/kafka-ranges.js';
import { attemptsByInstance, coveredEnds, isLiveInstance } from '#shared/schedule/attempts.js';
import { createKafka, watermarks } from './kafka-source.js';

/** A clock: the wall clock, or (tests) one that starts at an epoch and runs faster. */
export type Clock = () => number;

const CLOCK = /^(\d+)@(\d+)\*(\d+)$/;

/**
 * INGESTION_SCHEDULER_CLOCK: empty for the wall clock; `<scheduler ms>@<wall ms>*<speed>` for a
 * test's clock, which reads <scheduler ms> at wall-clock <wall ms> and runs <speed> times faster.
 * Anchored to the wall clock, it reads the same in every process and after a restart.
 */
export function schedulerClock(setting: string, wall: Clock = Date.now): Clock {
  if (setting.trim() === '') return wall;
  const m = CLOCK.exec(setting.trim());
  if (!m)
    throw new Error(
      `INGESTION_SCHEDULER_CLOCK=${JSON.stringify(setting)} is not <scheduler ms>@<wall-clock ms>*<speed> (e.g. 1700000000000@1699990000000*10)`,
    );
  const [schedulerAt, wallAt, speed] = [Number(m[1]), Number(m[2]), Number(m[3])];
  return () => schedulerAt + (wall() - wallAt) * speed;
}

/** Finished instances looked at for late records: the most recent this many per job. */
export const LATE_LOOKBACK_INSTANCES = 48;
/** The recent instances the scheduler reads each tick (and the live ones): enough for the lookback. */
const SCHEDULER_VIEW = 2 * LATE_LOOKBACK_INSTANCES;
const LEASE_TTL_FACTOR = 5;
const LATE_SCAN_TIMEOUT_MS = 30_000;

/** What to fire now: the due times after the last fired one, and those catch-up LATEST skips. */
export function dueInstances(c: CompiledSchedule, lastFiredMs: number | undefined, nowMs: number): { fire: number[]; skip: number[] } {
  const after = Math.max(lastFiredMs ?? Number.NEGATIVE_INFINITY, c.schedule.notBeforeMs);
  const due = fireTimes(c, after, nowMs, MAX_FIRE_TIMES);
  if (c.schedule.catchUp === CatchUp.CATCH_UP_LATEST && due.length > 1) return { fire: due.slice(-1), skip: due.slice(0, -1) };
  return { fire: due, skip: [] };
}

/** The queued attempts to start now, in scheduled order, so that at most `concurrency` run. */
export function toStart(instances: readonly JobInstance[], concurrency: number): JobInstance[] {
  const running = instances.filter((i) => i.state === InstanceState.INSTANCE_STATE_RUNNING).length;
  const queued = instances
    .filter((i) => i.state === InstanceState.INSTANCE_STATE_QUEUED && i.job)
    .sort((a, b) => a.scheduledTimeMs - b.scheduledTimeMs || a.attempt - b.attempt);
  return queued.slice(0, Math.max(0, Math.max(1, concurrency) - running));
}

/** Instances whose late records no attempt landed, with none of their attempts live. */
export function lateToLand(instances: readonly JobInstance[]): number[] {
  const out: number[] = [];
  for (const [t, attempts] of attemptsByInstance(instances)) {
    const live = attempts.some((a) => isLiveInstance(a.state));
    const latest = attempts[attempts.length - 1];
    if (!live && latest.latePending > 0) out.push(t);
  }
  return out.sort((a, b) => a - b);
}

/**
 * The instances to look for late records in, with where to start per partition: the most
 * recent finished ones, each from where it was checked up to, else from where it ended.
 */
export function lateScanPlan(
  instances: readonly JobInstance[],
): { scheduledMs: number; start: number; end: number; from: Map<number, number> }[] {
  return [...attemptsByInstance(instances)]
    .filter(([, attempts]) => attempts.some((a) => a.state === InstanceState.INSTANCE_STATE_SUCCEEDED))
    .sort(([a], [b]) => a - b)
    .slice(-LATE_LOOKBACK_INSTANCES)
    .map(([scheduledMs, attempts]) => {
      const from = coveredEnds(attempts);
      // Where the first attempt's row says the late records were looked for up to.
      for (const c of attempts.find((a) => a.attempt === 1)?.lateChecked ?? [])
        from.set(c.partition, Math.max(from.get(c.partition) ?? 0, c.offset));
      return { scheduledMs, start: attempts[0].windowStartMs, end: attempts[0].windowEndMs, from };
    });
}

export interface SchedulerDeps {
  catalog: ServiceClient<typeof CatalogServiceService>;
  /** Starts a job as StartJob does (recorded RUNNING, announced to every process). */
  startJob: (name: string) => Promise<unknown>;
  logger: Logger;
  owner: string;
  tickMs: number;
  lateCheckMs: number;
  defaultBrokers: readonly string[];
  now: Clock;
}

export class Scheduler {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private closed = false;
  private readonly lastLateCheck = new Map<string, number>();
  private lastError = '';

  constructor(private readonly deps: SchedulerDeps) {}

  start(): void {
    const loop = () => {
      if (this.closed) return;
      this.running = this.tick()
        .catch((err) => this.warnOnce(grpcMessage(err)))
        .finally(() => {
          this.running = undefined;
          if (!this.closed) this.timer = setTimeout(loop, this.deps.tickMs);
        });
    };
    this.timer = setTimeout(loop, 0);
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    await this.running;
  }

  /** One round over every scheduled job; nothing when another process holds the lease. */
  async tick(): Promise<void> {
    let epoch: number;
    try {
      ({ epoch } = await this.deps.catalog.acquireSchedulerLease({ owner: this.deps.owner, ttlMs: this.deps.tickMs * LEASE_TTL_FACTOR }));
    } catch {
      return; // another process schedules
    }
    const { jobs } = await this.deps.catalog.listJobs({});
    for (const job of jobs) {
      if (!job.schedule || job.state !== JobState.JOB_STATE_RUNNING) continue;
      try {
        await this.scheduleJob(job, epoch);
        this.lastError = '';
      } catch (err) {
        this.warnOnce(`job ${job.name}: ${grpcMessage(err)}`);
      }
    }
  }

  private async scheduleJob(job: Job, epoch: number): Promise<void> {
    const c = compileSchedule(job.schedule!);
    const now = this.deps.now();
    let { instances } = await this.deps.catalog.listJobInstances({ job: job.name, fromMs: 0, latest: SCHEDULER_VIEW });
    const last = instances.length > 0 ? Math.max(...instances.map((i) => i.scheduledTimeMs)) : undefined;
    const { fire, skip } = dueInstances(c, last, now);
    if (fire.length > 0 || skip.length > 0) {
      const { created } = await this.deps.catalog.createJobInstances({
        job: job.name,
        request: InstanceRequest.INSTANCE_REQUEST_SCHEDULED,
        scheduledTimesMs: fire,
        skippedTimesMs: skip,
        leaseEpoch: epoch,
      });
      if (created.length > 0) this.deps.logger.info({ job: job.name, instances: created.map((j) => j.name) }, 'instances fired');
      ({ instances } = await this.deps.catalog.listJobInstances({ job: job.name, fromMs: 0, latest: SCHEDULER_VIEW }));
    }
    if (
      job.schedule!.lateData !== LateDataPolicy.LATE_DATA_POLICY_UNSPECIFIED &&
      job.schedule!.lateData !== LateDataPolicy.LATE_DATA_POLICY_COUNT
    ) {
      const late = lateToLand(instances);
      if (late.length > 0) {
        const { created } = await this.deps.catalog.createJobInstances({
          job: job.name,
          request: InstanceRequest.INSTANCE_REQUEST_LATE,
          scheduledTimesMs: late,
          skippedTimesMs: [],
          leaseEpoch: epoch,
        });
        if (created.length > 0) {
          this.deps.logger.info({ job: job.name, attempts: created.map((j) => j.name) }, 'late records: instances run again');
          ({ instances } = await this.deps.catalog.listJobInstances({ job: job.name, fromMs: 0, latest: SCHEDULER_VIEW }));
        }
      }
    }
    for (const i of toStart(instances, job.schedule!.concurrency)) {
      await this.deps.startJob(i.job);
      this.deps.logger.info(
        { job: job.name, instance: i.job, windowStartMs: i.windowStartMs, windowEndMs: i.windowEndMs },
        'instance started',
      );
    }
    const checkedAt = this.lastLateCheck.get(job.name) ?? 0;
    // Wall clock: how often the topic is read, whatever the scheduler's clock says.
    if (Date.now() - checkedAt >= this.deps.lateCheckMs) {
      this.lastLateCheck.set(job.name, Date.now());
      await this.checkLate(job, instances, epoch);
    }
  }

  /**
   * Reads each finished instance's partitions from where it ended (or was checked up to) to the
   * high watermark, and records the records stamped inside its window: they arrived after it
   * read past them. One read serves every instance: from the lowest start per partition.
   */
  private async checkLate(job: Job, instances: readonly JobInstance[], epoch: number): Promise<void> {
    const plan = lateScanPlan(instances);
    if (plan.length === 0) return;
    const { source } = await this.deps.catalog.getSource({ name: job.source });
    if (!source) return;
    const brokers = source.brokers.length > 0 ? source.brokers : [...this.deps.defaultBrokers];
    const kafka = createKafka(`sluice-scheduler-${job.name}`, brokers, this.deps.logger);
    const admin = kafka.admin();
    await admin.connect();
    let high: Map<number, { high: number }>;
    try {
      high = await watermarks(admin, source.topic);
    } finally {
      await admin.disconnect();
    }
    const ranges = new Map<number, { from: number; to: number }>();
    for (const [partition, wm] of high) {
      const starts = plan.map((p) => p.from.get(partition)).filter((o): o is number => o !== undefined);
      if (starts.length > 0) ranges.set(partition, { from: Math.min(...starts), to: wm.high });
    }
    const found: LateRecord[] = [];
    const onBatch = (partition: number, messages: KafkaMessage[]) => {
      for (const m of messages) {
        const offset = Number(m.offset);
        const ts = Number(m.timestamp);
        const owner = plan.find((p) => ts >= p.start && ts < p.end);
        if (owner && offset >= (owner.from.get(partition) ?? Number.POSITIVE_INFINITY))
          found.push({ partition, offset, timestampMs: ts, scheduledTimeMs: owner.scheduledMs });
      }
    };
    const done = await readRanges(kafka, source.topic, ranges, onBatch, LATE_SCAN_TIMEOUT_MS, `sluice-late-${job.name}`);
    // Only partitions read to their end count as checked; the others are read again next time.
    const checks = plan.map((p) => ({
      scheduledTimeMs: p.scheduledMs,
      checked: [...ranges]
        .filter(([partition, r]) => done.has(partition) || r.to <= r.from)
        .map(([partition, r]) => ({ partition, offset: r.to })),
    }));
    await this.deps.catalog.recordLateRecords({ job: job.name, records: found, checks, leaseEpoch: epoch });
    if (found.length > 0) this.deps.logger.info({ job: job.name, late: found.length }, 'late records found');
  }

  private warnOnce(message: string): void {
    if (message === this.lastError) return;
    this.lastError = message;
    this.deps.logger.warn({ err: message }, 'scheduler tick failed');
  }
}
