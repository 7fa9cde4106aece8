/**
 * The jobs this process runs, by name, and the gRPC operations on them. Job state changes
 * are recorded in the catalog (UpdateJobState); the runners do the work: one per member of
 * the job (its parallelism, members.ts), each with its own consumer and Transform stream.
 */
import { JobState, type Job } from '#shared/gen/sluice/v1/catalog.js';
import type { JobStatus } from '#shared/gen/sluice/v1/ingestion.js';
import { failedPrecondition, grpcCode, grpcMessage, invalidArgument, notFound, unavailable } from '#shared/errors.js';
import { status as grpcStatus } from '@grpc/grpc-js';
import { parallelismOf } from './job-reader.js';
import { JobRunner, type RunnerDeps } from './job-runner.js';
import { memberInFlightBytes, mergeMemberStatuses } from './members.js';
import { SourceError } from './kafka-source.js';

/** A job's members in this process. */
class Members {
  constructor(readonly runners: readonly JobRunner[]) {}
  get isTerminal(): boolean {
    return this.runners.every((r) => r.isTerminal);
  }
  status(): JobStatus {
    return mergeMemberStatuses(this.runners.map((r) => ({ status: r.status(), owns: r.ownsPartitions })));
  }
}

export class JobRegistry {
  private readonly runners = new Map<string, Members>();
  private closed = false;

  constructor(private readonly deps: RunnerDeps) {}

  /** Starts in progress, by job: a second StartJob (or the resume at process start) joins the first. */
  private readonly starting = new Map<string, Promise<JobStatus>>();

  /**
   * Starts the job's members here, or answers for those already running. Concurrent starts of
   * one job share one attempt: each used to pass the "already running?" check before either had
   * registered, and the loser's members ran on unregistered, reading and committing unseen.
   */
  start(name: string): Promise<JobStatus> {
    const pending = this.starting.get(requireName(name));
    if (pending) return pending;
    const attempt = this.startOnce(name).finally(() => this.starting.delete(name));
    this.starting.set(name, attempt);
    return attempt;
  }

  private async startOnce(name: string): Promise<JobStatus> {
    const existing = this.runners.get(name);
    if (existing && !existing.isTerminal) return existing.status();
    const job = await this.loadJob(name);
    if (job.state === JobState.JOB_STATE_FINISHED) throw failedPrecondition(`job "${name}" is FINISHED; a bounded job runs once`);
    const source = await this.catalogCall(`source "${job.source}" of job "${name}"`, () =>
      this.deps.catalog.getSource({ name: job.source }),
    );
    if (!source.source) throw notFound(`source "${job.source}" of job "${name}" does not exist`);
    if (!job.table?.table) throw failedPrecondition(`job "${name}" has no destination table`);
    if (this.closed) throw unavailable('ingestion is shutting down');
    const from = source.source;
    const members = parallelismOf(job);
    const deps = { ...this.deps, inFlightBytes: memberInFlightBytes(this.deps.inFlightBytes, members) };
    let runner: Members;
    try {
      runner = new Members(Array.from({ length: members }, (_, member) => new JobRunner(job, from, deps, member)));
    } catch (err) {
      if (err instanceof SourceError) throw failedPrecondition(err.message);
      throw err;
    }
    this.runners.set(name, runner);
    try {
      await this.deps.catalog.updateJobState({ name, state: JobState.JOB_STATE_RUNNING, reason: '' });
    } catch (err) {
      // The catalog refuses a start it must not allow (another job writes the table from the same topic).
      if (grpcCode(err) === grpcStatus.FAILED_PRECONDITION) {
        this.runners.delete(name);
        throw failedPrecondition(grpcMessage(err));
      }
      this.deps.logger.warn({ job: name, err: grpcMessage(err) }, 'could not record the job state in the catalog');
    }
    for (const r of runner.runners) r.start();
    return runner.status();
  }

  async stop(name: string): Promise<JobStatus> {
    const runner = this.runners.get(requireName(name));
    if (!runner || runner.isTerminal) {
      const job = await this.loadJob(name);
      if (job.state === JobState.JOB_STATE_RUNNING || job.state === JobState.JOB_STATE_PAUSED) {
        await this.setState(name, JobState.JOB_STATE_STOPPED, 'stopped');
      }
      return (
        runner?.status() ??
        catalogStatus({ ...job, state: job.state === JobState.JOB_STATE_FINISHED ? job.state : JobState.JOB_STATE_STOPPED })
      );
    }
    await this.setState(name, JobState.JOB_STATE_STOPPING, 'flushing before stop');
    await Promise.all(runner.runners.map((r) => r.stop()));
    await this.setState(name, JobState.JOB_STATE_STOPPED, 'stopped');
    return runner.status();
  }

  async pause(name: string): Promise<JobStatus> {
    const runner = this.live(name);
    for (const r of runner.runners) if (!r.isTerminal) r.pause();
    await this.setState(name, JobState.JOB_STATE_PAUSED, 'paused');
    return runner.status();
  }

  async resume(name: string): Promise<JobStatus> {
    const runner = this.live(name);
    for (const r of runner.runners) if (!r.isTerminal) r.resume();
    await this.setState(name, JobState.JOB_STATE_RUNNING, '');
    return runner.status();
  }

  async status(name: string): Promise<JobStatus> {
    const runner = this.runners.get(requireName(name));
    if (runner) {
      await Promise.all(runner.runners.map((r) => r.refreshWatermarks().catch(() => {})));
      return runner.status();
    }
    return catalogStatus(await this.loadJob(name));
  }

  list(): JobStatus[] {
    return [...this.runners.values()].map((r) => r.status()).sort((a, b) => a.job.localeCompare(b.job));
  }

  /**
   * After a restart, picks up the jobs the catalog says are running: the group shares their
   * partitions with other ingestion processes, and positions come from the catalog.
   */
  async resumeFromCatalog(): Promise<string[]> {
    const { jobs } = await this.deps.catalog.listJobs({});
    const started: string[] = [];
    for (const job of jobs) {
      if (job.state !== JobState.JOB_STATE_RUNNING && job.state !== JobState.JOB_STATE_PAUSED) continue;
      try {
        await this.start(job.name);
        if (job.state === JobState.JOB_STATE_PAUSED) await this.pause(job.name);
        started.push(job.name);
      } catch (err) {
        this.deps.logger.warn({ job: job.name, err: grpcMessage(err) }, 'could not resume job');
      }
    }
    return started;
  }

  /** Process shutdown: every runner leaves its group; nothing half-done is flushed. */
  async shutdown(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.runners.values()].flatMap((m) => m.runners.map((r) => r.shutdown())));
  }

  private live(name: string): Members {
    const runner = this.runners.get(requireName(name));
    if (!runner || runner.isTerminal) throw failedPrecondition(`job "${name}" is not running in this ingestion process`);
    return runner;
  }

  private async loadJob(name: string): Promise<Job> {
    const res = await this.catalogCall(`job "${name}"`, () => this.deps.catalog.getJob({ name }));
    if (!res.job) throw notFound(`job "${name}" does not exist`);
    return res.job;
  }

  private async catalogCall<T>(what: string, call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (err) {
      if (grpcCode(err) === grpcStatus.NOT_FOUND) throw notFound(`${what} does not exist`);
      throw unavailable(`catalog could not answer for ${what}: ${grpcMessage(err)}`);
    }
  }

  private async setState(name: string, state: JobState, reason: string): Promise<void> {
    try {
      await this.deps.catalog.updateJobState({ name, state, reason });
    } catch (err) {
      this.deps.logger.warn({ job: name, state, err: grpcMessage(err) }, 'could not record the job state in the catalog');
    }
  }
}

function requireName(name: string): string {
  if (!name) throw invalidArgument('job is required');
  return name;
}

/** Status of a job this process does not run: what the catalog knows. */
function catalogStatus(job: Job): JobStatus {
  return {
    job: job.name,
    state: job.state,
    reason: job.stateReason || 'not running in this ingestion process',
    partitions: [],
    recordsIn: 0,
    rowsOut: 0,
    recordsExcluded: 0,
    errors: [],
    unmappedFields: [],
    lastCommit: undefined,
    startedAtMs: 0,
  };
}
