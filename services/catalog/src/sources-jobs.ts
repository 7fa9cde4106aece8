/**
 * Kafka sources and sync jobs. A source names a topic on a cluster with its message format;
 * a job connects a source to a table with a mapping, a start position, an optional time
 * window and commit settings. A source with jobs cannot be deleted, nor can a job that is
 * still consuming.
 */
import type { AsyncHandlers } from '#shared/grpc/types.js';
import { type CatalogServiceService, Job, JobState, Source, jobStateFromJSON } from '#shared/gen/sluice/v1/catalog.js';
import { alreadyExists, failedPrecondition, invalidArgument, notFound } from '#shared/errors.js';
import { MappingSpec } from '#shared/gen/sluice/v1/types.js';
import { currentSchema } from '#shared/iceberg/index.js';
import { isChangeStream, jobProblems, sourceProblems } from '#shared/job-rules.js';
import { inTransaction } from '#shared/pg.js';
import { translated, type CatalogDeps, type Queryable } from './context.js';
import { canTransition, isQuiescent } from './job-state.js';
import { validResourceName } from '#shared/names.js';
import { getTable } from './table-store.js';

type H = AsyncHandlers<typeof CatalogServiceService>;

/** The seeds' default: data becomes visible every 5 minutes unless told otherwise. */
export const DEFAULT_COMMIT_INTERVAL_MS = 5 * 60 * 1000;

interface SourceRow {
  spec: unknown;
  created_at_ms: number;
}

interface JobRow {
  spec: unknown;
  state: string;
  state_reason: string;
  created_at_ms: number;
  updated_at_ms: number;
}

function sourceFromRow(row: SourceRow): Source {
  return { ...Source.fromJSON(row.spec), createdAtMs: row.created_at_ms };
}

function jobFromRow(row: JobRow): Job {
  return {
    ...Job.fromJSON(row.spec),
    state: jobStateFromJSON(row.state),
    stateReason: row.state_reason,
    createdAtMs: row.created_at_ms,
    updatedAtMs: row.updated_at_ms,
  };
}

export async function loadJob(db: Queryable, name: string, forUpdate = false): Promise<Job> {
  const { rows } = await db.query<JobRow>(
    `SELECT spec, state, state_reason, created_at_ms, updated_at_ms FROM catalog.jobs WHERE name = $1${forUpdate ? ' FOR UPDATE' : ''}`,
    [name],
  );
  if (!rows[0]) throw notFound(`job ${name} does not exist`, { job: name });
  return jobFromRow(rows[0]);
}

/** States in which a job holds its table: it reads, or may go on reading without a new start. */
const WRITING_STATES = [JobState.JOB_STATE_RUNNING, JobState.JOB_STATE_PAUSED, JobState.JOB_STATE_STOPPING];

/** A scheduled job and its instances' jobs are one family: they read disjoint windows into disjoint partitions. */
const familyOf = (job: Pick<Job, 'name' | 'instance'>) => job.instance?.parent || job.name;

/**
 * Two jobs may write one table only when they read different topics: two readers of one topic
 * would land every record twice. Refuses `job` (on `tableId`, reading `topic`) while another
 * job holds the table from the same topic, unless both belong to one scheduled job (its
 * instances own disjoint windows and partitions). An advisory lock per table makes the check
 * and the caller's write one step, so two concurrent starts cannot both pass.
 */
async function refuseSecondWriter(db: Queryable, job: Job, tableId: number, topic: string, ref: string): Promise<void> {
  await db.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`sluice-table-writers-${tableId}`]);
  const { rows } = await db.query<{ name: string }>(
    `SELECT j.name FROM catalog.jobs j JOIN catalog.sources s ON s.name = j.source
     WHERE j.table_id = $1 AND s.topic = $2 AND j.name <> $3 AND j.state = ANY($4)
       AND COALESCE(NULLIF(j.spec -> 'instance' ->> 'parent', ''), j.name) <> $5 ORDER BY j.name LIMIT 1`,
    [tableId, topic, job.name, WRITING_STATES, familyOf(job)],
  );
  if (rows[0]) {
    throw failedPrecondition(
      `job ${rows[0].name} already writes table ${ref} from topic ${topic}; two jobs may write one table only when they read different topics (stop ${rows[0].name}, or write another table)`,
      { job: job.name, table: ref },
    );
  }
}

/**
 * Checks a job request by the shared job rules (the CLI's, `#shared/job-rules.ts`) and fills
 * defaults; returns the job to store. The first problem is INVALID_ARGUMENT naming its field.
 */
export function normalizeJob(job: Job, now: number): Job {
  const [problem] = jobProblems(job);
  if (problem) throw invalidArgument(`${problem.field}: ${problem.problem}`, { field: problem.field });
  const table = { database: job.table!.database, table: job.table!.table };
  const commitIntervalMs = job.commitIntervalMs || DEFAULT_COMMIT_INTERVAL_MS;
  // A schedule fires from its creation on; earlier instances are a backfill's to run.
  const schedule = job.schedule && { ...job.schedule, notBeforeMs: job.schedule.notBeforeMs || now };
  return { ...job, table, commitIntervalMs, schedule, state: JobState.JOB_STATE_CREATED, stateReason: '' };
}

/**
 * Stores a new job (CREATED) and returns it as stored: CreateJob's and the scheduler's
 * instances'. Refuses a second writer of the table from the same topic, and a name in use.
 */
export async function insertJob(client: Queryable, job: Job, t: number): Promise<Job> {
  const source = await client.query<{ topic: string; spec: unknown }>(`SELECT topic, spec FROM catalog.sources WHERE name = $1 FOR SHARE`, [
    job.source,
  ]);
  if (source.rowCount === 0) throw notFound(`source ${job.source} does not exist`, { source: job.source });
  // A job given no mapping reads its source's messages as the source describes them (format,
  // mode, CSV dialect) with the defaults of every other mapping key: the CLI always sends one,
  // a direct CreateJob may not, and a job without one could never open a Transform stream.
  if (!job.mapping) {
    const src = Source.fromJSON(source.rows[0].spec);
    job = { ...job, mapping: MappingSpec.fromPartial({ format: src.format, mode: src.mode, csv: src.csv }) };
  }
  const table = await getTable(client, job.table!);
  if (isChangeStream(job.mapping) && (currentSchema(table.metadata)['identifier-field-ids'] ?? []).length === 0)
    throw failedPrecondition(
      `job.mapping.changes: table ${job.table!.database}.${job.table!.table} has no key to match changes by; create it with one (table.key in the spec, --key on sluice table create)`,
      { field: 'job.mapping.changes' },
    );
  await refuseSecondWriter(client, job, table.id, source.rows[0].topic, `${job.table!.database}.${job.table!.table}`);
  const spec = Job.toJSON({ ...job, state: JobState.JOB_STATE_UNSPECIFIED, stateReason: '', createdAtMs: 0, updatedAtMs: 0 });
  const { rows } = await client.query<JobRow>(
    `INSERT INTO catalog.jobs (name, source, table_id, spec, state, state_reason, created_at_ms, updated_at_ms)
     VALUES ($1, $2, $3, $4, $5, '', $6, $6) ON CONFLICT (name) DO NOTHING
     RETURNING spec, state, state_reason, created_at_ms, updated_at_ms`,
    [job.name, job.source, table.id, JSON.stringify(spec), JobState.JOB_STATE_CREATED, t],
  );
  if (!rows[0]) throw alreadyExists(`job ${job.name} already exists`, { job: job.name });
  return jobFromRow(rows[0]);
}

export function sourceJobHandlers(
  deps: CatalogDeps,
): Pick<
  H,
  'createSource' | 'getSource' | 'listSources' | 'deleteSource' | 'createJob' | 'getJob' | 'listJobs' | 'updateJobState' | 'deleteJob'
> {
  const now = deps.now ?? Date.now;
  return {
    createSource: translated(async (req) => {
      const s = req.source;
      if (!s) throw invalidArgument('source is required', { field: 'source' });
      const [problem] = sourceProblems(s, 'source');
      if (problem) throw invalidArgument(`${problem.field}: ${problem.problem}`, { field: problem.field });
      const { name, topic } = s;
      const t = now();
      const stored: Source = { ...s, name, topic, createdAtMs: 0 };
      const { rows } = await deps.pool.query<SourceRow>(
        `INSERT INTO catalog.sources (name, brokers, topic, spec, created_at_ms) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (name) DO NOTHING RETURNING spec, created_at_ms`,
        [name, s.brokers, topic, JSON.stringify(Source.toJSON(stored)), t],
      );
      if (!rows[0]) throw alreadyExists(`source ${name} already exists`, { source: name });
      return { source: sourceFromRow(rows[0]) };
    }),

    getSource: translated(async (req) => {
      const name = validResourceName(req.name, 'name');
      const { rows } = await deps.pool.query<SourceRow>(`SELECT spec, created_at_ms FROM catalog.sources WHERE name = $1`, [name]);
      if (!rows[0]) throw notFound(`source ${name} does not exist`, { source: name });
      return { source: sourceFromRow(rows[0]) };
    }),

    listSources: translated(async () => {
      const { rows } = await deps.pool.query<SourceRow>(`SELECT spec, created_at_ms FROM catalog.sources ORDER BY name`);
      return { sources: rows.map(sourceFromRow) };
    }),

    deleteSource: translated(async (req) => {
      const name = validResourceName(req.name, 'name');
      return inTransaction(deps.pool, async (client) => {
        const found = await client.query(`SELECT 1 FROM catalog.sources WHERE name = $1 FOR UPDATE`, [name]);
        if (found.rowCount === 0) throw notFound(`source ${name} does not exist`, { source: name });
        const jobs = await client.query<{ name: string }>(`SELECT name FROM catalog.jobs WHERE source = $1 ORDER BY name`, [name]);
        if (jobs.rowCount) {
          throw failedPrecondition(`source ${name} is used by jobs ${jobs.rows.map((j) => j.name).join(', ')}; delete them first`, {
            source: name,
          });
        }
        await client.query(`DELETE FROM catalog.sources WHERE name = $1`, [name]);
        return {};
      });
    }),

    createJob: translated(async (req) => {
      if (!req.job) throw invalidArgument('job is required', { field: 'job' });
      if (req.job.instance) throw invalidArgument('job.instance is set by the scheduler, not by CreateJob', { field: 'job.instance' });
      const t = now();
      const job = normalizeJob(req.job, t);
      return inTransaction(deps.pool, async (client) => ({ job: await insertJob(client, job, t) }));
    }),

    getJob: translated(async (req) => ({ job: await loadJob(deps.pool, validResourceName(req.name, 'name')) })),

    listJobs: translated(async () => {
      const { rows } = await deps.pool.query<JobRow>(
        `SELECT spec, state, state_reason, created_at_ms, updated_at_ms FROM catalog.jobs ORDER BY name`,
      );
      return { jobs: rows.map(jobFromRow) };
    }),

    updateJobState: translated(async (req) => {
      const name = validResourceName(req.name, 'name');
      if (req.state === JobState.JOB_STATE_UNSPECIFIED || req.state === JobState.UNRECOGNIZED) {
        throw invalidArgument('state is required', { field: 'state' });
      }
      return inTransaction(deps.pool, async (client) => {
        const job = await loadJob(client, name, true);
        if (req.expectedStates.length > 0 && !req.expectedStates.includes(job.state)) {
          throw failedPrecondition(
            `job ${name} is ${job.state}${job.stateReason ? ` (${job.stateReason})` : ''}, not ${req.expectedStates.join(' or ')}`,
            {
              job: name,
            },
          );
        }
        if (!canTransition(job.state, req.state)) {
          throw failedPrecondition(`job ${name} cannot go from ${job.state} to ${req.state}`, { job: name });
        }
        if (req.state === JobState.JOB_STATE_RUNNING && !WRITING_STATES.includes(job.state)) {
          const { rows: held } = await client.query<{ table_id: number; topic: string }>(
            `SELECT j.table_id, s.topic FROM catalog.jobs j JOIN catalog.sources s ON s.name = j.source WHERE j.name = $1`,
            [name],
          );
          await refuseSecondWriter(client, job, held[0].table_id, held[0].topic, `${job.table!.database}.${job.table!.table}`);
        }
        const { rows } = await client.query<JobRow>(
          `UPDATE catalog.jobs SET state = $2, state_reason = $3, updated_at_ms = $4 WHERE name = $1
           RETURNING spec, state, state_reason, created_at_ms, updated_at_ms`,
          [name, req.state, req.reason ?? '', now()],
        );
        return { job: jobFromRow(rows[0]) };
      });
    }),

    deleteJob: translated(async (req) => {
      const name = validResourceName(req.name, 'name');
      return inTransaction(deps.pool, async (client) => {
        const job = await loadJob(client, name, true);
        if (!isQuiescent(job.state)) throw failedPrecondition(`job ${name} is ${job.state}; stop it before deleting it`, { job: name });
        // A scheduled job goes with its instances' jobs, once none of them reads any more.
        const { rows: attempts } = await client.query<{ name: string; state: JobState }>(
          `SELECT j.name, j.state FROM catalog.job_instances i JOIN catalog.jobs j ON j.name = i.job WHERE i.parent = $1 ORDER BY j.name FOR UPDATE OF j`,
          [name],
        );
        const live = attempts.find((a) => !isQuiescent(a.state));
        if (live)
          throw failedPrecondition(
            `instance job ${live.name} of ${name} is ${live.state}; wait for it or stop it before deleting ${name}`,
            { job: name },
          );
        await client.query(`DELETE FROM catalog.jobs WHERE name = ANY($1)`, [attempts.map((a) => a.name)]);
        await client.query(`DELETE FROM catalog.jobs WHERE name = $1`, [name]);
        return {};
      });
    }),
  };
}
