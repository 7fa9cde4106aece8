/**
 * One job in this ingestion process: a kafkajs consumer in the job's group (`sluice-<job>`),
 * one Transform stream incarnation at a time, and the exactly-once bookkeeping of DESIGN.md:
 *
 * - every batch sent carries `covers`, contiguous per partition from the partition's position;
 * - positions come from the catalog's committed offsets on every (re)start, rebalance and
 *   rewind, never from Kafka's group offsets (those are written after each commit, for lag
 *   tools only);
 * - a rebalance, a RewindEvent naming the current stream, or a broken stream drops all
 *   uncommitted work: the stream is cancelled, a new one opens under a new worker_id, and the
 *   owned partitions are sought to the committed offsets.
 *
 * The job's lifecycle is one Phase (phase.ts), changed only by transitionTo. Side effects
 * (Kafka, gRPC, NATS) live here; the decisions are in coverage.ts, completion.ts, positions.ts,
 * phase.ts and in-flight.ts.
 */
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Admin, Consumer, EachBatchPayload, Kafka } from 'kafkajs';
import { type CatalogServiceService, CompletionPolicy, type Job, type Source } from '#shared/gen/sluice/v1/catalog.js';
import type { CommitServiceService } from '#shared/gen/sluice/v1/commit.js';
import { CommittedEvent, RewindEvent } from '#shared/gen/sluice/v1/events.js';
import type { JobStatus } from '#shared/gen/sluice/v1/ingestion.js';
import type { BatchAck } from '#shared/gen/sluice/v1/transformation.js';
import type { KafkaRecord } from '#shared/gen/sluice/v1/types.js';
import { subjects } from '#shared/events.js';
import { grpcMessage } from '#shared/errors.js';
import type { ServiceClient } from '#shared/grpc/client.js';
import type { Logger } from '#shared/logger.js';
import { subscribe, type NatsConnection, type Subscription } from '#shared/nats.js';
import { tracer } from '#shared/tracing.js';
import { boundedComplete, type CompletionMode, completionMode, coveredUpTo, ownedDone, readToEnd } from './completion.js';
import { batchEndOffset, leadingGap, planBatch, type TimeBounds } from './coverage.js';
import { ErrorTopicProducer } from './error-topic.js';
import { InFlight } from './in-flight.js';
import { JobCounters } from './job-counters.js';
import {
  createKafka,
  describeSourceError,
  offsetsAtTime,
  RECORD_OVERHEAD_BYTES,
  requireTopic,
  SourceError,
  toKafkaRecords,
  watermarks,
} from './kafka-source.js';
import { type PartitionState, PartitionTable } from './partition-table.js';
import { acceptsBatches, canTransition, isLive, jobStateOf, type Phase, type PhaseName, reasonOf } from './phase.js';
import { chooseStart, endOffsetFor, groupIdFor, onExpired, PositionError } from './positions.js';
import { producerLinks } from './trace-links.js';
import { TransformStream, type TransformationClient } from './transform-stream.js';

export type CatalogClient = ServiceClient<typeof CatalogServiceService>;
export type CommitClient = ServiceClient<typeof CommitServiceService>;

export interface RunnerDeps {
  readonly catalog: CatalogClient;
  readonly transformation: TransformationClient;
  readonly commit: CommitClient;
  readonly nats: NatsConnection;
  readonly logger: Logger;
  /** KAFKA_BROKERS: used when the source names no brokers. */
  readonly defaultBrokers: readonly string[];
  /** Unacknowledged bytes per job before its partitions pause. */
  readonly inFlightBytes: number;
  /** Unique per process; part of every worker_id. */
  readonly instanceId: string;
  /** How long a graceful stop waits for its final commit. */
  readonly stopTimeoutMs: number;
}

/** A failure retrying cannot fix: the job goes to FAILED with this reason. */
class FatalJobError extends Error {}

/** One consumer session (runOnce): its admin client, its consumer once created, and how to end it. */
interface Session {
  readonly admin: Admin;
  consumer: Consumer | null;
  /** Ends the session's run with an error: a consumer crash, or the job ending. */
  readonly end: (err: unknown) => void;
}

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
  /**
   * Too many unacknowledged bytes (in-flight.ts): no fetching until acks drain them. Not a
   * phase either: it comes and goes many times a second while the job is running.
   */
  private backpressure = false;

  private readonly startedAtMs = Date.now();
  private readonly log: Logger;
  private readonly brokers: string[];
  private readonly topic: string;
  private readonly window: TimeBounds | null;
  private readonly idleTimeoutMs: number | null;
  private readonly completion: CompletionMode;

  private readonly kafka: Kafka;
  private session: Session | null = null;
  private readonly errorTopic: ErrorTopicProducer;
  private readonly subscriptions: Subscription[] = [];
  private readonly timers: NodeJS.Timeout[] = [];

  private readonly partitions: PartitionTable;
  /** The owned partitions the consumer has paused right now. */
  private pausedNow = new Set<number>();

  private stream: TransformStream | null = null;
  /** Bumped by every resync; acks, breaks and resyncs of an older incarnation are ignored. */
  private incarnation = 0;
  private resyncChain: Promise<void> = Promise.resolve();
  private readonly inFlight: InFlight;

  private readonly counters = new JobCounters();
  private lastRecordAtMs = Date.now();
  private loop: Promise<void> = Promise.resolve();

  constructor(
    readonly job: Job,
    readonly source: Source,
    private readonly deps: RunnerDeps,
  ) {
    this.name = job.name;
    this.topic = source.topic;
    this.partitions = new PartitionTable(source.topic);
    this.log = deps.logger.child({ job: job.name });
    this.brokers = source.brokers.length > 0 ? [...source.brokers] : [...deps.defaultBrokers];
    if (this.brokers.length === 0) {
      throw new SourceError(`source "${source.name}" names no brokers and KAFKA_BROKERS is unset`);
    }
    const w = job.window;
    this.window = w && w.endTimeMs > 0 ? { startTimeMs: w.startTimeMs, endTimeMs: w.endTimeMs } : null;
    this.idleTimeoutMs =
      w && this.window && w.completion === CompletionPolicy.COMPLETION_POLICY_IDLE ? Math.max(1, w.idleTimeoutMs || 60_000) : null;
    this.completion = completionMode(this.window !== null, this.idleTimeoutMs);
    this.inFlight = new InFlight(deps.inFlightBytes);
    this.kafka = createKafka(`sluice-ingestion-${job.name}`, this.brokers, this.log);
    this.errorTopic = new ErrorTopicProducer(this.kafka);
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
        this.applyPauses();
        return Promise.resolve();
      case 'stopped':
      case 'shut down':
        return this.release();
      case 'finished': {
        const { recordsIn, rowsOut, excluded } = this.counters;
        this.log.info({ records: recordsIn, rows: rowsOut, excluded }, 'bounded job finished');
        return this.release().then(() => this.reportState());
      }
      case 'failed':
        this.log.error({ reason: next.reason }, 'job failed');
        return this.release().then(() => this.reportState());
      default:
        return Promise.resolve();
    }
  }

  /** The phase's name (a method, so TypeScript does not narrow the phase across awaits). */
  private is(...names: PhaseName[]): boolean {
    return names.includes(this.phase.name);
  }

  /**
   * Work of `generation` may go on: it is the current incarnation, the job has not been asked
   * to end, and a consumer session is up.
   */
  private isCurrent(generation: number): boolean {
    return generation === this.incarnation && isLive(this.phase) && Boolean(this.session?.consumer);
  }

  /** Closes the data path until a resync opens a new stream (no-op once the job is ending). */
  private enterResyncing(cause: string, problem: string | null = null): void {
    if (isLive(this.phase)) void this.transitionTo({ name: 'resyncing', cause, problem });
  }

  // ---------------------------------------------------------------- lifecycle

  /** Runs consumer sessions until the job ends; source failures are retried with backoff. */
  private async supervise(): Promise<void> {
    let attempt = 0;
    while (isLive(this.phase)) {
      const started = Date.now();
      try {
        await this.runOnce();
      } catch (err) {
        if (err instanceof FatalJobError || err instanceof PositionError) {
          await this.endSession();
          await this.fail(err.message);
          return;
        }
        if (!isLive(this.phase)) break;
        // A session that ran 30 s before failing starts the backoff over.
        if (Date.now() - started > 30_000) attempt = 0;
        attempt++;
        const cause = describeSourceError(err, this.brokers);
        void this.transitionTo({ name: 'retrying', attempt, cause, delayMs: retryDelayMs(attempt) });
      }
      await this.endSession();
      if (!isLive(this.phase)) break;
      await sleep(retryDelayMs(attempt));
    }
    await this.endSession();
  }

  /** One consumer session: resolves positions, joins the group, runs until a crash or the end. */
  private async runOnce(): Promise<void> {
    let end: (err: unknown) => void = () => {};
    const ended = new Promise<never>((_, reject) => (end = reject));
    ended.catch(() => {});
    const session: Session = { admin: this.kafka.admin(), consumer: null, end };
    this.session = session;
    await session.admin.connect();
    const partitionIds = await requireTopic(session.admin, this.topic);
    await this.resolveBounds(session.admin, partitionIds);
    if (this.boundedComplete()) {
      // Nothing left to read (a restart after everything was committed, or an empty window).
      void this.finish();
      return;
    }
    if (this.session !== session) return; // the job ended meanwhile

    const consumer = this.kafka.consumer({
      groupId: groupIdFor(this.name),
      sessionTimeout: 10_000,
      heartbeatInterval: 1_000,
      rebalanceTimeout: 15_000,
      maxWaitTimeInMs: 250,
      retry: { retries: 3, initialRetryTime: 100, restartOnFailure: async () => false },
    });
    session.consumer = consumer;
    consumer.on(consumer.events.CRASH, (e) => session.end(e.payload.error));
    // Group events of a session that already ended (a crashed consumer) change nothing.
    consumer.on(consumer.events.REBALANCING, () => {
      if (this.session === session) this.enterResyncing('rebalancing');
    });
    consumer.on(consumer.events.GROUP_JOIN, (e) => {
      if (this.session !== session) return;
      this.partitions.assign(e.payload.memberAssignment[this.topic] ?? []);
      this.pausedNow = new Set();
      this.requestResync('group assignment');
    });
    await consumer.connect();
    await consumer.subscribe({ topic: this.topic, fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: 1,
      eachBatch: (payload) => this.onBatch(payload),
    });
    // In the group (kafkajs joins before run resolves, so this is normally already resyncing).
    if (this.is('starting', 'retrying')) this.enterResyncing('joined the group');
    await ended;
  }

  private async endSession(): Promise<void> {
    const session = this.session;
    this.session = null;
    this.pausedNow = new Set();
    await session?.consumer?.disconnect().catch(() => {});
    await session?.admin.disconnect().catch(() => {});
  }

  /**
   * Start and (bounded END_POSITION jobs) end offsets of every partition of the topic, not
   * only the owned ones: completion is judged over the whole topic, whichever process of the
   * group reads a partition.
   */
  private async resolveBounds(admin: Admin, partitionIds: number[]): Promise<void> {
    const missing = partitionIds.filter((p) => !this.partitions.has(p));
    if (missing.length === 0) return;
    const marks = await watermarks(admin, this.topic);
    const committed = await this.committedOffsets();
    const startAt = this.job.start?.timestampMs || this.window?.startTimeMs;
    const needsStartLookup = startAt !== undefined && startAt > 0;
    const startOffsets = needsStartLookup ? await offsetsAtTime(admin, this.topic, startAt, marks) : new Map<number, number>();
    const endOffsets =
      this.completion === 'end-offsets' && this.window ? await offsetsAtTime(admin, this.topic, this.window.endTimeMs, marks) : null;
    for (const p of missing) {
      const wm = marks.get(p) ?? { low: 0, high: 0 };
      const start = chooseStart({
        topic: this.topic,
        partition: p,
        committed: undefined,
        start: this.job.start,
        windowStartMs: this.window?.startTimeMs,
        watermarks: wm,
        timestampOffset: startOffsets.get(p),
      });
      this.partitions.add({
        partition: p,
        position: committed.get(p) ?? start.offset,
        initialStart: start.offset,
        endOffset: endOffsets ? endOffsetFor(endOffsets.get(p) ?? -1, wm) : null,
        highWatermark: wm.high,
        committed: committed.get(p),
        gapCheckedAt: -1,
      });
    }
  }

  private async committedOffsets(): Promise<Map<number, number>> {
    const res = await this.deps.catalog.getCommittedOffsets({ job: this.name });
    const out = new Map<number, number>();
    for (const o of res.offsets) if (o.topic === this.topic) out.set(o.partition, o.nextOffset);
    return out;
  }

  // ---------------------------------------------------------------- resync (start, rebalance, rewind)

  /** Drops the current stream and its uncommitted work; a resync opens the next one. */
  private requestResync(why: string, problem: string | null = null): void {
    if (!isLive(this.phase)) return;
    this.enterResyncing(why, problem);
    const generation = ++this.incarnation;
    this.stream?.cancel();
    this.stream = null;
    this.inFlight.clear();
    this.backpressure = false;
    this.resyncChain = this.resyncChain
      .then(() => this.resync(generation, why))
      .catch((err) => {
        if (err instanceof FatalJobError) return void this.fail(err.message);
        const failed = `resync failed (${why}): ${grpcMessage(err)}; retrying`;
        this.enterResyncing(why, failed);
        this.log.warn({ err: grpcMessage(err) }, 'resync failed; retrying');
        void sleep(1000).then(() => {
          if (this.isCurrent(generation)) this.requestResync(why, failed);
        });
      });
  }

  /** Positions from the catalog, owned partitions sought there, a new stream: then running. */
  private async resync(generation: number, why: string): Promise<void> {
    const session = this.session;
    const consumer = session?.consumer;
    if (!this.isCurrent(generation) || !session || !consumer) return;
    const owned = this.partitions.ownedIds;
    if (owned.length > 0) consumer.pause([{ topic: this.topic, partitions: [...owned] }]);
    this.pausedNow = new Set(owned);
    const committed = await this.committedOffsets();
    const marks = await watermarks(session.admin, this.topic);
    if (!this.isCurrent(generation)) return;
    const lostCovers: { partition: number; start: number; end: number }[] = [];
    for (const p of owned) {
      const st = this.partitions.get(p);
      if (!st) throw new FatalJobError(`partition ${this.topic}/${p} appeared after the job started; restart the job to include it`);
      st.committed = committed.get(p);
      st.position = st.committed ?? st.initialStart;
      st.gapCheckedAt = -1;
      const wm = marks.get(p);
      if (wm) {
        st.highWatermark = wm.high;
        if (st.position < wm.low) {
          const decision = onExpired(this.topic, p, st.position, wm.low, this.job.offsetReset);
          if (decision.action === 'fail') throw new FatalJobError(decision.reason);
          this.log.warn({ partition: p, lost: decision.lost }, decision.reason);
          this.counters.countError('offset_out_of_range', decision.lost);
          lostCovers.push({ partition: p, start: st.position, end: wm.low });
        }
      }
    }
    const workerId = `${this.name}-${this.deps.instanceId}-${generation}`;
    const stream = new TransformStream(
      this.deps.transformation,
      { job: this.name, table: this.job.table, mapping: this.job.mapping, workerId, flushBufferBytes: this.job.bufferBytes },
      {
        onAck: (ack) => this.onAck(generation, ack),
        onBroken: (reason) => this.onStreamBroken(generation, reason),
      },
    );
    this.stream = stream;
    // Expired ranges (offset_reset = EARLIEST) are covered without rows, so commits continue.
    for (const gap of lostCovers) {
      const seq = stream.send([], [{ topic: this.topic, partition: gap.partition, startOffset: gap.start, endOffset: gap.end }]);
      this.inFlight.add(seq, RECORD_OVERHEAD_BYTES);
      this.partitions.at(gap.partition).position = gap.end;
    }
    for (const p of owned) consumer.seek({ topic: this.topic, partition: p, offset: String(this.partitions.at(p).position) });
    this.lastRecordAtMs = Date.now();
    this.log.info({ why, workerId, owned }, 'stream opened; partitions sought to committed offsets');
    if (this.is('resyncing')) void this.transitionTo({ name: 'running' });
    if (this.ownedDone()) void this.finish();
  }

  private onStreamBroken(generation: number, reason: string): void {
    if (generation !== this.incarnation || !isLive(this.phase)) return;
    const problem = `transformation stream broke: ${reason}; re-reading from the committed offsets`;
    this.log.warn({ reason }, 'transform stream broke');
    this.enterResyncing('stream broke', problem);
    void sleep(1000).then(() => {
      if (this.isCurrent(generation)) this.requestResync('stream broke', problem);
    });
  }

  // ---------------------------------------------------------------- data path

  private async onBatch({ batch, resolveOffset, isStale, isRunning }: EachBatchPayload): Promise<void> {
    if (!acceptsBatches(this.phase) || isStale() || !isRunning()) return;
    const stream = this.stream;
    const st = this.partitions.get(batch.partition);
    if (!stream || !st || !this.partitions.isOwned(batch.partition)) return;
    st.highWatermark = Number(batch.highWatermark);
    if (readToEnd(st)) return;

    const gap = leadingGap(st.position, batch.firstOffset());
    if (gap && !(await this.acceptGap(st, gap.end))) return;
    if (stream !== this.stream) return;

    const plan = planBatch(st.position, st.endOffset, this.window, batch.messages, batchEndOffset(batch.lastOffset()));
    if (plan.coverEnd === plan.coverStart) return;
    const { records, bytes } = toKafkaRecords(this.topic, batch.partition, plan.send);
    // One span per batch (never per record), linked to the producers' spans found in headers.
    const span = tracer().startSpan('ingestion.batch', {
      attributes: {
        'sluice.job': this.job.name,
        'messaging.destination.name': this.topic,
        'messaging.kafka.destination.partition': batch.partition,
        'sluice.offsets.start': plan.coverStart,
        'sluice.offsets.end': plan.coverEnd,
        'messaging.batch.message_count': plan.send.length,
      },
      links: producerLinks(plan.send),
    });
    const seq = stream.send(records, [
      { topic: this.topic, partition: batch.partition, startOffset: plan.coverStart, endOffset: plan.coverEnd },
    ]);
    span.end();
    this.inFlight.add(seq, bytes);
    st.position = plan.coverEnd;
    this.counters.countRead(plan.send.length + plan.excluded, plan.excluded);
    if (batch.messages.length > 0) this.lastRecordAtMs = Date.now();
    resolveOffset(String(plan.coverEnd - 1));
    if (this.inFlight.overBudget) this.backpressure = true;
    if (plan.reachedEnd || this.backpressure) this.applyPauses();
    if (plan.reachedEnd && this.ownedDone()) void this.finish();
  }

  /**
   * The fetch started past the position. Either offsets were removed by retention (the
   * OFFSET_OUT_OF_RANGE policy decides), or the gap is real but harmless (compaction, a
   * fetch of transaction markers only), or the batch is stale (fetched before a seek). A
   * stale batch cannot be told from a real gap by looking at it, so the first time the
   * partition is sought back to the position; a gap that is still there is covered.
   */
  private async acceptGap(st: PartitionState, gapEnd: number): Promise<boolean> {
    const admin = this.session?.admin;
    const marks = admin ? await watermarks(admin, this.topic) : null;
    const low = marks?.get(st.partition)?.low ?? 0;
    if (low > st.position) {
      const decision = onExpired(this.topic, st.partition, st.position, low, this.job.offsetReset);
      if (decision.action === 'fail') {
        void this.fail(decision.reason);
        return false;
      }
      this.counters.countError('offset_out_of_range', decision.lost);
      this.log.warn({ partition: st.partition }, decision.reason);
      return true;
    }
    if (st.gapCheckedAt !== st.position) {
      st.gapCheckedAt = st.position;
      this.session?.consumer?.seek({ topic: this.topic, partition: st.partition, offset: String(st.position) });
      return false;
    }
    this.log.debug({ partition: st.partition, from: st.position, to: gapEnd }, 'covering an offset gap');
    return true;
  }

  private onAck(generation: number, ack: BatchAck): void {
    if (generation !== this.incarnation) return;
    this.counters.countAck(ack);
    // A batch with error-topic records is done (and its bytes released) once they are produced
    // and transformation knows it: its flush reports wait for that before covering the batch.
    if (ack.errorRecords.length > 0) {
      void this.produceErrors(generation, ack.errorRecords).then((ok) => {
        if (!ok || generation !== this.incarnation) return;
        this.stream?.confirmErrorsProduced(ack.sequence);
        this.settle(generation, ack.sequence);
      });
    } else this.settle(generation, ack.sequence);
  }

  /** The batch is done: its bytes leave the in-flight budget. */
  private settle(generation: number, sequence: number): void {
    if (generation !== this.incarnation) return;
    this.inFlight.ack(sequence);
    if (this.backpressure && this.inFlight.drained) {
      this.backpressure = false;
      this.applyPauses();
    }
  }

  /**
   * ERROR_TOPIC policy: the refused records go to the error topic in source order. False (and
   * the stream's uncommitted work dropped) when producing failed.
   */
  private produceErrors(generation: number, records: KafkaRecord[]): Promise<boolean> {
    return this.errorTopic.produce(records).then(
      () => true,
      (err) => {
        // Drop the stream's uncommitted work so the refused records are re-read (and refused
        // and produced again) rather than lost.
        const problem = `error topic produce failed: ${describeSourceError(err, this.brokers)}; re-reading`;
        if (this.isCurrent(generation)) this.requestResync('error topic produce failed', problem);
        return false;
      },
    );
  }

  /**
   * Pauses exactly the owned partitions that should not be fetched now. Left alone while
   * resyncing (the resync paused them all and calls this when done) and with no consumer.
   */
  private applyPauses(): void {
    const consumer = this.session?.consumer;
    if (!consumer || !this.is('running', 'finishing', 'stopping')) return;
    const all = this.userPaused || this.backpressure || !isLive(this.phase);
    const owned = this.partitions.ownedIds;
    const want = new Set(owned.filter((p) => all || readToEnd(this.partitions.at(p))));
    const pause = owned.filter((p) => want.has(p) && !this.pausedNow.has(p));
    const resume = owned.filter((p) => !want.has(p) && this.pausedNow.has(p));
    if (pause.length > 0) consumer.pause([{ topic: this.topic, partitions: pause }]);
    if (resume.length > 0) consumer.resume([{ topic: this.topic, partitions: resume }]);
    this.pausedNow = want;
  }

  // ---------------------------------------------------------------- commits and completion

  private subscribeEvents(): void {
    const { nats } = this.deps;
    const table = this.job.table;
    if (table) {
      this.subscriptions.push(
        subscribe(
          nats,
          subjects.committed(table),
          (payload) => this.onCommitted(CommittedEvent.decode(payload)),
          (err) => this.log.warn({ err }, 'bad committed event'),
        ),
      );
    }
    this.subscriptions.push(
      subscribe(
        nats,
        subjects.rewind(this.name),
        (payload) => {
          const e = RewindEvent.decode(payload);
          // Rewinds for a stream that is no longer current are ignored (DESIGN.md).
          if (this.stream && e.workerId === this.stream.workerId && isLive(this.phase)) {
            this.log.info({ workerId: e.workerId, reason: e.reason }, 'rewind');
            this.requestResync(`rewind: ${e.reason}`);
          }
        },
        (err) => this.log.warn({ err }, 'bad rewind event'),
      ),
    );
    if (this.idleTimeoutMs !== null) {
      const every = Math.max(50, Math.min(1000, Math.floor(this.idleTimeoutMs / 4)));
      this.timers.push(setInterval(() => this.checkIdle(), every));
    }
  }

  private onCommitted(e: CommittedEvent): void {
    if (e.job !== this.name) return;
    const toKafka: { topic: string; partition: number; offset: string }[] = [];
    for (const r of e.offsets) {
      if (r.topic !== this.topic || !this.partitions.has(r.partition)) continue;
      this.partitions.recordCommitted(r.partition, r.endOffset);
      if (this.partitions.isOwned(r.partition)) toKafka.push({ topic: this.topic, partition: r.partition, offset: String(r.endOffset) });
    }
    this.counters.recordCommit(e);
    // For lag tools only; positions never come from here. Not while the group is being resynced.
    const consumer = this.session?.consumer;
    if (toKafka.length > 0 && consumer && this.is('running', 'finishing', 'stopping')) {
      consumer.commitOffsets(toKafka).catch((err) => this.log.debug({ err: String(err) }, 'group offset commit failed (lag only)'));
    }
  }

  private checkIdle(): void {
    if (!this.is('running') || this.userPaused || this.idleTimeoutMs === null) return;
    if (Date.now() - this.lastRecordAtMs >= this.idleTimeoutMs && this.inFlight.count === 0) {
      this.log.info({ idleMs: this.idleTimeoutMs }, 'no new records for the idle timeout; finishing');
      void this.finish();
    }
  }

  /** Every owned partition has reached its end (END_POSITION jobs). */
  private ownedDone(): boolean {
    return ownedDone(this.completion, this.partitions.ownedStates());
  }

  /** Committed (or empty from the start) up to the end on every partition of the topic. */
  private boundedComplete(): boolean {
    return boundedComplete(this.completion, this.partitions.all());
  }

  private coveredUpTo(targets: Map<number, number>): boolean {
    return coveredUpTo(targets, (p) => this.partitions.at(p));
  }

  /**
   * A bounded job's end: wait for this process's batches to be acknowledged, ask for a
   * final flush, and once the commit covers the targets mark the job FINISHED with its counts.
   * END_POSITION waits for the whole topic's end offsets; IDLE for this process's positions.
   * Leaving `finishing` (stop, shutdown, failure, a source failure or resync) abandons the
   * wait; after a resync or retry the end is detected again.
   */
  private async finish(): Promise<void> {
    if (!isLive(this.phase) || this.is('finishing')) return;
    void this.transitionTo({ name: 'finishing' });
    const targets = this.partitions.positions();
    const done = () => (this.completion === 'idle' ? this.coveredUpTo(targets) : this.boundedComplete());
    while (this.is('finishing') && !done()) {
      await this.flushAndWait(5_000, done);
      if (!done()) await this.refreshCommitted().catch(() => {});
    }
    if (this.is('finishing')) await this.transitionTo({ name: 'finished', summary: this.counters.summary() });
  }

  /** Waits for in-flight acks, triggers a flush, then polls `done` until timeoutMs. */
  private async flushAndWait(timeoutMs: number, done: () => boolean): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.inFlight.count > 0 && Date.now() < deadline) await sleep(20);
    if (this.job.table && !done()) {
      await this.deps.commit.triggerFlush({ table: this.job.table, job: this.name }, { deadlineMs: 5_000 }).catch((err) => {
        this.log.debug({ err: grpcMessage(err) }, 'TriggerFlush failed; waiting for the commit interval');
      });
    }
    while (!done() && Date.now() < deadline) await sleep(50);
  }

  private async refreshCommitted(): Promise<void> {
    for (const [p, next] of await this.committedOffsets()) this.partitions.recordCommitted(p, next);
  }

  // ---------------------------------------------------------------- control (gRPC)

  pause(): void {
    if (!isLive(this.phase)) return;
    this.userPaused = true;
    this.applyPauses();
  }

  resume(): void {
    if (!isLive(this.phase)) return;
    this.userPaused = false;
    this.applyPauses();
  }

  /**
   * Graceful stop: stop fetching, let transformation acknowledge what was sent, flush, and
   * wait (up to stopTimeoutMs) for the commit covering this process's positions. What is not
   * committed by then is simply re-read on the next start.
   */
  async stop(): Promise<void> {
    if (!isLive(this.phase)) return this.loop;
    const targets = this.partitions.positions();
    await this.transitionTo({ name: 'stopping' });
    await this.flushAndWait(this.deps.stopTimeoutMs, () => this.coveredUpTo(targets));
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

  /** Entering an end phase: timers, subscriptions, the session, the stream and the producer go. */
  private async release(): Promise<void> {
    for (const t of this.timers) clearInterval(t);
    for (const s of this.subscriptions) s.unsubscribe();
    this.session?.end(new Error('job ended'));
    if (this.stream) {
      // A graceful end lets transformation keep what it was sent (it is committed or
      // re-read); cancel is for dropping work. Both are safe: offsets decide.
      if (this.inFlight.count === 0) this.stream.end();
      else this.stream.cancel();
    }
    this.stream = null;
    await this.endSession();
    await this.errorTopic.close();
  }

  /** Resolves when the supervisor loop has exited. */
  done(): Promise<void> {
    return this.loop;
  }

  get isTerminal(): boolean {
    return this.is('stopped', 'finished', 'failed');
  }

  /** Records a FINISHED or FAILED job in the catalog (the registry records the others). */
  private async reportState(): Promise<void> {
    const state = jobStateOf(this.phase, this.userPaused);
    try {
      await this.deps.catalog.updateJobState({ name: this.name, state, reason: reasonOf(this.phase) });
    } catch (err) {
      this.log.warn({ err: grpcMessage(err), state }, 'could not record the job state in the catalog');
    }
  }

  // ---------------------------------------------------------------- status

  /** Refreshes high watermarks (best effort) for an accurate lag. */
  async refreshWatermarks(): Promise<void> {
    const admin = this.session?.admin;
    if (!admin) return;
    for (const [p, wm] of await watermarks(admin, this.topic)) this.partitions.setHighWatermark(p, wm.high);
  }

  status(): JobStatus {
    return {
      job: this.name,
      state: jobStateOf(this.phase, this.userPaused),
      reason: reasonOf(this.phase),
      partitions: this.partitions.status(),
      recordsIn: this.counters.recordsIn,
      rowsOut: this.counters.rowsOut,
      recordsExcluded: this.counters.excluded,
      errors: this.counters.errorCounts(),
      lastCommit: this.counters.lastCommit,
      startedAtMs: this.startedAtMs,
    };
  }
}

export function newInstanceId(): string {
  return randomBytes(4).toString('hex');
}
