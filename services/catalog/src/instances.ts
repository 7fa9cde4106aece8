/**
 * Instances of scheduled jobs (seed 001). Each attempt of each instance is a bounded job of its
 * own, made from the scheduled job: its window and partition value are the schedule's
 * expressions rendered at the instance's scheduled time. An instance fires once because its
 * first attempt and that attempt's job are created in one transaction under a unique key; the
 * scheduler that asks must also hold the scheduler lease (its epoch fences one that lost it).
 *
 * Late records: the scheduler reads past what each finished instance read and records the ones
 * stamped inside its window here, one row per record, so finding one twice counts it once. A
 * rerun (or a late append) reads up to the last of them, so it lands every late record.
 */
import type { AsyncHandlers } from '#shared/grpc/types.js';
import {
  type CatalogServiceService,
  CompletionPolicy,
  InstanceKind,
  InstanceRequest,
  InstanceState,
  type Job,
  type JobInstance,
  JobState,
  LateDataPolicy,
  type PartitionOffset,
  StartFrom,
} from '#shared/gen/sluice/v1/catalog.js';
import { alreadyExists, failedPrecondition, invalidArgument, notFound } from '#shared/errors.js';
import { inTransaction } from '#shared/pg.js';
import { validResourceName } from '#shared/names.js';
import { compileSchedule, type CompiledSchedule, fireTimes, localLabel, resolveInstance, ScheduleError } from '#shared/schedule/cycle.js';
import { MAX_COMMIT_INTERVAL_MS } from '#shared/job-rules.js';
import { coveredEnds, isLiveInstance } from '#shared/schedule/attempts.js';
import { translated, type CatalogDeps, type Queryable } from './context.js';
import { insertJob, loadJob } from './sources-jobs.js';

type H = AsyncHandlers<typeof CatalogServiceService>;

export const DEFAULT_SCHEDULER_LEASE_TTL_MS = 10_000;
const MAX_SCHEDULER_LEASE_TTL_MS = 10 * 60_000;
/** Instances one request may create (a backfill of a month of 5-minute instances fits). */
export const MAX_INSTANCES_PER_REQUEST = 10_000;

/** `<parent>--202211221005[-<attempt>]`: the scheduled time on the schedule's wall clock. */
export function instanceJobName(parent: string, c: CompiledSchedule, scheduledMs: number, attempt: number): string {
  const stamp = localLabel(c.zone, scheduledMs).replace(/[- :]/g, '');
  return `${parent}--${stamp}${attempt > 1 ? `-${attempt}` : ''}`;
}

/** The instance's partition per Kafka partition: where its attempts' reading ended, the furthest. */
export type Covered = Map<number, number>;

export interface AttemptPlan {
  kind: InstanceKind;
  attempt: number;
  /** LATE_APPEND: where each partition starts (what the attempts read so far). */
  startOffsets?: PartitionOffset[];
  /** Partitions that end at a known offset: the covered end or one past the last late record. */
  endOffsets: PartitionOffset[];
}

/**
 * The job of one attempt of one instance, made from the scheduled job. RUN and RERUN start at
 * the window's start by timestamp; a LATE_APPEND starts where the attempts so far ended. A
 * rerun commits once, at its end (interval and buffer at their limits), so that the snapshot
 * replacing the instance's partition holds the whole instance and readers never see half.
 */
export function attemptJob(parent: Job, c: CompiledSchedule, scheduledMs: number, plan: AttemptPlan): Job {
  const s = parent.schedule!;
  const r = resolveInstance(c, scheduledMs);
  const start =
    plan.startOffsets !== undefined
      ? { from: StartFrom.START_FROM_OFFSETS, timestampMs: 0, offsets: plan.startOffsets }
      : { from: StartFrom.START_FROM_TIMESTAMP, timestampMs: r.windowStartMs, offsets: [] };
  const atOnce = plan.kind === InstanceKind.INSTANCE_KIND_RERUN;
  return {
    ...parent,
    name: instanceJobName(parent.name, c, scheduledMs, plan.attempt),
    mapping: parent.mapping && {
      ...parent.mapping,
      partitionBy: parent.mapping.partitionBy && { ...parent.mapping.partitionBy, value: r.partitionValue },
    },
    start,
    window: {
      startTimeMs: r.windowStartMs,
      endTimeMs: r.windowEndMs,
      timeZone: s.timeZone,
      completion: plan.startOffsets !== undefined ? CompletionPolicy.COMPLETION_POLICY_END_POSITION : s.completion,
      idleTimeoutMs: s.idleTimeoutMs,
      allowedLatenessMs: s.allowedLatenessMs,
      endOffsets: plan.endOffsets,
    },
    commitIntervalMs: atOnce ? MAX_COMMIT_INTERVAL_MS : parent.commitIntervalMs,
    bufferBytes: atOnce ? 0 : parent.bufferBytes,
    schedule: undefined,
    instance: {
      parent: parent.name,
      scheduledTimeMs: scheduledMs,
      attempt: plan.attempt,
      kind: plan.kind,
      partitionValue: r.partitionValue,
    },
    state: JobState.JOB_STATE_CREATED,
    stateReason: '',
    createdAtMs: 0,
    updatedAtMs: 0,
  };
}

/**
 * What an instance's next attempt reads, from the attempts' covered ends and its late records
 * (offsets per partition). A rerun reads the whole window again, up to the last late record
 * where one lies past the covered end; a late append reads only from the covered end to there.
 * Without a covered end (no attempt succeeded) the ends are found by reading, as a first run's.
 */
export function planAttempt(
  kind: InstanceKind,
  attempt: number,
  covered: Covered,
  lateOffsets: readonly { partition: number; offset: number }[],
): AttemptPlan {
  const ends = new Map(covered);
  for (const { partition, offset } of lateOffsets) {
    if (offset >= (covered.get(partition) ?? 0) && covered.size > 0) ends.set(partition, Math.max(ends.get(partition) ?? 0, offset + 1));
  }
  const endOffsets = toOffsets(ends);
  if (kind !== InstanceKind.INSTANCE_KIND_LATE_APPEND) return { kind, attempt, endOffsets };
  return { kind, attempt, startOffsets: toOffsets(covered), endOffsets };
}

/** The instance state of an attempt from its job's state. */
export function instanceState(jobState: JobState | undefined, skipped: boolean): InstanceState {
  if (skipped) return InstanceState.INSTANCE_STATE_SKIPPED;
  switch (jobState) {
    case JobState.JOB_STATE_CREATED:
      return InstanceState.INSTANCE_STATE_QUEUED;
    case JobState.JOB_STATE_FINISHED:
      return InstanceState.INSTANCE_STATE_SUCCEEDED;
    case JobState.JOB_STATE_FAILED:
      return InstanceState.INSTANCE_STATE_FAILED;
    case JobState.JOB_STATE_STOPPED:
      return InstanceState.INSTANCE_STATE_STOPPED;
    case undefined:
      return InstanceState.INSTANCE_STATE_STOPPED;
    default:
      return InstanceState.INSTANCE_STATE_RUNNING;
  }
}

/** Job states of queued and running attempts (instanceState). */
const LIVE_JOB_STATES = [JobState.JOB_STATE_CREATED, JobState.JOB_STATE_RUNNING, JobState.JOB_STATE_PAUSED, JobState.JOB_STATE_STOPPING];

interface InstanceRow {
  parent: string;
  scheduled_ms: string;
  attempt: number;
  kind: string;
  job: string | null;
  window_start_ms: string;
  window_end_ms: string;
  partition_value: string;
  skipped: boolean;
  created_at_ms: string;
  late_checked: Record<string, number>;
  state: string | null;
  state_reason: string | null;
  updated_at_ms: string | null;
  total_rows: string | null;
  last_snapshot_id: string | null;
  started_at_ms: string | null;
}

const toOffsets = (m: ReadonlyMap<number, number> | Record<string, number>): PartitionOffset[] =>
  (m instanceof Map ? [...m] : Object.entries(m).map(([p, o]) => [Number(p), Number(o)] as [number, number]))
    .sort((a, b) => a[0] - b[0])
    .map(([partition, offset]) => ({ partition, offset }));

/** Every attempt of a scheduled job's instances, with what they read and their late records. */
export async function listInstances(db: Queryable, parent: string, fromMs = 0, latest = 0): Promise<JobInstance[]> {
  const { rows } = await db.query<InstanceRow>(
    `SELECT i.parent, i.scheduled_ms, i.attempt, i.kind, i.job, i.window_start_ms, i.window_end_ms, i.partition_value,
            i.skipped, i.created_at_ms, i.late_checked, j.state, j.state_reason, j.updated_at_ms, p.total_rows,
            p.last_snapshot_id, (SELECT min(recorded_at_ms) FROM catalog.job_starts s WHERE s.job = i.job) AS started_at_ms
     FROM catalog.job_instances i
     LEFT JOIN catalog.jobs j ON j.name = i.job
     LEFT JOIN catalog.job_progress p ON p.job = i.job
     WHERE i.parent = $1 AND i.scheduled_ms >= $2
       AND ($3 = 0 OR i.scheduled_ms >= COALESCE((
             SELECT min(t.scheduled_ms) FROM (
               SELECT DISTINCT scheduled_ms FROM catalog.job_instances WHERE parent = $1 ORDER BY scheduled_ms DESC LIMIT $3) t), 0)
         OR j.state = ANY($4))
     ORDER BY i.scheduled_ms, i.attempt`,
    [parent, fromMs, latest, LIVE_JOB_STATES],
  );
  const jobs = rows.flatMap((r) => (r.job ? [r.job] : []));
  const ends = await db.query<{ job: string; partition: number; next_offset: string }>(
    `SELECT job, partition, next_offset FROM catalog.committed_offsets WHERE job = ANY($1)`,
    [jobs],
  );
  // A partition the attempt never committed on ended where it started (a finished instance is
  // committed up to every end, or read nothing there): its recorded start.
  const starts = await db.query<{ job: string; partition: number; next_offset: string }>(
    `SELECT job, partition, start_offset AS next_offset FROM catalog.job_starts WHERE job = ANY($1)`,
    [jobs],
  );
  const endsByJob = new Map<string, Map<number, number>>();
  for (const e of [...starts.rows, ...ends.rows]) {
    let m = endsByJob.get(e.job);
    if (!m) endsByJob.set(e.job, (m = new Map()));
    m.set(e.partition, Number(e.next_offset));
  }
  const late = await db.query<{ scheduled_ms: string; partition: number; offset: string }>(
    `SELECT scheduled_ms, partition, "offset" FROM catalog.late_records WHERE parent = $1 AND scheduled_ms >= $2`,
    [parent, fromMs],
  );
  const lateBy = new Map<number, { partition: number; offset: number }[]>();
  for (const l of late.rows) {
    const k = Number(l.scheduled_ms);
    let list = lateBy.get(k);
    if (!list) lateBy.set(k, (list = []));
    list.push({ partition: l.partition, offset: Number(l.offset) });
  }
  // Each attempt's pending late records: those below what it and the attempts before it covered landed.
  const attemptsSoFar = new Map<number, JobInstance[]>();
  return rows.map((r) => {
    const scheduledMs = Number(r.scheduled_ms);
    const state = instanceState(r.state === null ? undefined : (JobState[r.state as keyof typeof JobState] ?? undefined), r.skipped);
    const endOffsets = toOffsets(r.job ? (endsByJob.get(r.job) ?? new Map<number, number>()) : new Map<number, number>());
    const earlier = attemptsSoFar.get(scheduledMs) ?? [];
    attemptsSoFar.set(scheduledMs, earlier);
    const covered = coveredEnds([...earlier, { state, endOffsets }]);
    const lateRecords = lateBy.get(scheduledMs) ?? [];
    const pending = lateRecords.filter((l) => l.offset >= (covered.get(l.partition) ?? 0)).length;
    const terminal = !isLiveInstance(state) && state !== InstanceState.INSTANCE_STATE_SKIPPED;
    const instance: JobInstance = {
      parent: r.parent,
      scheduledTimeMs: scheduledMs,
      attempt: r.attempt,
      kind: InstanceKind[r.kind as keyof typeof InstanceKind] ?? InstanceKind.INSTANCE_KIND_RUN,
      job: r.job ?? '',
      windowStartMs: Number(r.window_start_ms),
      windowEndMs: Number(r.window_end_ms),
      partitionValue: r.partition_value,
      state,
      stateReason: r.state_reason ?? (r.skipped ? 'missed while no scheduler ran (catch-up: latest)' : ''),
      rows: Number(r.total_rows ?? 0),
      snapshotId: r.last_snapshot_id === null ? undefined : Number(r.last_snapshot_id),
      createdAtMs: Number(r.created_at_ms),
      startedAtMs: Number(r.started_at_ms ?? 0),
      endedAtMs: terminal ? Number(r.updated_at_ms ?? 0) : 0,
      lateRecords: lateRecords.length,
      latePending: pending,
      endOffsets,
      lateChecked: toOffsets(r.late_checked),
    };
    earlier.push(instance);
    return instance;
  });
}

/** The scheduled job, which must exist and have a schedule. */
async function scheduledJob(db: Queryable, name: string): Promise<{ job: Job; compiled: CompiledSchedule }> {
  const job = await loadJob(db, name, true);
  if (!job.schedule) throw failedPrecondition(`job ${name} has no schedule; only a scheduled job has instances`, { job: name });
  try {
    return { job, compiled: compileSchedule(job.schedule) };
  } catch (err) {
    if (err instanceof ScheduleError) throw failedPrecondition(`job ${name}: schedule.${err.field}: ${err.message}`, { job: name });
    throw err;
  }
}

async function checkLease(db: Queryable, epoch: number): Promise<void> {
  const { rows } = await db.query<{ epoch: string; owner: string }>(`SELECT epoch, owner FROM catalog.scheduler_lease`);
  const current = rows[0] ? Number(rows[0].epoch) : undefined;
  if (!(epoch > 0) || current !== epoch)
    throw failedPrecondition(
      `fenced: scheduler lease epoch ${epoch} is not the current one (${current ?? 'none'}, held by ${rows[0]?.owner ?? 'nobody'})`,
    );
}

export function instanceHandlers(
  deps: CatalogDeps,
): Pick<H, 'acquireSchedulerLease' | 'createJobInstances' | 'listJobInstances' | 'recordLateRecords'> {
  const now = deps.now ?? Date.now;
  return {
    acquireSchedulerLease: translated(async (req) => {
      const owner = req.owner.trim();
      if (!owner || owner.length > 256) throw invalidArgument('owner must be 1-256 characters', { field: 'owner' });
      const ttl = req.ttlMs || DEFAULT_SCHEDULER_LEASE_TTL_MS;
      if (ttl < 0 || ttl > MAX_SCHEDULER_LEASE_TTL_MS)
        throw invalidArgument(`ttl_ms must be between 1 and ${MAX_SCHEDULER_LEASE_TTL_MS}`, { field: 'ttl_ms' });
      return inTransaction(deps.pool, async (client) => {
        await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', ['sluice-scheduler-lease']);
        const t = now();
        const lease = (
          await client.query<{ owner: string; epoch: string; expires_at_ms: string }>(
            `SELECT owner, epoch, expires_at_ms FROM catalog.scheduler_lease`,
          )
        ).rows[0];
        if (lease && lease.owner !== owner && Number(lease.expires_at_ms) > t)
          throw failedPrecondition(
            `the scheduler lease is held by ${lease.owner} until ${new Date(Number(lease.expires_at_ms)).toISOString()}`,
            {
              owner: lease.owner,
            },
          );
        const held = lease && lease.owner === owner && Number(lease.expires_at_ms) > t;
        const epoch = lease ? (held ? Number(lease.epoch) : Number(lease.epoch) + 1) : 1;
        await client.query(
          `INSERT INTO catalog.scheduler_lease (singleton, owner, epoch, expires_at_ms) VALUES (true, $1, $2, $3)
           ON CONFLICT (singleton) DO UPDATE SET owner = EXCLUDED.owner, epoch = EXCLUDED.epoch, expires_at_ms = EXCLUDED.expires_at_ms`,
          [owner, epoch, t + ttl],
        );
        return { epoch, expiresAtMs: t + ttl };
      });
    }),

    createJobInstances: translated(async (req) => {
      const name = validResourceName(req.job, 'job');
      if (req.scheduledTimesMs.length + req.skippedTimesMs.length > MAX_INSTANCES_PER_REQUEST)
        throw invalidArgument(`at most ${MAX_INSTANCES_PER_REQUEST} instances per request; ask for a shorter span`, {
          field: 'scheduled_times_ms',
        });
      if (req.request === InstanceRequest.INSTANCE_REQUEST_UNSPECIFIED || req.request === InstanceRequest.UNRECOGNIZED)
        throw invalidArgument('request is required: SCHEDULED, BACKFILL, RERUN or LATE', { field: 'request' });
      return inTransaction(deps.pool, async (client) => {
        if (req.request === InstanceRequest.INSTANCE_REQUEST_SCHEDULED || req.request === InstanceRequest.INSTANCE_REQUEST_LATE)
          await checkLease(client, req.leaseEpoch);
        const { job: parent, compiled } = await scheduledJob(client, name);
        const times = [...new Set(req.scheduledTimesMs)].sort((a, b) => a - b);
        for (const t of [...times, ...req.skippedTimesMs]) {
          if (!Number.isSafeInteger(t) || fireTimes(compiled, t - 1, t, 1)[0] !== t)
            throw invalidArgument(
              `${Number.isSafeInteger(t) ? new Date(t).toISOString() : t} is not a time job ${name}'s schedule fires at`,
              {
                field: 'scheduled_times_ms',
              },
            );
        }
        const created: Job[] = [];
        const existing: number[] = [];
        const t0 = now();
        const insertAttempt = async (scheduledMs: number, plan: AttemptPlan): Promise<void> => {
          const job = attemptJob(parent, compiled, scheduledMs, plan);
          const r = resolveInstance(compiled, scheduledMs);
          const inserted = await client.query(
            `INSERT INTO catalog.job_instances (parent, scheduled_ms, attempt, kind, job, window_start_ms, window_end_ms, partition_value, created_at_ms)
             VALUES ($1, $2, $3, $4, NULL, $5, $6, $7, $8) ON CONFLICT DO NOTHING`,
            [name, scheduledMs, plan.attempt, InstanceKind[plan.kind], r.windowStartMs, r.windowEndMs, r.partitionValue, t0],
          );
          if (inserted.rowCount === 0) {
            existing.push(scheduledMs);
            return;
          }
          created.push(await insertJob(client, job, t0));
          await client.query(`UPDATE catalog.job_instances SET job = $4 WHERE parent = $1 AND scheduled_ms = $2 AND attempt = $3`, [
            name,
            scheduledMs,
            plan.attempt,
            job.name,
          ]);
        };
        for (const t of req.skippedTimesMs) {
          const r = resolveInstance(compiled, t);
          await client.query(
            `INSERT INTO catalog.job_instances (parent, scheduled_ms, attempt, kind, job, window_start_ms, window_end_ms, partition_value, skipped, created_at_ms)
             VALUES ($1, $2, 1, 'INSTANCE_KIND_RUN', NULL, $3, $4, $5, true, $6) ON CONFLICT DO NOTHING`,
            [name, t, r.windowStartMs, r.windowEndMs, r.partitionValue, t0],
          );
        }
        if (req.request === InstanceRequest.INSTANCE_REQUEST_SCHEDULED || req.request === InstanceRequest.INSTANCE_REQUEST_BACKFILL) {
          for (const t of times) await insertAttempt(t, { kind: InstanceKind.INSTANCE_KIND_RUN, attempt: 1, endOffsets: [] });
          return { created, existingTimesMs: existing };
        }
        // RERUN and LATE: one more attempt of instances that exist and have none running.
        const all = await listInstances(client, name, times[0] ?? 0);
        for (const t of times) {
          const attempts = all.filter((i) => i.scheduledTimeMs === t);
          if (attempts.length === 0) throw notFound(`job ${name} has no instance scheduled at ${new Date(t).toISOString()}`, { job: name });
          const live = attempts.find((i) => isLiveInstance(i.state));
          if (live) {
            if (req.request === InstanceRequest.INSTANCE_REQUEST_LATE) continue;
            throw alreadyExists(
              `instance ${new Date(t).toISOString()} of job ${name} is ${InstanceState[live.state]} (job ${live.job}); rerun it once it ended`,
              {
                job: name,
              },
            );
          }
          const covered = coveredEnds(attempts);
          const late = await client.query<{ partition: number; offset: string }>(
            `SELECT partition, "offset" FROM catalog.late_records WHERE parent = $1 AND scheduled_ms = $2`,
            [name, t],
          );
          const lateOffsets = late.rows.map((l) => ({ partition: l.partition, offset: Number(l.offset) }));
          const policy = parent.schedule!.lateData;
          const kind =
            req.request === InstanceRequest.INSTANCE_REQUEST_LATE && policy === LateDataPolicy.LATE_DATA_POLICY_APPEND && covered.size > 0
              ? InstanceKind.INSTANCE_KIND_LATE_APPEND
              : InstanceKind.INSTANCE_KIND_RERUN;
          const attempt = Math.max(...attempts.map((a) => a.attempt)) + 1;
          await insertAttempt(t, planAttempt(kind, attempt, covered, lateOffsets));
        }
        return { created, existingTimesMs: existing };
      });
    }),

    listJobInstances: translated(async (req) => {
      const name = validResourceName(req.job, 'job');
      await loadJob(deps.pool, name);
      if (req.latest < 0) throw invalidArgument('latest must be 0 (all) or more', { field: 'latest' });
      return { instances: await listInstances(deps.pool, name, req.fromMs, req.latest) };
    }),

    recordLateRecords: translated(async (req) => {
      const name = validResourceName(req.job, 'job');
      return inTransaction(deps.pool, async (client) => {
        await checkLease(client, req.leaseEpoch);
        const { job } = await scheduledJob(client, name);
        const topic =
          (await client.query<{ topic: string }>(`SELECT topic FROM catalog.sources WHERE name = $1`, [job.source])).rows[0]?.topic ?? '';
        const t = now();
        for (const r of req.records) {
          await client.query(
            `INSERT INTO catalog.late_records (parent, topic, partition, "offset", timestamp_ms, scheduled_ms, found_at_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING`,
            [name, topic, r.partition, r.offset, r.timestampMs, r.scheduledTimeMs, t],
          );
        }
        for (const c of req.checks) {
          const checked = Object.fromEntries(c.checked.map((o) => [String(o.partition), o.offset]));
          await client.query(
            `UPDATE catalog.job_instances SET late_checked = late_checked || $3::jsonb WHERE parent = $1 AND scheduled_ms = $2 AND attempt = 1`,
            [name, c.scheduledTimeMs, JSON.stringify(checked)],
          );
        }
        return {};
      });
    }),
  };
}
