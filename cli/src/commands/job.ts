import { status as grpcStatus } from '@grpc/grpc-js';
import { readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { grpcCode } from '#shared/errors.js';
import { JobState, type Source } from '#shared/gen/sluice/v1/catalog.js';
import type { JobStatus } from '#shared/gen/sluice/v1/ingestion.js';
import { ErrorPolicyKind, type Field } from '#shared/gen/sluice/v1/types.js';
import { errorTableColumns } from '#shared/error-table.js';
import type { CliContext } from '../context.js';
import { primitiveField } from '../iceberg-types.js';
import { CliError, table, usageError } from '../output.js';
import { parseJobSpecText, type JobPlan } from '../spec.js';
import { inferFromSource } from './infer.js';

const notFound = (err: unknown) => grpcCode(err) === grpcStatus.NOT_FOUND;

/** Creates (or reuses, when identical) the spec's source, its database and table, then the job. */
export async function createFromSpec(ctx: CliContext, plan: JobPlan, inferSamples = 200): Promise<void> {
  const catalog = ctx.catalog();
  const { source, table: tableSpec, job } = plan;
  if (source.brokers.length === 0) source.brokers = ctx.settings.kafkaBrokers;

  let existing: Source | undefined;
  try {
    existing = (await catalog.getSource({ name: source.name })).source;
  } catch (err) {
    if (!notFound(err)) throw err;
  }
  if (!existing) {
    await catalog.createSource({ source });
    ctx.out.note(`source ${source.name} created (topic ${source.topic})`);
  } else if (existing.topic !== source.topic || existing.format !== source.format || existing.mode !== source.mode) {
    throw new CliError(
      `source ${source.name} already exists with topic ${existing.topic}, ${existing.format}, ${existing.mode}; remove it or give source.name another name`,
    );
  }

  await catalog.createDatabase({ name: tableSpec.ref.database, location: '', properties: {} });
  let tableExists = true;
  try {
    await catalog.getTable({ ref: tableSpec.ref });
  } catch (err) {
    if (!notFound(err)) throw err;
    tableExists = false;
  }
  if (!tableExists) {
    let columns: Field[] | undefined = tableSpec.columns;
    if (!columns) {
      ctx.out.note(
        `inferring the columns of ${tableSpec.ref.database}.${tableSpec.ref.table} from ${inferSamples} sampled messages of ${source.topic}`,
      );
      const mapping = { ...job.mapping!, partitionBy: undefined, errorPolicy: undefined };
      const inferred = await inferFromSource(ctx, source, mapping, inferSamples);
      // Inference reports which fields every sample had; the table still takes them as
      // optional, so one later record without a field is a NULL, not a refused record.
      columns = (inferred.schema?.fields ?? []).map((f) => ({ ...f, required: false }));
      for (const warning of inferred.warnings) ctx.out.note(`warning: ${warning}`);
      if (tableSpec.partitionColumn && !columns.some((c) => c.name === tableSpec.partitionColumn)) {
        columns.push(primitiveField(tableSpec.partitionColumn, 'string', false, 'partition value filled by Sluice'));
      }
    }
    await catalog.createTable({
      ref: tableSpec.ref,
      schema: { schemaId: 0, fields: columns, identifierFieldIds: [] },
      partitionSpec: tableSpec.partitionSpec,
      location: tableSpec.location,
      properties: tableSpec.properties,
      ifNotExists: false,
    });
    ctx.out.note(`table ${tableSpec.ref.database}.${tableSpec.ref.table} created with ${columns.length} columns`);
  }
  await ensureErrorTable(ctx, job);
  await catalog.createJob({ job });
}

/** With policy errorTable, the error table is created (Sluice's error-row columns) when missing. */
async function ensureErrorTable(ctx: CliContext, job: JobPlan['job']): Promise<void> {
  const ref =
    job.mapping?.errorPolicy?.kind === ErrorPolicyKind.ERROR_POLICY_KIND_ERROR_TABLE ? job.mapping.errorPolicy.errorTable : undefined;
  if (!ref) return;
  const catalog = ctx.catalog();
  try {
    await catalog.getTable({ ref });
    return;
  } catch (err) {
    if (!notFound(err)) throw err;
  }
  await catalog.createDatabase({ name: ref.database, location: '', properties: {} });
  await catalog.createTable({
    ref,
    schema: { schemaId: 0, fields: errorTableColumns.map((c) => primitiveField(c.name, c.type, c.required)), identifierFieldIds: [] },
    partitionSpec: { specId: 0, fields: [] },
    location: '',
    properties: {},
    ifNotExists: true,
  });
  ctx.out.note(`error table ${ref.database}.${ref.table} created`);
}

const shortState = (state: string) => state.replace('JOB_STATE_', '');

export function renderStatus(s: JobStatus, rowsPerSecond?: number): string {
  const lines = [
    `job        ${s.job}    ${shortState(s.state)}${s.reason ? ` — ${s.reason}` : ''}`,
    `records    ${s.recordsIn} in, ${s.rowsOut} rows out, ${s.recordsExcluded} excluded${rowsPerSecond === undefined ? '' : `, ${rowsPerSecond.toFixed(0)} rows/s`}`,
    `last commit ${s.lastCommit?.snapshotId ? `snapshot ${s.lastCommit.snapshotId} at ${new Date(s.lastCommit.committedAtMs).toISOString()} (${s.lastCommit.rows} rows)` : '(none yet)'}`,
  ];
  if (s.errors.length > 0) lines.push(`errors     ${s.errors.map((e) => `${e.reason}: ${e.count}`).join(', ')}`);
  if (s.unmappedFields.length > 0)
    lines.push(`unmapped   ${s.unmappedFields.map((f) => `${f.field}: ${f.count}`).join(', ')} (no column; schemaEvolution is none)`);
  if (s.partitions.length > 0) {
    lines.push(
      '',
      table(
        ['TOPIC', 'PARTITION', 'POSITION', 'END', 'HIGH WATERMARK', 'COMMITTED', 'LAG'],
        s.partitions.map((p) => [p.topic, p.partition, p.position, p.endOffset ?? '', p.highWatermark, p.committedOffset, p.lag]),
      ),
    );
  }
  return lines.join('\n');
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
      const plan = parseJobSpecText(await readFile(flags.file, 'utf8'), flags.file);
      await createFromSpec(ctx, plan);
      if (flags.start) {
        const { status } = await ingestion().startJob({ job: plan.job.name });
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
      ctx.out.result(status, () => renderStatus(status!));
      return;
    }
    case 'list': {
      const { jobs } = await ctx.catalog().listJobs({});
      ctx.out.result(jobs, () =>
        table(
          ['JOB', 'SOURCE', 'TABLE', 'STATE', 'COMMIT INTERVAL', 'BOUNDED'],
          jobs.map((j) => [
            j.name,
            j.source,
            `${j.table?.database}.${j.table?.table}`,
            shortState(j.state),
            `${j.commitIntervalMs / 1000}s`,
            j.window ? 'yes' : 'no',
          ]),
        ),
      );
      return;
    }
    default:
      throw usageError(`unknown job command ${JSON.stringify(verb ?? '')}; use create, start, stop, pause, resume, status or list`);
  }
}
