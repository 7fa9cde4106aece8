/**
 * One job in this ingestion process, the lifecycle half: the job's phase, source retries,
 * bounded finishes, stop, shutdown and failure, control and status. The reading half (consumer
 * sessions, partition cursors, Transform streams and the exactly-once bookkeeping) is JobReader.
 *
 * The job's lifecycle is one Phase (phase.ts), changed only by transitionTo, which checks the
 * predecessor table and performs the side effects of entering a phase. Source failures are
 * retried with backoff; bounded jobs finish once the commit covers their end; StopJob waits
 * (bounded) for the commit of what was sent.
 */
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Job, Source } from '#shared/gen/sluice/v1/catalog.js';
import type { CommitServiceService } from '#shared/gen/sluice/v1/commit.js';
import { CommittedEvent, RewindEvent } from '#shared/gen/sluice/v1/events.js';
import type { JobStatus } from '#shared/gen/sluice/v1/ingestion.js';
import { subjects } from '#shared/events.js';
import { grpcMessage } from '#shared/errors.js';
import type { ServiceClient } from '#shared/grpc/client.js';
import type { Logger } from '#shared/logger.js';
import { subscribe, type NatsConnection, type Subscription } from '#shared/nats.js';
import { idleOver, type JobBounds, jobBounds } from './completion.js';
import { FatalJobError, JobReader, type ReaderDeps } from './job-reader.js';
import { describeSourceError } from './kafka-source.js';
import type { LocalJob } from './job-sync.js';
import { canTransition, isLive, jobStateOf, type Phase, type PhaseName, reasonOf } from './phase.js';
import { PositionError } from './positions.js';

export type CommitClient = ServiceClient<typeof CommitServiceService>;

export interface RunnerDeps extends ReaderDeps {
  readonly commit: CommitClient;
  readonly nats: NatsConnection;
  /** How long a graceful stop waits for its final commit. */
  readonly stopTimeoutMs: number;
}

/**
 * END_POSITION: how often, once the window's close time has passed, the partitions still open
 * are checked against the broker's high watermarks.
 */
const CLOSED_CHECK_MS = 1000;
/** How often a live job checks that its topic was not deleted and recreated (one Metadata and one ListOffsets request). */
const TOPIC_CHECK_INTERVAL_MS = 5_000;

/** 500 ms doubling to 30 s between consumer sessions. */
function retryDelayMs(attempt: number): number {
  return Math.min(30_000, 500 * 2 ** Math.max(0, attempt - 1));
}

export class JobRunner {
  readonly name: string;
  private phase: Phase = { name: 'starting' };
  /**
   * PauseJob: no fetching until ResumeJob. Not a phase: a paused job still rebalances,
   * retries its source, finishes or stops like a running one; status shows PAUSED.
   */
  private userPaused = false;
  /** ResumeJob is checking the topic before fetching again (see resume): nothing is fetched yet. */
  private resumeChecking = false;
  /** Failed, and the failure is on its way to the catalog (reportState). */
  private recordingFailure = false;
  private readonly reader: JobReader;
  private readonly bounds: JobBounds;
  private readonly startedAtMs = Date.now();
  private readonly log: Logger;
  private readonly subscriptions: Subscription[] = [];
  private readonly timers: NodeJS.Timeout[] = [];
  private loop: Promise<void> = Promise.resolve();

  constructor(
    readonly job: Job,
    readonly source: Source,
    private readonly deps: RunnerDeps,
    /** Which of this process's members of the job this runner is (members.ts). */
    readonly member = 0,
  ) {
    this.name = job.name;
    this.log = deps.logger.child({ job: job.name });
    this.bounds = jobBounds(job.window);
    this.reader = new JobReader(
      job,
      source,
      this.bounds,
      deps,
      {
        phase: () => this.phase,
        userPaused: () => this.userPaused || this.resumeChecking,
        resyncing: (cause, problem) => {
          if (isLive(this.phase)) void this.transitionTo({ name: 'resyncing', cause, problem });
        },
        synced: () => {
          if (this.is('resyncing')) void this.transitionTo({ name: 'running' });
        },
        ownedDone: () => void this.finish(),
        fatal: (reason) => void this.fail(reason),
      },
      member,
    );
  }

  /** Starts consuming (after the registry recorded RUNNING, so a fast failure is not overwritten). */
  start(): void {
    this.subscribeEvents();
    this.loop = this.supervise();
  }

  // ---------------------------------------------------------------- phase

  /**
   * The one way the phase changes. Checks the predecessor table (an illegal transition is a
   * bug: it throws) and performs everything entering the phase implies. The new phase holds
   * before the returned promise's side effects (release, catalog update) run.
   */
  private transitionTo(next: Phase): Promise<void> {
    const from = this.phase;
    if (!canTransition(from.name, next.name)) {
      throw new Error(`job "${this.name}": illegal phase transition ${from.name} -> ${next.name}`);
    }
    this.phase = next;
    if (from.name !== next.name) this.log.debug({ from: from.name, to: next.name }, 'phase');
    switch (next.name) {
      case 'retrying':
        this.log.warn({ reason: reasonOf(next) }, 'source failure');
        return Promise.resolve();
      case 'running':
      case 'finishing':
      case 'stopping':
        // Pauses what should not be fetched now: ended partitions, or everything when stopping.
        this.reader.applyPauses();
        return Promise.resolve();
      case 'stopped':
      case 'shut down':
        return this.release();
      case 'handed over':
        this.log.info('own partitions committed to their ends; leaving the group to its leader, which finishes the job');
        return this.release();
      case 'finished': {
        const { recordsIn, rowsOut, excluded } = this.reader.counters;
        this.log.info({ records: recordsIn, rows: rowsOut, excluded }, 'bounded job finished');
        return this.release().then(() => this.reportState());
      }
      case 'failed':
        this.log.error({ reason: next.reason }, 'job failed');
        this.recordingFailure = true;
        return this.release()
          .then(() => this.reportState())
          .finally(() => (this.recordingFailure = false));
      default:
        return Promise.resolve();
    }
  }

  /** The phase's name (a method, so TypeScript does not narrow the phase across awaits). */
  private is(...names: PhaseName[]): boolean {
    return names.includes(this.phase.name);
  }

  /** Entering an end phase: timers and subscriptions go, the reader lets go of Kafka and the stream. */
  private async release(): Promise<void> {
    for (const t of this.timers) clearInterval(t);
    for (const s of this.subscriptions) s.unsubscribe();
    await this.reader.close();
  }

  /** Records a FINISHED or FAILED job in the catalog (the registry records the others). */
  private async reportState(): Promise<void> {
    const state = jobStateOf(this.phase, this.userPaused);
    try {
      await this.deps.catalog.updateJobState({ name: this.name, state, reason: reasonOf(this.phase), expectedStates: [] });
    } catch (err) {
      this.log.warn({ err: grpcMessage(err), state }, 'could not record the job state in the catalog');
    }
  }

  // ---------------------------------------------------------------- lifecycle

  /** Runs consumer sessions until the job ends; source failures are retried with backoff. */
  private async supervise(): Promise<void> {
    let attempt = 0;
    while (isLive(this.phase)) {
      const started = Date.now();
      try {
        if (await this.reader.runSession()) void this.finish();
      } catch (err) {
        if (err instanceof FatalJobError || err instanceof PositionError) {
          await this.reader.endSession();
          await this.fail(err.message);
          return;
        }
        if (!isLive(this.phase)) break;
        // A session that ran 30 s before failing starts the backoff over.
        if (Date.now() - started > 30_000) attempt = 0;
        attempt++;
        const cause = describeSourceError(err, this.reader.brokers);
        void this.transitionTo({ name: 'retrying', attempt, cause, delayMs: retryDelayMs(attempt) });
      }
      await this.reader.endSession();
      if (!isLive(this.phase)) break;
      await sleep(retryDelayMs(attempt));
    }
    await this.reader.endSession();
  }

  private subscribeEvents(): void {
    const { nats } = this.deps;
    const table = this.job.table;
    if (table) {
      this.subscriptions.push(
        subscribe(
          nats,
          subjects.committed(table),
          (payload) => this.reader.onCommitted(CommittedEvent.decode(payload)),
          (err) => this.log.warn({ err }, 'bad committed event'),
        ),
      );
    }
    this.subscriptions.push(
      subscribe(
        nats,
        subjects.rewind(this.name),
        (payload) => this.reader.onRewind(RewindEvent.decode(payload)),
        (err) => this.log.warn({ err }, 'bad rewind event'),
      ),
    );
    // A topic deleted and recreated between two fetches shows no error to kafkajs (it fetches by
    // name): only its new topic id tells (topic-identity.ts).
    this.timers.push(setInterval(() => void this.reader.verifyTopic(), TOPIC_CHECK_INTERVAL_MS));
    const idleMs = this.bounds.idleTimeoutMs;
    if (idleMs !== null) {
      const every = Math.max(50, Math.min(1000, Math.floor(idleMs / 4)));
      this.timers.push(setInterval(() => this.checkIdle(idleMs), every));
    }
    if (this.bounds.closeAtMs !== null) this.timers.push(setInterval(() => void this.checkClosed(), CLOSED_CHECK_MS));
  }

  /** A check of the open partitions after the close time is under way (one at a time). */
  private checkingClosed = false;

  /** END_POSITION: once the close time has passed, ends the partitions read to their high watermark. */
  private async checkClosed(): Promise<void> {
    if (!this.is('running') || this.userPaused || this.checkingClosed) return;
    this.checkingClosed = true;
    try {
      await this.reader.endOpenPartitions();
    } catch (err) {
      this.log.debug({ err: grpcMessage(err) }, 'high watermark check failed; trying again');
    } finally {
      this.checkingClosed = false;
    }
  }

  private checkIdle(idleMs: number): void {
    if (!this.is('running') || this.userPaused) return;
    const { reader } = this;
    const quiet = { owned: reader.partitions.ownedIds.length, inFlight: reader.inFlightCount, lastRecordAtMs: reader.lastRecordAtMs };
    if (idleOver(quiet, Date.now(), idleMs)) {
      this.log.info({ idleMs }, 'no new records for the idle timeout; finishing');
      void this.finish();
    }
  }

  /**
   * A bounded job's end: wait for this process's batches to be acknowledged, ask for a
   * final flush, and once the commit covers the targets mark the job FINISHED with its counts.
   * END_POSITION waits for the whole topic's ends (or, when another process leads the group,
   * hands over once its own are committed: completion.ts handsOver); IDLE for this process's
   * positions. Leaving `finishing` (stop, shutdown, failure, a source failure or resync) abandons the
   * wait; after a resync or retry the end is detected again.
   */
  private async finish(): Promise<void> {
    if (!isLive(this.phase) || this.is('finishing')) return;
    void this.transitionTo({ name: 'finishing' });
    const targets = this.reader.partitions.positions();
    const done = () => (this.bounds.completion === 'idle' ? this.reader.coveredUpTo(targets) : this.reader.boundedComplete());
    const over = () => done() || this.reader.handsOver();
    while (this.is('finishing') && !over()) {
      await this.flushAndWait(5_000, over);
      if (!over()) await this.reader.refreshCommitted().catch(() => {});
    }
    if (!this.is('finishing')) return;
    if (done()) await this.transitionTo({ name: 'finished', summary: this.reader.counters.summary() });
    else await this.transitionTo({ name: 'handed over' });
  }

  /** Waits for in-flight acks, triggers a flush, then polls `done` until timeoutMs. */
  private async flushAndWait(timeoutMs: number, done: () => boolean): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.reader.inFlightCount > 0 && Date.now() < deadline) await sleep(20);
    if (this.job.table && !done()) {
      await this.deps.commit.triggerFlush({ table: this.job.table, job: this.name }, { deadlineMs: 5_000 }).catch((err) => {
        this.log.debug({ err: grpcMessage(err) }, 'TriggerFlush failed; waiting for the commit interval');
      });
    }
    while (!done() && Date.now() < deadline) await sleep(50);
  }

  // ---------------------------------------------------------------- control (gRPC)

  pause(): void {
    if (!isLive(this.phase)) return;
    this.userPaused = true;
    this.reader.applyPauses();
  }

  resume(): void {
    if (!isLive(this.phase) || !this.userPaused) return;
    this.userPaused = false;
    // Nothing was fetched while paused, so a topic deleted and recreated meanwhile raised no
    // error, and the job's offsets may fit the new topic: check it before fetching again.
    this.resumeChecking = true;
    void this.reader.verifyTopic().finally(() => {
      this.resumeChecking = false;
      this.reader.applyPauses();
    });
  }

  /**
   * Graceful stop: stop fetching, let transformation acknowledge what was sent, flush, and
   * wait (up to stopTimeoutMs) for the commit covering this process's positions. What is not
   * committed by then is simply re-read on the next start.
   */
  async stop(): Promise<void> {
    if (!isLive(this.phase)) return this.loop;
    const targets = this.reader.partitions.positions();
    await this.transitionTo({ name: 'stopping' });
    await this.flushAndWait(this.deps.stopTimeoutMs, () => this.reader.coveredUpTo(targets));
    // A process shutdown during the wait already released the job.
    if (this.is('stopping')) await this.transitionTo({ name: 'stopped' });
  }

  /** Process shutdown: leave the group, drop the stream; the job stays RUNNING in the catalog. */
  async shutdown(): Promise<void> {
    if (canTransition(this.phase.name, 'shut down')) await this.transitionTo({ name: 'shut down' });
  }

  private async fail(reason: string): Promise<void> {
    if (!isLive(this.phase)) {
      this.log.warn({ reason }, 'failure after the job was asked to end; ignored');
      return;
    }
    await this.transitionTo({ name: 'failed', reason });
  }

  /** Resolves when the supervisor loop has exited. */
  done(): Promise<void> {
    return this.loop;
  }

  get isTerminal(): boolean {
    return this.is('stopped', 'finished', 'failed');
  }

  /** What this member is doing, as the sync with the catalog's job state sees it (job-sync.ts). */
  get local(): LocalJob {
    // Until its failure is in the catalog, a failed member is not absent: the catalog still says
    // RUNNING, and a sync would start the job again here, with a reader that never saw the
    // topic's id (a recreated topic would then be read from the old topic's offsets).
    if (this.is('stopping', 'finished', 'handed over') || this.recordingFailure) return 'ending';
    if (!isLive(this.phase)) return 'absent';
    return this.userPaused ? 'paused' : 'running';
  }

  /** How many consumers are in the job's group, across every process (a standby included). */
  groupSize(): Promise<number> {
    return this.reader.groupSize();
  }

  // ---------------------------------------------------------------- status

  /** Refreshes high watermarks (best effort) for an accurate lag. */
  refreshWatermarks(): Promise<void> {
    return this.reader.refreshWatermarks();
  }

  /** The group assigned this member partitions (a standby owns none: members.ts). */
  get ownsPartitions(): boolean {
    return this.reader.partitions.ownedIds.length > 0;
  }

  status(): JobStatus {
    return {
      job: this.name,
      state: jobStateOf(this.phase, this.userPaused),
      reason: reasonOf(this.phase),
      partitions: this.reader.partitions.status(this.reader.workerId),
      recordsIn: this.reader.counters.recordsIn,
      bytesIn: this.reader.counters.bytesIn,
      rowsOut: this.reader.counters.rowsOut,
      recordsExcluded: this.reader.counters.excluded,
      errors: this.reader.counters.errorCounts(),
      unmappedFields: this.reader.counters.unmappedCounts(),
      lastCommit: this.reader.counters.lastCommit,
      startedAtMs: this.startedAtMs,
    };
  }
}

export function newInstanceId(): string {
  return randomBytes(4).toString('hex');
}
