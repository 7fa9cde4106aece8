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
 * Side effects (Kafka, gRPC, NATS) live here; the decisions are in coverage.ts, positions.ts
 * and in-flight.ts.
 */
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Admin, Consumer, EachBatchPayload, Kafka, KafkaMessage } from 'kafkajs';
import { type CatalogServiceService, CompletionPolicy, JobState, type Job, type Source } from '#shared/gen/sluice/v1/catalog.js';
import type { CommitServiceService } from '#shared/gen/sluice/v1/commit.js';
import { CommittedEvent, RewindEvent } from '#shared/gen/sluice/v1/events.js';
import type { JobStatus, PartitionStatus } from '#shared/gen/sluice/v1/ingestion.js';
import type { BatchAck } from '#shared/gen/sluice/v1/transformation.js';
import type { KafkaHeader, KafkaRecord } from '#shared/gen/sluice/v1/types.js';
import { subjects } from '#shared/events.js';
import { grpcMessage } from '#shared/errors.js';
import type { ServiceClient } from '#shared/grpc/client.js';
import type { Logger } from '#shared/logger.js';
import { subscribe, type NatsConnection, type Subscription } from '#shared/nats.js';
import { tracer } from '#shared/tracing.js';
import { boundedComplete, type CompletionMode, completionMode, coveredUpTo, ownedDone, readToEnd } from './completion.js';
import { batchEndOffset, leadingGap, planBatch, type TimeBounds } from './coverage.js';
import { ErrorTopicProducer } from './error-topic.js';
import { JobCounters } from './job-counters.js';
import { InFlight } from './in-flight.js';
import { createKafka, describeSourceError, offsetsAtTime, requireTopic, SourceError, watermarks } from './kafka-source.js';
import { chooseStart, endOffsetFor, groupIdFor, onExpired, PositionError, type Watermarks } from './positions.js';
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

interface PartitionState {
  readonly partition: number;
  /** Next offset to account for: everything below was sent or covered in this incarnation. */
  position: number;
  /** Where the job started on this partition before any commit (the start position). */
  initialStart: number;
  /** END_POSITION jobs: the exclusive end resolved at start. */
  endOffset: number | null;
  highWatermark: number;
  /** The catalog's committed next offset; undefined before the first commit. */
  committed: number | undefined;
  /** A leading gap at this position was re-fetched once (see onBatch). */
  gapCheckedAt: number;
}

const KEY_OVERHEAD_BYTES = 64;

export class JobRunner {
  readonly name: string;
  private state: JobState = JobState.JOB_STATE_RUNNING;
  private reason = '';
  private readonly startedAtMs = Date.now();
  private readonly log: Logger;
  private readonly brokers: string[];
  private readonly topic: string;
  private readonly window: TimeBounds | null;
  private readonly idleTimeoutMs: number | null;
  private readonly completion: CompletionMode;

  private readonly kafka: Kafka;
  private admin: Admin | null = null;
  private consumer: Consumer | null = null;
  private readonly errorTopic: ErrorTopicProducer;
  private readonly subscriptions: Subscription[] = [];

  private readonly partitions = new Map<number, PartitionState>();
  private owned: number[] = [];
  private pausedNow = new Set<number>();
  private userPaused = false;
  private backpressure = false;

  private stream: TransformStream | null = null;
  private incarnation = 0;
  private resyncing = true;
  private resyncChain: Promise<void> = Promise.resolve();
  private readonly inFlight: InFlight;

  private readonly counters = new JobCounters();
  private lastRecordAtMs = Date.now();

  /** Set once the job should end: 'finish' (bounded, done), 'stop' (StopJob), 'shutdown' (process). */
  private ending: 'finish' | 'stop' | 'shutdown' | null = null;
  private finishing = false;
  private crashed: ((err: unknown) => void) | null = null;
  private loop: Promise<void> = Promise.resolve();
  private readonly timers: NodeJS.Timeout[] = [];

  constructor(
    readonly job: Job,
    readonly source: Source,
    private readonly deps: RunnerDeps,
  ) {
    this.name = job.name;
    this.topic = source.topic;
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

  // ---------------------------------------------------------------- lifecycle

  /** Runs the consumer until the job ends; source failures are retried with backoff. */
  private async supervise(): Promise<void> {
    // 500 ms doubling to 30 s; a session that ran 30 s before failing starts over.
    const retryDelayMs = (attempt: number) => Math.min(30_000, 500 * 2 ** Math.max(0, attempt - 1));
    let attempt = 0;
    while (this.ending === null) {
      const started = Date.now();
      try {
        await this.runOnce();
      } catch (err) {
        if (err instanceof FatalJobError || err instanceof PositionError) {
          await this.teardownConsumer();
          await this.fail(err.message);
          return;
        }
        if (this.ending !== null) break;
        if (Date.now() - started > 30_000) attempt = 0;
        attempt++;
        this.reason = `${describeSourceError(err, this.brokers)}; retrying in ${retryDelayMs(attempt)} ms (attempt ${attempt})`;
        this.log.warn({ reason: this.reason }, 'source failure');
      }
      await this.teardownConsumer();
      if (this.ending !== null) break;
      await sleep(retryDelayMs(attempt));
    }
    await this.teardownConsumer();
  }

  /** One consumer session: resolves positions, joins the group, runs until a crash or the end. */
  private async runOnce(): Promise<void> {
    const admin = this.kafka.admin();
    this.admin = admin;
    await admin.connect();
    const partitionIds = await requireTopic(admin, this.topic);
    await this.resolveBounds(admin, partitionIds);
    if (this.boundedComplete()) {
      // Nothing left to read (a restart after everything was committed, or an empty window).
      void this.finish();
      return;
    }

    const consumer = this.kafka.consumer({
      groupId: groupIdFor(this.name),
      sessionTimeout: 10_000,
      heartbeatInterval: 1_000,
      rebalanceTimeout: 15_000,
      maxWaitTimeInMs: 250,
      retry: { retries: 3, initialRetryTime: 100, restartOnFailure: async () => false },
    });
    this.consumer = consumer;
    const crashed = new Promise<void>((_, reject) => (this.crashed = reject));
    crashed.catch(() => {});
    consumer.on(consumer.events.CRASH, (e) => this.crashed?.(e.payload.error));
    consumer.on(consumer.events.REBALANCING, () => {
      this.resyncing = true;
    });
    consumer.on(consumer.events.GROUP_JOIN, (e) => {
      this.owned = [...(e.payload.memberAssignment[this.topic] ?? [])].sort((a, b) => a - b);
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
    if (this.reason.includes('retrying')) this.reason = '';
    await crashed;
  }

  private async teardownConsumer(): Promise<void> {
    this.resyncing = true;
    this.crashed = null;
    const consumer = this.consumer;
    const admin = this.admin;
    this.consumer = null;
    this.admin = null;
    this.pausedNow = new Set();
    await consumer?.disconnect().catch(() => {});
    await admin?.disconnect().catch(() => {});
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
      this.window && this.idleTimeoutMs === null ? await offsetsAtTime(admin, this.topic, this.window.endTimeMs, marks) : null;
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
      const endOffset = endOffsets ? endOffsetFor(endOffsets.get(p) ?? -1, wm) : null;
      this.partitions.set(p, {
        partition: p,
        position: committed.get(p) ?? start.offset,
        initialStart: start.offset,
        endOffset,
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

  private requestResync(why: string): void {
    this.resyncing = true;
    const generation = ++this.incarnation;
    this.stream?.cancel();
    this.stream = null;
    this.inFlight.clear();
    this.backpressure = false;
    this.resyncChain = this.resyncChain
      .then(() => this.resync(generation, why))
      .catch((err) => {
        if (err instanceof FatalJobError) return void this.fail(err.message);
        this.reason = `resync failed (${why}): ${grpcMessage(err)}; retrying`;
        this.log.warn({ err: grpcMessage(err) }, 'resync failed; retrying');
        void sleep(1000).then(() => {
          if (generation === this.incarnation && this.ending === null && this.consumer) this.requestResync(why);
        });
      });
  }

  /** Drops uncommitted work: new stream, positions from the catalog, owned partitions sought there. */
  private async resync(generation: number, why: string): Promise<void> {
    if (generation !== this.incarnation || this.ending !== null || !this.consumer) return;
    const consumer = this.consumer;
    if (this.owned.length > 0) consumer.pause([{ topic: this.topic, partitions: this.owned }]);
    this.pausedNow = new Set(this.owned);
    const committed = await this.committedOffsets();
    const marks = this.admin ? await watermarks(this.admin, this.topic) : new Map<number, Watermarks>();
    if (generation !== this.incarnation) return;
    const lostCovers: { partition: number; start: number; end: number }[] = [];
    for (const p of this.owned) {
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
      {
        job: this.name,
        table: this.job.table,
        mapping: this.job.mapping,
        workerId,
        flushBufferBytes: this.job.bufferBytes,
      },
      {
        onAck: (ack) => this.onAck(generation, ack),
        onBroken: (reason) => this.onStreamBroken(generation, reason),
      },
    );
    this.stream = stream;
    // Expired ranges (offset_reset = EARLIEST) are covered without rows, so commits continue.
    for (const gap of lostCovers) {
      const seq = stream.send([], [{ topic: this.topic, partition: gap.partition, startOffset: gap.start, endOffset: gap.end }]);
      this.inFlight.add(seq, KEY_OVERHEAD_BYTES);
      this.partitions.get(gap.partition)!.position = gap.end;
    }
    for (const p of this.owned) consumer.seek({ topic: this.topic, partition: p, offset: String(this.partitions.get(p)!.position) });
    this.lastRecordAtMs = Date.now();
    this.resyncing = false;
    this.log.info({ why, workerId, owned: this.owned }, 'stream opened; partitions sought to committed offsets');
    this.applyPauses();
    if (this.ownedDone()) void this.finish();
  }

  private onStreamBroken(generation: number, reason: string): void {
    if (generation !== this.incarnation || this.ending !== null) return;
    this.reason = `transformation stream broke: ${reason}; re-reading from the committed offsets`;
    this.log.warn({ reason }, 'transform stream broke');
    this.resyncing = true;
    void sleep(1000).then(() => {
      if (generation === this.incarnation && this.ending === null && this.consumer) this.requestResync('stream broke');
    });
  }

  // ---------------------------------------------------------------- data path

  private async onBatch({ batch, resolveOffset, isStale, isRunning }: EachBatchPayload): Promise<void> {
    if (this.resyncing || isStale() || !isRunning() || this.ending !== null) return;
    const stream = this.stream;
    const st = this.partitions.get(batch.partition);
    if (!stream || !st || !this.owned.includes(batch.partition)) return;
    st.highWatermark = Number(batch.highWatermark);
    if (readToEnd(st)) return;

    const gap = leadingGap(st.position, batch.firstOffset());
    if (gap && !(await this.acceptGap(st, gap.end))) return;
    if (stream !== this.stream) return;

    const plan = planBatch(st.position, st.endOffset, this.window, batch.messages, batchEndOffset(batch.lastOffset()));
    if (plan.coverEnd === plan.coverStart) return;
    let bytes = KEY_OVERHEAD_BYTES;
    const records: KafkaRecord[] = new Array(plan.send.length);
    for (let i = 0; i < plan.send.length; i++) {
      const r = toKafkaRecord(this.topic, batch.partition, plan.send[i]);
      bytes += KEY_OVERHEAD_BYTES + (r.key?.length ?? 0) + (r.value?.length ?? 0);
      records[i] = r;
    }
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
    const marks = this.admin ? await watermarks(this.admin, this.topic) : null;
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
      this.consumer?.seek({ topic: this.topic, partition: st.partition, offset: String(st.position) });
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
        this.reason = `error topic produce failed: ${describeSourceError(err, this.brokers)}; re-reading`;
        if (generation === this.incarnation && this.ending === null && this.consumer) this.requestResync('error topic produce failed');
        return false;
      },
    );
  }

  /** Pauses exactly the owned partitions that should not be fetched now. */
  private applyPauses(): void {
    const consumer = this.consumer;
    if (!consumer || this.resyncing) return;
    const want = new Set<number>();
    for (const p of this.owned) {
      const done = readToEnd(this.partitions.get(p)!);
      if (this.userPaused || this.backpressure || done || this.ending !== null) want.add(p);
    }
    const pause = this.owned.filter((p) => want.has(p) && !this.pausedNow.has(p));
    const resume = this.owned.filter((p) => !want.has(p) && this.pausedNow.has(p));
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
          if (this.stream && e.workerId === this.stream.workerId && this.ending === null) {
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
      if (r.topic !== this.topic) continue;
      const st = this.partitions.get(r.partition);
      if (!st) continue;
      if (st.committed === undefined || r.endOffset > st.committed) st.committed = r.endOffset;
      if (this.owned.includes(r.partition)) toKafka.push({ topic: this.topic, partition: r.partition, offset: String(r.endOffset) });
    }
    this.counters.recordCommit(e);
    // For lag tools only; positions never come from here.
    if (toKafka.length > 0 && this.consumer && !this.resyncing) {
      this.consumer.commitOffsets(toKafka).catch((err) => this.log.debug({ err: String(err) }, 'group offset commit failed (lag only)'));
    }
  }

  private checkIdle(): void {
    if (this.ending !== null || this.resyncing || this.userPaused || this.idleTimeoutMs === null) return;
    if (Date.now() - this.lastRecordAtMs >= this.idleTimeoutMs && this.inFlight.count === 0) {
      this.log.info({ idleMs: this.idleTimeoutMs }, 'no new records for the idle timeout; finishing');
      void this.finish();
    }
  }

  /** Every owned partition has reached its end (END_POSITION jobs). */
  private ownedDone(): boolean {
    return ownedDone(
      this.completion,
      this.owned.map((p) => this.partitions.get(p)!),
    );
  }

  /** Committed (or empty from the start) up to the end on every partition of the topic. */
  private boundedComplete(): boolean {
    return boundedComplete(this.completion, [...this.partitions.values()]);
  }

  /**
   * A bounded job's end: wait for this process's batches to be acknowledged, ask for a
   * final flush, and once the commit covers the targets mark the job FINISHED with its counts.
   * END_POSITION waits for the whole topic's end offsets; IDLE for this process's positions.
   */
  private async finish(): Promise<void> {
    if (this.finishing) return;
    this.finishing = true;
    this.applyPauses();
    const targets = new Map<number, number>();
    for (const p of this.owned) targets.set(p, this.partitions.get(p)!.position);
    const done = () => (this.idleTimeoutMs === null ? this.boundedComplete() : this.coveredUpTo(targets));
    while (this.ending === null || this.ending === 'finish') {
      if (done()) break;
      await this.flushAndWait(5_000, done);
      if (!done()) await this.refreshCommitted().catch(() => {});
    }
    if (this.ending !== null && this.ending !== 'finish') return;
    this.ending = 'finish';
    this.state = JobState.JOB_STATE_FINISHED;
    this.reason = `finished: ${this.counters.summary()}`;
    const { recordsIn, rowsOut, excluded } = this.counters;
    this.log.info({ records: recordsIn, rows: rowsOut, excluded }, 'bounded job finished');
    await this.release();
    await this.reportState(JobState.JOB_STATE_FINISHED, this.reason);
  }

  private coveredUpTo(targets: Map<number, number>): boolean {
    return coveredUpTo(targets, (p) => this.partitions.get(p)!);
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
    const committed = await this.committedOffsets();
    for (const [p, next] of committed) {
      const st = this.partitions.get(p);
      if (st && (st.committed === undefined || next > st.committed)) st.committed = next;
    }
  }

  // ---------------------------------------------------------------- control (gRPC)

  pause(): void {
    if (this.ending !== null) return;
    this.userPaused = true;
    this.state = JobState.JOB_STATE_PAUSED;
    this.applyPauses();
  }

  resume(): void {
    if (this.ending !== null) return;
    this.userPaused = false;
    this.state = JobState.JOB_STATE_RUNNING;
    this.applyPauses();
  }

  /**
   * Graceful stop: stop fetching, let transformation acknowledge what was sent, flush, and
   * wait (up to stopTimeoutMs) for the commit covering this process's positions. What is not
   * committed by then is simply re-read on the next start.
   */
  async stop(): Promise<void> {
    if (this.ending !== null) return this.loop;
    this.state = JobState.JOB_STATE_STOPPING;
    this.applyPauses();
    const targets = new Map<number, number>();
    for (const p of this.owned) targets.set(p, this.partitions.get(p)!.position);
    this.ending = 'stop';
    this.applyPauses();
    await this.flushAndWait(this.deps.stopTimeoutMs, () => this.coveredUpTo(targets));
    this.state = JobState.JOB_STATE_STOPPED;
    await this.release();
  }

  /** Process shutdown: leave the group, drop the stream; the job stays RUNNING in the catalog. */
  async shutdown(): Promise<void> {
    if (this.ending === null) this.ending = 'shutdown';
    await this.release();
  }

  private async fail(reason: string): Promise<void> {
    if (this.state === JobState.JOB_STATE_FAILED || this.state === JobState.JOB_STATE_FINISHED) return;
    this.ending ??= 'stop';
    this.state = JobState.JOB_STATE_FAILED;
    this.reason = reason;
    this.log.error({ reason }, 'job failed');
    await this.release();
    await this.reportState(JobState.JOB_STATE_FAILED, reason);
  }

  private released = false;
  private async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    for (const t of this.timers) clearInterval(t);
    for (const s of this.subscriptions) s.unsubscribe();
    this.resyncing = true;
    this.crashed?.(new Error('job ended'));
    if (this.stream) {
      // A graceful end lets transformation keep what it was sent (it is committed or
      // re-read); cancel is for dropping work. Both are safe: offsets decide.
      if (this.inFlight.count === 0) this.stream.end();
      else this.stream.cancel();
    }
    this.stream = null;
    await this.teardownConsumer();
    await this.errorTopic.close();
  }

  /** Resolves when the supervisor loop has exited. */
  done(): Promise<void> {
    return this.loop;
  }

  get isTerminal(): boolean {
    return (
      this.state === JobState.JOB_STATE_FINISHED || this.state === JobState.JOB_STATE_FAILED || this.state === JobState.JOB_STATE_STOPPED
    );
  }

  private async reportState(state: JobState, reason: string): Promise<void> {
    try {
      await this.deps.catalog.updateJobState({ name: this.name, state, reason });
    } catch (err) {
      this.log.warn({ err: grpcMessage(err), state }, 'could not record the job state in the catalog');
    }
  }

  // ---------------------------------------------------------------- status

  /** Refreshes high watermarks (best effort) for an accurate lag. */
  async refreshWatermarks(): Promise<void> {
    if (!this.admin) return;
    const marks = await watermarks(this.admin, this.topic);
    for (const [p, wm] of marks) {
      const st = this.partitions.get(p);
      if (st) st.highWatermark = wm.high;
    }
  }

  status(): JobStatus {
    const shown = this.owned.length > 0 ? this.owned : [...this.partitions.keys()].sort((a, b) => a - b);
    const partitions: PartitionStatus[] = shown.map((p) => {
      const st = this.partitions.get(p)!;
      const committed = st.committed ?? st.initialStart;
      return {
        topic: this.topic,
        partition: p,
        position: st.position,
        endOffset: st.endOffset ?? undefined,
        highWatermark: st.highWatermark,
        committedOffset: st.committed ?? -1,
        lag: Math.max(0, (st.endOffset ?? st.highWatermark) - committed),
      };
    });
    return {
      job: this.name,
      state: this.state,
      reason: this.reason,
      partitions,
      recordsIn: this.counters.recordsIn,
      rowsOut: this.counters.rowsOut,
      recordsExcluded: this.counters.excluded,
      errors: this.counters.errorCounts(),
      lastCommit: this.counters.lastCommit,
      startedAtMs: this.startedAtMs,
    };
  }
}

/** The proto record of a kafkajs message (one allocation per record; buffers are shared). */
function toKafkaRecord(topic: string, partition: number, m: KafkaMessage): KafkaRecord {
  const headers: KafkaHeader[] = [];
  if (m.headers) {
    for (const key in m.headers) {
      const v = m.headers[key];
      if (Array.isArray(v)) for (const item of v) headers.push({ key, value: toBuffer(item) });
      else headers.push({ key, value: toBuffer(v) });
    }
  }
  return {
    topic,
    partition,
    offset: Number(m.offset),
    timestampMs: Number(m.timestamp),
    key: m.key ?? undefined,
    value: m.value ?? undefined,
    headers,
  };
}

function toBuffer(v: Buffer | string | undefined): Buffer | undefined {
  if (v === undefined) return undefined;
  return typeof v === 'string' ? Buffer.from(v) : v;
}

export function newInstanceId(): string {
  return randomBytes(4).toString('hex');
}
