import { status as grpcStatus } from '@grpc/grpc-js';
import { setTimeout as sleep } from 'node:timers/promises';
import { grpcCode } from '#shared/errors.js';
import { JobState, type Source } from '#shared/gen/sluice/v1/catalog.js';
import type { JobStatus } from '#shared/gen/sluice/v1/ingestion.js';
import { ErrorPolicyKind, type ChangeCounts, type Field, type Schema } from '#shared/gen/sluice/v1/types.js';
import { errorTableColumns } from '#shared/error-table.js';
import { isChangeStream } from '#shared/job-rules.js';
import type { CliContext } from '../context.js';
import { keyedSchema, primitiveField } from '../iceberg-types.js';
import { CliError, describeError, table, usageError } from '../output.js';
import { readJobSpecFile, type JobPlan } from '../spec.js';
import { tableIncompatibility, withFixedColumns } from '../table-compat.js';
import { describeSampleFailure, topicPartitionCount } from '../kafka-sample.js';
import { inferFromSource, samplingBrokers } from './infer.js';
import { instancesCommand, renderRunsSummary, runsSummary } from './runs.js';

const notFound = (err: unknown) => grpcCode(err) === grpcStatus.NOT_FOUND;

/** Takes back what a `job create` made, newest first. */
export type Undo = () => Promise<void>;

interface Made {
  what: string;
  remove: () => Promise<unknown>;
}

/** Whether the catalog has it: the answer, or undefined on NOT_FOUND. */
async function lookUp<T>(get: () => Promise<T>): Promise<T | undefined> {
  try {
    return await get();
  } catch (err) {
    if (notFound(err)) return undefined;
    throw err;
  }
}

/**
 * Each of a job's `parallelism` members reads partitions of its own: more members than the
 * topic has partitions is a mistake in the spec, refused before anything is created.
 */
async function refuseMoreMembersThanPartitions(ctx: CliContext, source: Source, parallelism: number): Promise<void> {
  const { brokers, from } = samplingBrokers(ctx, source);
  let partitions: number;
  try {
    partitions = await topicPartitionCount(brokers, source.topic);
  } catch (err) {
    throw describeSampleFailure(err, brokers, source.topic, from);
  }
  if (parallelism > partitions)
    throw new CliError(
      `parallelism ${parallelism} is more than the ${partitions} partition${partitions === 1 ? '' : 's'} of topic ${source.topic}; set parallelism to ${partitions} or fewer`,
      2,
    );
}

/**
 * Creates (or reuses, when identical) the spec's source, its database and table, then the job.
 * Everything that can refuse is decided before anything is created: an existing table is used
 * only with `table.ifExists: use` and compatible columns (seed 000: otherwise the task fails),
 * and inferred columns are sampled first. Should a later step fail anyway, what was created is
 * removed again, so a failed create leaves nothing behind. Returns how to take it all back
 * (for a `--start` that fails).
 */
export async function createFromSpec(ctx: CliContext, plan: JobPlan, inferSamples = 200): Promise<Undo> {
  const catalog = ctx.catalog();
  const { source, table: tableSpec, job } = plan;
  const ref = tableSpec.ref;
  const tableName = `${ref.database}.${ref.table}`;
  if (source.brokers.length === 0) source.brokers = ctx.settings.kafkaBrokers;

  const existing = (await lookUp(() => catalog.getSource({ name: source.name })))?.source;
  if (existing && (existing.topic !== source.topic || existing.format !== source.format || existing.mode !== source.mode)) {
    throw new CliError(
      `source ${source.name} already exists with topic ${existing.topic}, ${existing.format}, ${existing.mode}; remove it or give source.name another name`,
    );
  }
  if (job.parallelism > 1) await refuseMoreMembersThanPartitions(ctx, existing ?? source, job.parallelism);
  const current = (await lookUp(() => catalog.getTable({ ref })))?.table;
  let columns: Field[] | undefined;
  if (current) {
    if (tableSpec.ifExists !== 'use')
      throw new CliError(
        `table ${tableName} already exists; to write into it set table.ifExists: use in the spec, or name another table`,
        2,
      );
    const problem = tableIncompatibility(tableName, current.schema?.fields ?? [], tableSpec, job.mapping!);
    if (problem) throw new CliError(problem, 2);
  } else if (tableSpec.columns) {
    columns = withFixedColumns(tableSpec.columns, job.mapping?.includeFixedColumns ?? false);
  } else if (isChangeStream(job.mapping)) {
    // Inference reads plain rows; a change stream's messages are envelopes around them.
    throw new CliError(
      `table.columns: a change stream (mapping.changes) needs the table's columns in the spec; they cannot be inferred from its envelopes`,
      2,
    );
  } else {
    ctx.out.note(`inferring the columns of ${tableName} from ${inferSamples} sampled messages of ${source.topic}`);
    const mapping = { ...job.mapping!, partitionBy: undefined, errorPolicy: undefined };
    const inferred = await inferFromSource(ctx, existing ?? source, mapping, inferSamples);
    // Inference proposes every column optional, as the table takes them: a later record
    // without a field is a NULL, not a refused record.
    columns = inferred.schema?.fields ?? [];
    // Except the key's: a record without its key could not be matched, so it is refused.
    columns = columns.map((c) => (tableSpec.key.includes(c.name) ? { ...c, required: true } : c));
    for (const warning of inferred.warnings) ctx.out.note(`warning: ${warning}`);
    if (tableSpec.partitionColumn && !columns.some((c) => c.name === tableSpec.partitionColumn)) {
      columns.push(primitiveField(tableSpec.partitionColumn, 'string', false, 'partition value filled by Sluice'));
    }
  }
  let keyed: Schema | undefined;
  if (columns) {
    try {
      keyed = keyedSchema(columns, tableSpec.key);
    } catch (err) {
      throw new CliError(`table.key: ${(err as Error).message}`, 2);
    }
  }

  const made: Made[] = [];
  const undo: Undo = async () => {
    for (const step of made.reverse()) {
      try {
        await step.remove();
      } catch (err) {
        ctx.out.note(`could not remove ${step.what}: ${describeError(err).line}`);
      }
    }
    made.length = 0;
  };
  try {
    if (!existing) {
      await catalog.createSource({ source });
      made.push({ what: `source ${source.name}`, remove: () => catalog.deleteSource({ name: source.name }) });
      ctx.out.note(`source ${source.name} created (topic ${source.topic})`);
    }
    if (keyed) {
      await ensureDatabase(ctx, ref.database, made);
      await catalog.createTable({
        ref,
        schema: keyed,
        partitionSpec: tableSpec.partitionSpec,
        location: tableSpec.location,
        properties: tableSpec.properties,
        ifNotExists: false,
      });
      made.push({ what: `table ${tableName}`, remove: () => catalog.dropTable({ ref, purge: true }) });
      ctx.out.note(`table ${tableName} created with ${keyed.fields.length} columns`);
    } else {
      ctx.out.note(`table ${tableName} exists; the job writes into it (table.ifExists: use)`);
    }
    await ensureErrorTable(ctx, job, made);
    await catalog.createJob({ job });
    made.push({ what: `job ${job.name}`, remove: () => catalog.deleteJob({ name: job.name }) });
  } catch (err) {
    await undo();
    throw err;
  }
  return undo;
}

/** Creates the database when missing, remembering it so that a failed create drops it (if still empty). */
async function ensureDatabase(ctx: CliContext, name: string, made: Made[]): Promise<void> {
  const catalog = ctx.catalog();
  if (await lookUp(() => catalog.getDatabase({ name }))) return;
  await catalog.createDatabase({ name, location: '', properties: {} });
  made.push({ what: `database ${name}`, remove: () => catalog.dropDatabase({ name, cascade: false, purge: false }) });
}

/** With policy errorTable, the error table is created (Sluice's error-row columns) when missing. */
async function ensureErrorTable(ctx: CliContext, job: JobPlan['job'], made: Made[]): Promise<void> {
  const ref =
    job.mapping?.errorPolicy?.kind === ErrorPolicyKind.ERROR_POLICY_KIND_ERROR_TABLE ? job.mapping.errorPolicy.errorTable : undefined;
  if (!ref) return;
  const catalog = ctx.catalog();
  if (await lookUp(() => catalog.getTable({ ref }))) return;
  await ensureDatabase(ctx, ref.database, made);
  await catalog.createTable({
    ref,
    schema: { schemaId: 0, fields: errorTableColumns.map((c) => primitiveField(c.name, c.type, c.required)), identifierFieldIds: [] },
    partitionSpec: { specId: 0, fields: [] },
    location: '',
    properties: {},
    ifNotExists: true,
  });
  made.push({ what: `error table ${ref.database}.${ref.table}`, remove: () => catalog.dropTable({ ref, purge: true }) });
  ctx.out.note(`error table ${ref.database}.${ref.table} created`);
}

const shortState = (state: string) => state.replace('JOB_STATE_', '');

/**
 * How far a bounded job is, 0..1: the committed offsets against the ends its partitions were
 * found to end at (END_POSITION), once every partition's end is known; undefined otherwise (a
 * continuous job, or ends not found yet, when any fraction would be a guess).
 */
export function progressOf(s: Pick<JobStatus, 'partitions'>): number | undefined {
  if (s.partitions.length === 0 || s.partitions.some((p) => p.endOffset === undefined)) return undefined;
  const total = s.partitions.reduce((sum, p) => sum + (p.endOffset ?? 0), 0);
  if (total === 0) return 1;
  const done = s.partitions.reduce((sum, p) => sum + Math.min(Math.max(p.committedOffset, 0), p.endOffset ?? 0), 0);
  return done / total;
}

/** `[##########..........]  50%`: 20 cells. */
export function progressBar(fraction: number): string {
  const clamped = Math.min(1, Math.max(0, fraction));
  const filled = Math.floor(clamped * 20);
  return `[${'#'.repeat(filled)}${'.'.repeat(20 - filled)}] ${String(Math.floor(clamped * 100)).padStart(3)}%`;
}

export function renderStatus(s: JobStatus, rowsPerSecond?: number): string {
  const lines = [
    `job        ${s.job}    ${shortState(s.state)}${s.reason ? ` — ${s.reason}` : ''}`,
    `records    ${s.recordsIn} in, ${s.rowsOut} rows out, ${s.recordsExcluded} excluded${rowsPerSecond === undefined ? '' : `, ${rowsPerSecond.toFixed(0)} rows/s`}`,
    `last commit ${s.lastCommit?.snapshotId ? `snapshot ${s.lastCommit.snapshotId} at ${new Date(s.lastCommit.committedAtMs).toISOString()} (${s.lastCommit.rows} rows)` : '(none yet)'}`,
  ];
  const progress = progressOf(s);
  if (s.partitions.length > 0) lines.push(`lag        ${s.partitions.reduce((sum, p) => sum + p.lag, 0)} records not committed`);
  if (progress !== undefined) lines.push(`progress   ${progressBar(progress)}`);
  if (s.errors.length > 0) lines.push(`errors     ${s.errors.map((e) => `${e.reason}: ${e.count}`).join(', ')}`);
  if (s.unmappedFields.length > 0)
    lines.push(`unmapped   ${s.unmappedFields.map((f) => `${f.field}: ${f.count}`).join(', ')} (no column; schemaEvolution is none)`);
  if (s.partitions.length > 0) {
    lines.push(
      '',
      table(
        ['TOPIC', 'PARTITION', 'POSITION', 'END', 'HIGH WATERMARK', 'COMMITTED', 'LAG', 'WORKER'],
        s.partitions.map((p) => [
          p.topic,
          p.partition,
          p.position,
          p.endOffset ?? '',
          p.highWatermark,
          p.committedOffset,
          p.lag,
          p.workerId,
        ]),
      ),
    );
  }
  return lines.join('\n');
}

/** A change stream's committed changes, as `job status` shows them under the status. */
export function renderChanges(c: ChangeCounts): string {
  return `changes    ${c.inserted} inserted, ${c.updated} updated, ${c.deleted} deleted (committed)`;
}

const TERMINAL = new Set<string>([JobState.JOB_STATE_FINISHED, JobState.JOB_STATE_FAILED, JobState.JOB_STATE_STOPPED]);

async function watch(ctx: CliContext, job: string): Promise<void> {
  let previous: { rows: number; at: number } | undefined;
  for (;;) {
    const { status } = await ctx.ingestion().getJobStatus({ job });
    const now = Date.now();
    const rate = previous ? ((status!.rowsOut - previous.rows) * 1000) / Math.max(1, now - previous.at) : undefined;
    previous = { rows: status!.rowsOut, at: now };
    if (ctx.out.json) process.stdout.write(`${JSON.stringify({ ...status, rowsPerSecond: rate ?? null })}\n`);
    else process.stdout.write(`${(process.stdout.isTTY ? '\x1b[2J\x1b[H' : '\n') + renderStatus(status!, rate)}\n`);
    if (TERMINAL.has(status!.state)) return;
    await sleep(1000);
  }
}

export async function jobCommand(ctx: CliContext, args: string[], flags: Record<string, string | boolean | undefined>): Promise<void> {
  const [verb, name] = args;
  const ingestion = () => ctx.ingestion();
  const needName = () => {
    if (!name) throw usageError(`job ${verb} needs a job name`);
    return name;
  };
  switch (verb) {
    case 'create': {
      if (typeof flags.file !== 'string') throw usageError('job create needs -f <spec.yaml>');
      const plan = await readJobSpecFile(flags.file);
      const undo = await createFromSpec(ctx, plan);
      if (flags.start) {
        let status: JobStatus | undefined;
        try {
          ({ status } = await ingestion().startJob({ job: plan.job.name }));
        } catch (err) {
          // Created but not started is a failed `job create --start`: it leaves nothing behind.
          await undo();
          throw err;
        }
        ctx.out.result(status, () => `job ${plan.job.name} created and started`);
      } else {
        ctx.out.result(plan.job, () => `job ${plan.job.name} created; start it with: sluice job start ${plan.job.name}`);
      }
      return;
    }
    case 'start':
    case 'stop':
    case 'pause':
    case 'resume': {
      const job = needName();
      const call = { start: ingestion().startJob, stop: ingestion().stopJob, pause: ingestion().pauseJob, resume: ingestion().resumeJob }[
        verb
      ];
      if (verb === 'stop') ctx.out.note(`stopping ${job}: flushing and committing what it has read…`);
      const { status } = await call({ job }, verb === 'stop' ? { deadlineMs: 10 * 60_000 } : {});
      ctx.out.result(status, () => `job ${job} ${shortState(status?.state ?? '').toLowerCase()}`);
      return;
    }
    case 'status': {
      const job = needName();
      if (flags.watch) return watch(ctx, job);
      const { status } = await ingestion().getJobStatus({ job });
      const { job: defined } = await ctx.catalog().getJob({ name: job });
      if (defined?.schedule) {
        const { instances } = await ctx.catalog().listJobInstances({ job, fromMs: 0, latest: 0 });
        const runs = runsSummary(instances);
        ctx.out.result({ ...status, runs }, () => `${renderStatus(status!)}\n${renderRunsSummary(runs)}`);
        return;
      }
      if (isChangeStream(defined?.mapping)) {
        // A change stream's inserts, updates and deletes are known once committed: the catalog keeps them.
        const { progress } = await ctx.catalog().getCommittedOffsets({ job });
        const changes = progress?.changes ?? { inserted: 0, updated: 0, deleted: 0 };
        ctx.out.result({ ...status, changes }, () => `${renderStatus(status!)}\n${renderChanges(changes)}`);
        return;
      }
      ctx.out.result(status, () => renderStatus(status!));
      return;
    }
    case 'list': {
      // A scheduled job's instances are jobs too, one per run: listed by `job runs`, here with --all.
      const { jobs: all } = await ctx.catalog().listJobs({});
      const jobs = flags.all ? all : all.filter((j) => !j.instance);
      ctx.out.result(jobs, () =>
        table(
          ['JOB', 'SOURCE', 'TABLE', 'STATE', 'COMMIT INTERVAL', 'KIND'],
          jobs.map((j) => [
            j.name,
            j.source,
            `${j.table?.database}.${j.table?.table}`,
            shortState(j.state),
            `${j.commitIntervalMs / 1000}s`,
            j.schedule ? 'scheduled' : j.instance ? `instance of ${j.instance.parent}` : j.window ? 'bounded' : 'continuous',
          ]),
        ),
      );
      return;
    }
    case 'runs':
    case 'backfill':
    case 'rerun':
      return instancesCommand(ctx, verb, needName(), flags);
    default:
      throw usageError(
        `unknown job command ${JSON.stringify(verb ?? '')}; use create, start, stop, pause, resume, status, list, runs, backfill or rerun`,
      );
  }
}
