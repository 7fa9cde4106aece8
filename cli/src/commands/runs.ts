/**
 * A scheduled job's instances (seed 001): `job runs` lists every attempt, `job backfill` runs
 * past instances, `job rerun` runs one again (replacing what it wrote, in one snapshot). Times
 * are read and shown on the schedule's wall clock.
 */
import { InstanceKind, InstanceRequest, InstanceState, type Job, type JobInstance } from '#shared/gen/sluice/v1/catalog.js';
import { LocalTimeError, localToEpochMs } from '#shared/local-time.js';
import { compileSchedule, type CompiledSchedule, fireTimes, localLabel, MAX_FIRE_TIMES } from '#shared/schedule/cycle.js';
import type { CliContext } from '../context.js';
import { CliError, table, usageError } from '../output.js';

export interface RunsSummary {
  instances: number;
  succeeded: number;
  running: number;
  queued: number;
  failed: number;
  skipped: number;
  lateRecords: number;
  latePending: number;
}

/** Counts per instance (its latest attempt decides its state); late records per instance. */
export function runsSummary(instances: readonly JobInstance[]): RunsSummary {
  const latest = new Map<number, JobInstance>();
  for (const i of instances) latest.set(i.scheduledTimeMs, i);
  const s: RunsSummary = {
    instances: latest.size,
    succeeded: 0,
    running: 0,
    queued: 0,
    failed: 0,
    skipped: 0,
    lateRecords: 0,
    latePending: 0,
  };
  for (const i of latest.values()) {
    if (i.state === InstanceState.INSTANCE_STATE_SUCCEEDED) s.succeeded++;
    else if (i.state === InstanceState.INSTANCE_STATE_RUNNING) s.running++;
    else if (i.state === InstanceState.INSTANCE_STATE_QUEUED) s.queued++;
    else if (i.state === InstanceState.INSTANCE_STATE_SKIPPED) s.skipped++;
    else s.failed++;
    s.lateRecords += i.lateRecords;
    s.latePending += i.latePending;
  }
  return s;
}

export function renderRunsSummary(s: RunsSummary): string {
  return [
    `instances  ${s.instances} (${s.succeeded} succeeded, ${s.running} running, ${s.queued} queued, ${s.failed} failed or stopped, ${s.skipped} skipped)`,
    `late       ${s.lateRecords} records arrived after their instance read past them${s.latePending > 0 ? `, ${s.latePending} not landed yet` : ''}`,
  ].join('\n');
}

const short = (v: string, prefix: string) => v.replace(prefix, '').toLowerCase();

function duration(i: JobInstance): string {
  if (!i.startedAtMs || !i.endedAtMs) return '';
  const s = Math.max(0, i.endedAtMs - i.startedAtMs) / 1000;
  return s < 60 ? `${s.toFixed(1)}s` : `${Math.floor(s / 60)}m${Math.round(s % 60)}s`;
}

/** The listing of `job runs`: one line per attempt, oldest first. */
export function renderRuns(c: CompiledSchedule, instances: readonly JobInstance[]): string {
  if (instances.length === 0) return 'no instances yet';
  return table(
    ['SCHEDULED', 'ATTEMPT', 'KIND', 'WINDOW', 'PARTITION', 'STATE', 'ROWS', 'LATE', 'SNAPSHOT', 'DURATION'],
    instances.map((i) => [
      localLabel(c.zone, i.scheduledTimeMs),
      i.attempt,
      short(i.kind, 'INSTANCE_KIND_'),
      `${localLabel(c.zone, i.windowStartMs)} .. ${localLabel(c.zone, i.windowEndMs).slice(11)}`,
      i.partitionValue,
      short(i.state, 'INSTANCE_STATE_'),
      i.rows,
      i.latePending > 0 ? `${i.lateRecords} (${i.latePending} pending)` : i.lateRecords,
      i.snapshotId ?? '',
      duration(i),
    ]),
  );
}

function timeFlag(flags: Record<string, string | boolean | undefined>, name: string, c: CompiledSchedule, verb: string): number {
  const value = flags[name];
  if (typeof value !== 'string') throw usageError(`job ${verb} needs --${name} <time> (on the schedule's clock, e.g. "2022-11-22 10:05")`);
  try {
    return localToEpochMs(value, c.zone.name);
  } catch (err) {
    if (err instanceof LocalTimeError) throw new CliError(`--${name}: ${err.message}`, 2);
    throw err;
  }
}

async function scheduled(ctx: CliContext, name: string): Promise<{ job: Job; compiled: CompiledSchedule }> {
  const { job } = await ctx.catalog().getJob({ name });
  if (!job?.schedule) throw new CliError(`job ${name} has no schedule; runs, backfill and rerun are for scheduled jobs`, 2);
  return { job, compiled: compileSchedule(job.schedule) };
}

export async function instancesCommand(
  ctx: CliContext,
  verb: 'runs' | 'backfill' | 'rerun',
  name: string,
  flags: Record<string, string | boolean | undefined>,
): Promise<void> {
  const catalog = ctx.catalog();
  const { compiled } = await scheduled(ctx, name);
  if (verb === 'runs') {
    const { instances } = await catalog.listJobInstances({ job: name, fromMs: 0, latest: 0 });
    ctx.out.result(instances, () => renderRuns(compiled, instances));
    return;
  }
  if (verb === 'backfill') {
    const from = timeFlag(flags, 'from', compiled, verb);
    const to = timeFlag(flags, 'to', compiled, verb);
    if (to < from) throw new CliError('--to is before --from', 2);
    const times = fireTimes(compiled, from - 1, to, MAX_FIRE_TIMES + 1);
    if (times.length > MAX_FIRE_TIMES)
      throw new CliError(`more than ${MAX_FIRE_TIMES} instances from --from to --to; backfill a shorter span at a time`, 2);
    if (times.length === 0) throw new CliError(`job ${name}'s schedule fires at no time from ${flags.from} to ${flags.to}`, 2);
    const res = await catalog.createJobInstances({
      job: name,
      request: InstanceRequest.INSTANCE_REQUEST_BACKFILL,
      scheduledTimesMs: times,
      skippedTimesMs: [],
      leaseEpoch: 0,
    });
    ctx.out.result(res, () => {
      const lines = [`${res.created.length} instance${res.created.length === 1 ? '' : 's'} queued; the scheduler runs them in order`];
      if (res.existingTimesMs.length > 0)
        lines.push(
          `${res.existingTimesMs.length} already existed and were left as they are (rerun one with sluice job rerun ${name} --instance <time>): ${res.existingTimesMs.map((t) => localLabel(compiled.zone, t)).join(', ')}`,
        );
      return lines.join('\n');
    });
    return;
  }
  const at = timeFlag(flags, 'instance', compiled, verb);
  const res = await catalog.createJobInstances({
    job: name,
    request: InstanceRequest.INSTANCE_REQUEST_RERUN,
    scheduledTimesMs: [at],
    skippedTimesMs: [],
    leaseEpoch: 0,
  });
  const attempt = res.created[0];
  ctx.out.result(res, () =>
    attempt
      ? `instance ${localLabel(compiled.zone, at)} queued again as job ${attempt.name} (${attempt.instance?.kind === InstanceKind.INSTANCE_KIND_RERUN ? 'replacing its partition in one snapshot' : ''})`
      : `instance ${localLabel(compiled.zone, at)} was not queued`,
  );
}
