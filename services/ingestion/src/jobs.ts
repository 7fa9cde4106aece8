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
import { createKafka, groupSize, SourceError } from './kafka-source.js';
import { type CatalogJob, type LocalJob, type SyncAction, syncAction } from './job-sync.js';
import { groupIdFor } from './positions.js';
import { JobChanged } from '#shared/gen/sluice/v1/events.js';
import { subjects } from '#shared/events.js';
import { publish } from '#shared/nats.js';
import { setTimeout as sleep } from 'node:timers/promises';

/** A job's members in this process. */
class Members {
  constructor(readonly runners: readonly JobRunner[]) {}
  get isTerminal(): boolean {
    return this.runners.every((r) => r.isTerminal);
  }
  /** What the members do together: running if any member runs, paused if every live one is. */
  get local(): LocalJob {
    const states = this.runners.map((r) => r.local);
    const live = states.filter((l) => l === 'running' || l === 'paused');
    if (live.length > 0) return live.every((l) => l === 'paused') ? 'paused' : 'running';
    return states.includes('ending') ? 'ending' : 'absent';
  }
  status(): JobStatus {
    return mergeMemberStatuses(this.runners.map((r) => ({ status: r.status(), owns: r.ownsPartitions })));
  }
}

const { JOB_STATE_RUNNING: RUNNING, JOB_STATE_PAUSED: PAUSED, JOB_STATE_STOPPING: STOPPING, JOB_STATE_STOPPED: STOPPED } = JobState;

/**
 * The jobs this process runs, kept in line with the catalog across ingestion replicas: an
 * operation on a job (start, pause, resume, stop) is recorded in the catalog and announced on
 * NATS, and every process syncs its own members to the recorded state (job-sync.ts) on the
 * announcement and every `syncIntervalMs`. Operations and syncs of one job run one at a time.
 */
export class JobRegistry {
  private readonly runners = new Map<string, Members>();
  /** Per job, the tail of its operations and syncs. */
  private readonly chains = new Map<string, Promise<unknown>>();
  /** Per job, the last sync failure logged, so a start failing every sync is logged once. */
  private readonly syncFailures = new Map<string, string>();
  private syncing: Promise<void> | undefined;
  private closed = false;

  constructor(private readonly deps: RunnerDeps) {}

  /**
   * Starts the job's members here (and, through the announcement, in every other process), or
   * answers for those already running. Concurrent starts of one job share the chain: each used
   * to pass the "already running?" check before either had registered.
   */
  start(name: string): Promise<JobStatus> {
    return this.serial(requireName(name), async () => {
      const status = await this.startHere(name, true);
      this.announce(name);
      return status;
    });
  }

  /**
   * Stops the job everywhere: records STOPPING and announces it, stops the members here (each
   * flushes and waits for its commit), waits until the job's consumer group is empty — every
   * process's members stopped — and records STOPPED.
   */
  stop(name: string): Promise<JobStatus> {
    return this.serial(requireName(name), async () => {
      const job = await this.loadJob(name);
      const members = this.runners.get(name);
      const runsHere = members !== undefined && members.local !== 'absent';
      if (!runsHere && job.state !== RUNNING && job.state !== PAUSED && job.state !== STOPPING) {
        return members?.status() ?? catalogStatus(job);
      }
      await this.setState(name, STOPPING, 'flushing before stop');
      this.announce(name);
      if (members) await Promise.all(members.runners.map((r) => r.stop()));
      await this.waitForGroupToEmpty(job, members);
      await this.setState(name, STOPPED, 'stopped');
      this.announce(name);
      return members?.status() ?? catalogStatus({ ...job, state: STOPPED, stateReason: 'stopped' });
    });
  }

  /** Pauses the job everywhere: no member of any process fetches until ResumeJob. */
  pause(name: string): Promise<JobStatus> {
    return this.control(name, PAUSED, (r) => r.pause());
  }

  resume(name: string): Promise<JobStatus> {
    return this.control(name, RUNNING, (r) => r.resume());
  }

  private control(name: string, state: JobState, apply: (r: JobRunner) => void): Promise<JobStatus> {
    return this.serial(requireName(name), async () => {
      const job = await this.loadJob(name);
      if (job.state !== RUNNING && job.state !== PAUSED)
        throw failedPrecondition(`job "${name}" is ${describeState(job.state)}; only a running or paused job can be paused or resumed`);
      // Recorded only if the job is still running or paused: a job that failed meanwhile (its
      // topic recreated, say) must not be revived by a resume that read the state before.
      await this.recordState(name, state, [RUNNING, PAUSED]);
      const members = this.runners.get(name);
      if (members) for (const r of members.runners) if (!r.isTerminal) apply(r);
      this.announce(name);
      return members?.status() ?? catalogStatus({ ...job, state });
    });
  }

  async status(name: string): Promise<JobStatus> {
    const runner = this.runners.get(requireName(name));
    if (runner) {
      await Promise.all(runner.runners.map((r) => r.refreshWatermarks().catch(() => {})));
      return runner.status();
    }
    return catalogStatus(await this.loadJob(name));
  }

  /** Every job's status here, watermarks refreshed first (best effort) for an accurate lag. */
  async statuses(): Promise<JobStatus[]> {
    await Promise.all([...this.runners.values()].flatMap((m) => m.runners.map((r) => r.refreshWatermarks().catch(() => {}))));
    return this.list();
  }

  list(): JobStatus[] {
    return [...this.runners.values()].map((r) => r.status()).sort((a, b) => a.job.localeCompare(b.job));
  }

  // ---------------------------------------------------------------- sync with the catalog

  /**
   * Brings this process's members of one job in line with the job's state in the catalog
   * (job-sync.ts): called on a JobChanged announcement and by syncAll.
   */
  sync(name: string, known?: CatalogJob): Promise<void> {
    if (this.closed || !name) return Promise.resolve();
    return this.serial(name, async () => {
      if (this.closed) return;
      const state = known ?? (await this.catalogState(name));
      const members = this.runners.get(name);
      const action = syncAction(state, members?.local ?? 'absent');
      try {
        await this.apply(name, action, members);
        this.syncFailures.delete(name);
      } catch (err) {
        const reason = grpcMessage(err);
        if (this.syncFailures.get(name) !== reason)
          this.deps.logger.warn({ job: name, action, err: reason }, 'could not bring the job in line with the catalog');
        this.syncFailures.set(name, reason);
      }
    });
  }

  /** Syncs every job the catalog lists or this process runs; at process start, this resumes the running ones. */
  syncAll(): Promise<void> {
    this.syncing ??= (async () => {
      const { jobs } = await this.deps.catalog.listJobs({});
      const listed = new Map(jobs.map((j) => [j.name, j.state as CatalogJob]));
      for (const name of this.runners.keys()) if (!listed.has(name)) listed.set(name, 'deleted');
      await Promise.all([...listed].map(([name, state]) => this.sync(name, state)));
    })().finally(() => (this.syncing = undefined));
    return this.syncing;
  }

  private async apply(name: string, action: SyncAction, members: Members | undefined): Promise<void> {
    switch (action) {
      case 'none':
        return;
      case 'start':
      case 'start paused':
        await this.startHere(name, false);
        if (action === 'start paused') for (const r of this.runners.get(name)?.runners ?? []) r.pause();
        this.deps.logger.info({ job: name, paused: action === 'start paused' }, 'job started here to match the catalog');
        return;
      case 'pause':
        for (const r of members?.runners ?? []) if (!r.isTerminal) r.pause();
        return;
      case 'resume':
        for (const r of members?.runners ?? []) if (!r.isTerminal) r.resume();
        return;
      case 'stop':
        this.deps.logger.info({ job: name }, 'job stopping here to match the catalog');
        await Promise.all((members?.runners ?? []).map((r) => r.stop()));
        return;
    }
  }

  /** Process shutdown: every runner leaves its group; nothing half-done is flushed. */
  async shutdown(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.runners.values()].flatMap((m) => m.runners.map((r) => r.shutdown())));
  }

  // ---------------------------------------------------------------- internals

  /** Runs `fn` after every earlier operation or sync of the job has ended. */
  private serial<T>(name: string, fn: () => Promise<T>): Promise<T> {
    const run = (this.chains.get(name) ?? Promise.resolve()).then(fn, fn);
    const tail = run.catch(() => undefined);
    this.chains.set(name, tail);
    void tail.then(() => {
      if (this.chains.get(name) === tail) this.chains.delete(name);
    });
    return run;
  }

  /** Starts the job's members in this process; `record`: a user's start, recorded as RUNNING in the catalog. */
  private async startHere(name: string, record: boolean): Promise<JobStatus> {
    const existing = this.runners.get(name);
    if (existing && !existing.isTerminal) return existing.status();
    const job = await this.loadJob(name);
    if (job.state === JobState.JOB_STATE_FINISHED) throw failedPrecondition(`job "${name}" is FINISHED; a bounded job runs once`);
    // A scheduled job is never read itself: running, it lets the scheduler fire its instances.
    if (job.schedule) {
      if (record) await this.setState(name, RUNNING, SCHEDULED_REASON);
      return catalogStatus({ ...job, state: RUNNING, stateReason: SCHEDULED_REASON });
    }
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
    if (record) {
      try {
        // The catalog refuses a start it must not allow (another job writes the table from the same topic).
        await this.recordState(name, RUNNING, []);
      } catch (err) {
        this.runners.delete(name);
        throw err;
      }
    }
    for (const r of runner.runners) r.start();
    return runner.status();
  }

  /**
   * Until no consumer of any process is in the job's group: each stopped member leaves it, and
   * a process that died leaves it when its session times out. Bounded: a process that does not
   * stop its members in time is recorded STOPPED anyway (it stops on its next sync).
   */
  private async waitForGroupToEmpty(job: Job, members: Members | undefined): Promise<void> {
    const runner = members?.runners[0];
    const size = runner ? () => runner.groupSize() : await this.groupSizeOf(job);
    const giveUpAt = Date.now() + this.deps.stopTimeoutMs + GROUP_SESSION_TIMEOUT_MS;
    for (;;) {
      let left: number;
      try {
        left = await size();
      } catch (err) {
        this.deps.logger.warn({ job: job.name, err: grpcMessage(err) }, 'could not tell whether other processes stopped the job');
        return;
      }
      if (left === 0) return;
      if (Date.now() > giveUpAt) {
        this.deps.logger.warn({ job: job.name, consumers: left }, 'job recorded STOPPED while consumers remain in its group');
        return;
      }
      await sleep(GROUP_POLL_MS);
    }
  }

  /** The group size of a job this process does not run, through a client of its own. */
  private async groupSizeOf(job: Job): Promise<() => Promise<number>> {
    const { source } = await this.catalogCall(`source "${job.source}" of job "${job.name}"`, () =>
      this.deps.catalog.getSource({ name: job.source }),
    );
    const brokers = source?.brokers.length ? source.brokers : this.deps.defaultBrokers;
    const kafka = createKafka(`sluice-ingestion-${job.name}`, [...brokers], this.deps.logger);
    return () => groupSize(kafka, groupIdFor(job.name));
  }

  private announce(name: string): void {
    try {
      publish(this.deps.nats, subjects.jobChanged(name), JobChanged.encode({ job: name }).finish());
    } catch (err) {
      // The other processes catch up on their next periodic sync.
      this.deps.logger.warn({ job: name, err: (err as Error).message }, 'could not announce the job change');
    }
  }

  private async catalogState(name: string): Promise<CatalogJob> {
    try {
      return (await this.loadJob(name)).state;
    } catch (err) {
      if (grpcCode(err) === grpcStatus.NOT_FOUND) return 'deleted';
      throw err;
    }
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

  /**
   * Records a state the catalog may refuse (FAILED_PRECONDITION, passed on as it is: a start the
   * table's writers forbid, or a job no longer in one of `expectedStates`); any other failure is
   * logged, as setState does.
   */
  private async recordState(name: string, state: JobState, expectedStates: JobState[]): Promise<void> {
    try {
      await this.deps.catalog.updateJobState({ name, state, reason: '', expectedStates });
    } catch (err) {
      if (grpcCode(err) === grpcStatus.FAILED_PRECONDITION) throw failedPrecondition(grpcMessage(err));
      this.deps.logger.warn({ job: name, state, err: grpcMessage(err) }, 'could not record the job state in the catalog');
    }
  }

  private async setState(name: string, state: JobState, reason: string): Promise<void> {
    try {
      await this.deps.catalog.updateJobState({ name, state, reason, expectedStates: [] });
    } catch (err) {
      this.deps.logger.warn({ job: name, state, err: grpcMessage(err) }, 'could not record the job state in the catalog');
    }
  }
}

const SCHEDULED_REASON = 'scheduled: its instances run as jobs of their own (sluice job runs)';

/** kafkajs evicts a consumer whose process died after its session timeout (kafka-source.ts). */
const GROUP_SESSION_TIMEOUT_MS = 10_000;
const GROUP_POLL_MS = 250;

const describeState = (state: JobState) => JobState[state]?.replace('JOB_STATE_', '') ?? String(state);

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
    bytesIn: 0,
    rowsOut: 0,
    recordsExcluded: 0,
    errors: [],
    unmappedFields: [],
    lastCommit: undefined,
    startedAtMs: 0,
  };
}
