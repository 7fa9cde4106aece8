/**
 * The reading half of a job (the lifecycle half is JobRunner): consumer sessions in the job's
 * group, partition cursors, and one Transform stream incarnation at a time with the
 * exactly-once bookkeeping of DESIGN.md:
 *
 * - every batch sent carries `covers`, contiguous per partition from the partition's position;
 * - positions come from the catalog's committed offsets on every (re)start, rebalance and
 *   rewind, never from Kafka's group offsets (those are written after each commit, for lag
 *   tools only);
 * - a rebalance, a RewindEvent naming the current stream, or a broken stream drops all
 *   uncommitted work: the stream is cancelled, a new one opens under a new worker_id, and the
 *   owned partitions are sought to the committed offsets.
 *
 * The reader never changes the job's phase itself: it reads it through ReaderHost and reports
 * what happened (resyncing, synced, end reached, fatal) for JobRunner to decide.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Admin, Consumer, Kafka } from 'kafkajs';
import type { CatalogServiceService, Job } from '#shared/gen/sluice/v1/catalog.js';
import type { CommittedEvent, RewindEvent } from '#shared/gen/sluice/v1/events.js';
import type { BatchAck } from '#shared/gen/sluice/v1/transformation.js';
import type { KafkaRecord } from '#shared/gen/sluice/v1/types.js';
import { grpcMessage } from '#shared/errors.js';
import type { ServiceClient } from '#shared/grpc/client.js';
import type { Logger } from '#shared/logger.js';
import { boundedComplete, coveredUpTo, endWithoutRecord, handsOver, type JobBounds, ownedDone, readToEnd } from './completion.js';
import { findStart, leadingGap, planBatch } from './coverage.js';
import { describeSources, ErrorTopicProducer, permanentProduceError } from './error-topic.js';
import { InFlight } from './in-flight.js';
import { JobCounters } from './job-counters.js';
import { createConsumer, createKafka, describeSourceError, groupSize, requireTopic, SourceError, watermarks } from './kafka-source.js';
import { addNewPartitions, type PartitionState, PartitionTable } from './partition-table.js';
import type { FetchedPartition } from './kafka/fetch.js';
import type { FetchedRecords } from './kafka/fetched-records.js';
import { type FetchTarget, OFFSET_OUT_OF_RANGE, PartitionFetcher } from './partition-fetcher.js';
import { acceptsBatches, isLive, type Phase } from './phase.js';
import { parallelismAssigner } from './members.js';
import { groupIdFor, onExpired, type Watermarks } from './positions.js';
import { fetchTopicId } from './kafka-topic-id.js';
import { judgeTopic } from './topic-identity.js';
import { startBatchSpan } from './trace-links.js';
import { traceparentOf } from '#shared/tracing.js';
import { TransformStream, type TransformationClient } from './transform-stream.js';

export type CatalogClient = ServiceClient<typeof CatalogServiceService>;

export interface ReaderDeps {
  readonly catalog: CatalogClient;
  readonly transformation: TransformationClient;
  readonly logger: Logger;
  /** KAFKA_BROKERS: used when the source names no brokers. */
  readonly defaultBrokers: readonly string[];
  /** Unacknowledged bytes per job before its partitions pause. */
  readonly inFlightBytes: number;
  /** Unique per process; part of every worker_id. */
  readonly instanceId: string;
}

/** What the reader reads of the job's lifecycle, and what it reports to it (JobRunner). */
export interface ReaderHost {
  phase(): Phase;
  /** PauseJob is in effect: nothing is fetched. */
  userPaused(): boolean;
  /** Uncommitted work is being dropped: nothing is sent until synced(). */
  resyncing(cause: string, problem: string | null): void;
  /** A resync opened a new stream and sought the owned partitions to the committed offsets. */
  synced(): void;
  /** Every owned partition of an END_POSITION job ended and was read to its end. */
  ownedDone(): void;
  /** A failure retrying cannot fix (expired offsets, a partition added after the start). */
  fatal(reason: string): void;
}

/** A failure retrying cannot fix: the job goes to FAILED with this reason. */
export class FatalJobError extends Error {}

/**
 * One consumer session (runSession): its admin client, its consumer (the group member) and
 * fetcher once created, and how to end it.
 */
interface Session {
  readonly admin: Admin;
  consumer: Consumer | null;
  fetcher: PartitionFetcher | null;
  /** Ends the session's run with an error: a consumer crash, or the job ending. */
  readonly end: (err: unknown) => void;
}

/** An error of kafkajs (a protocol refusal, a connection or retry failure), not of our mesh. */
const isKafkaError = (err: unknown): boolean => err instanceof Error && err.name.startsWith('KafkaJS');

/** Transform streams this process opened, over all jobs: the last part of each worker id. */
let streamsOpened = 0;

export class JobReader {
  readonly brokers: string[];
  readonly partitions: PartitionTable;
  readonly counters = new JobCounters();
  private readonly topic: string;
  private readonly log: Logger;
  private readonly kafka: Kafka;
  private session: Session | null = null;
  private readonly errorTopic: ErrorTopicProducer;
  /**
   * Too many unacknowledged bytes (in-flight.ts): no fetching until acks drain them. Not a
   * phase: it comes and goes many times a second while the job is running.
   */
  private backpressure = false;

  private stream: TransformStream | null = null;
  /** Bumped by every resync; acks, breaks and resyncs of an older incarnation are ignored. */
  private incarnation = 0;
  private resyncChain: Promise<void> = Promise.resolve();
  private readonly inFlight: InFlight;
  /** The id of the topic as first seen in this process (null: not yet, or the broker gives none). */
  private topicId: string | null = null;
  /** Records the job's commits refused, as the catalog last said (a SKIP_UP_TO budget spans streams). */
  private errorsCommitted = 0;
  /** When a fetch last returned records (IDLE jobs finish after idleTimeoutMs without). */
  lastRecordAtMs = Date.now();
  /** This process leads the consumer group (as of the last join; until then, assumed). */
  private groupLeader = true;

  constructor(
    private readonly job: Job,
    source: { readonly name: string; readonly topic: string; readonly brokers: readonly string[] },
    private readonly bounds: JobBounds,
    private readonly deps: ReaderDeps,
    private readonly host: ReaderHost,
    /** Which of this process's members of the job this is (members.ts); 0 keeps the job's committed progress. */
    private readonly member = 0,
  ) {
    this.topic = source.topic;
    this.partitions = new PartitionTable(source.topic);
    this.log = deps.logger.child({ job: job.name });
    this.brokers = source.brokers.length > 0 ? [...source.brokers] : [...deps.defaultBrokers];
    if (this.brokers.length === 0) {
      throw new SourceError(`source "${source.name}" names no brokers and KAFKA_BROKERS is unset`);
    }
    this.inFlight = new InFlight(deps.inFlightBytes);
    this.kafka = createKafka(`sluice-ingestion-${job.name}`, this.brokers, this.log);
    this.errorTopic = new ErrorTopicProducer(this.kafka);
  }

  /** How many consumers the job's group has, in every process. */
  groupSize(): Promise<number> {
    return groupSize(this.kafka, groupIdFor(this.job.name));
  }

  /** The worker id of the current Transform stream ('' while there is none, as for a standby). */
  get workerId(): string {
    return this.stream?.workerId ?? '';
  }

  /** Batches sent to the current stream and not yet acknowledged. */
  get inFlightCount(): number {
    return this.inFlight.count;
  }

  /**
   * Work of `generation` may go on: it is the current incarnation, the job has not been asked
   * to end, and a consumer session is up.
   */
  private isCurrent(generation: number): boolean {
    return generation === this.incarnation && isLive(this.host.phase()) && Boolean(this.session?.fetcher);
  }

  // ---------------------------------------------------------------- sessions

  /**
   * One consumer session: resolves positions, joins the group, runs until a crash (thrown) or
   * the job's end. True when there was nothing left to read: a bounded job committed to its end.
   */
  async runSession(): Promise<boolean> {
    let end: (err: unknown) => void = () => {};
    const ended = new Promise<never>((_, reject) => (end = reject));
    ended.catch(() => {});
    const session: Session = { admin: this.kafka.admin(), consumer: null, fetcher: null, end };
    this.session = session;
    await session.admin.connect();
    const partitionIds = await requireTopic(session.admin, this.topic);
    const parallelism = parallelismOf(this.job);
    if (parallelism > partitionIds.length)
      throw new FatalJobError(
        `parallelism ${parallelism} is more than the ${partitionIds.length} partition${partitionIds.length === 1 ? '' : 's'} of topic ${this.topic}; set parallelism to ${partitionIds.length} or fewer`,
      );
    await this.checkTopicIdentity(await this.committedOffsets(), await watermarks(session.admin, this.topic));
    const spec = { start: this.job.start, window: this.bounds.window, endOffsets: this.job.window?.endOffsets };
    await addNewPartitions(
      this.partitions,
      session.admin,
      partitionIds,
      spec,
      () => this.committedOffsets(),
      async (starts) => (await this.deps.catalog.recordJobStart({ job: this.job.name, starts })).starts,
    );
    // Nothing left to read (a new session after everything was read to its end and committed).
    if (this.boundedComplete()) return true;
    if (this.session !== session) return false; // the job ended meanwhile

    const consumer = createConsumer(this.kafka, groupIdFor(this.job.name), parallelismAssigner(this.topic, parallelism, this.member));
    session.consumer = consumer;
    const fetcher = new PartitionFetcher(this.topic, session.admin, `sluice-ingestion-${this.job.name}`, this.log);
    session.fetcher = fetcher;
    consumer.on(consumer.events.CRASH, (e) => session.end(e.payload.error));
    // Group events of a session that already ended (a crashed consumer) change nothing.
    consumer.on(consumer.events.REBALANCING, () => {
      if (this.session === session) this.host.resyncing('rebalancing', null);
    });
    consumer.on(consumer.events.GROUP_JOIN, (e) => {
      // kafkajs is the group member only: with the topic paused it never fetches (it heartbeats
      // between the fetches it skips); the fetcher reads. Paused here, before its first fetch.
      consumer.pause([{ topic: this.topic }]);
      if (this.session !== session) return;
      this.groupLeader = e.payload.isLeader;
      this.partitions.assign(e.payload.memberAssignment[this.topic] ?? []);
      this.requestResync('group assignment');
    });
    await consumer.connect();
    await consumer.subscribe({ topic: this.topic, fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachBatch: async () => {
        throw new Error(`kafkajs fetched ${this.topic}, which stays paused: the fetcher reads it`);
      },
    });
    fetcher
      .run({ targets: () => this.fetchTargets(), onFetched: (generation, target, fetched) => this.onFetched(generation, target, fetched) })
      .catch((err) => session.end(err));
    // In the group (kafkajs joins before run resolves, so this is normally already resyncing).
    const phase = this.host.phase().name;
    if (phase === 'starting' || phase === 'retrying') this.host.resyncing('joined the group', null);
    return ended;
  }

  async endSession(): Promise<void> {
    const session = this.session;
    this.session = null;
    await session?.fetcher?.stop();
    await session?.consumer?.disconnect().catch(() => {});
    await session?.admin.disconnect().catch(() => {});
  }

  /** Throws FatalJobError when the topic was deleted and recreated under the job (topic-identity.ts). */
  private async checkTopicIdentity(committed: Map<number, number>, marks: Map<number, Watermarks>): Promise<void> {
    const verdict = judgeTopic(this.topic, this.topicId, committed, {
      id: await fetchTopicId(this.brokers, this.topic),
      watermarks: marks,
    });
    if (!verdict.same) throw new FatalJobError(verdict.reason);
    this.topicId = verdict.id;
  }

  /**
   * Whether the topic is still the one the committed offsets came from; a recreated topic fails
   * the job. Run every few seconds while the job is live (JobRunner) and before a batch fetched
   * below the position is used. 'unknown' when it could not be told (the topic missing, the
   * broker away): the consumer session deals with those.
   */
  async verifyTopic(): Promise<'same' | 'recreated' | 'unknown'> {
    const admin = this.session?.admin;
    if (!admin || !isLive(this.host.phase())) return 'unknown';
    try {
      await this.checkTopicIdentity(await this.committedOffsets(), await watermarks(admin, this.topic));
      return 'same';
    } catch (err) {
      if (!(err instanceof FatalJobError)) {
        this.log.debug({ err: describeSourceError(err, this.brokers) }, 'could not check the topic identity');
        return 'unknown';
      }
      this.host.fatal(err.message);
      return 'recreated';
    }
  }

  private async committedOffsets(): Promise<Map<number, number>> {
    const res = await this.deps.catalog.getCommittedOffsets({ job: this.job.name });
    this.errorsCommitted = 0;
    for (const e of res.progress?.errorCounts ?? []) this.errorsCommitted += e.count;
    // One member per process shows the committed counts; the job's status sums its members.
    if (res.progress && this.member === 0) this.counters.restoreCommitted(res.progress);
    const out = new Map<number, number>();
    for (const o of res.offsets) if (o.topic === this.topic) out.set(o.partition, o.nextOffset);
    return out;
  }

  // ---------------------------------------------------------------- resync (start, rebalance, rewind)

  /** Drops the current stream and its uncommitted work; a resync opens the next one. */
  private requestResync(why: string, problem: string | null = null): void {
    if (!isLive(this.host.phase())) return;
    this.host.resyncing(why, problem);
    const generation = ++this.incarnation;
    this.stream?.cancel();
    this.stream = null;
    this.inFlight.clear();
    this.backpressure = false;
    this.resyncChain = this.resyncChain
      .then(() => this.resync(generation, why))
      .catch((err) => {
        if (err instanceof FatalJobError) return this.host.fatal(err.message);
        // Kafka refused (the topic deleted, the broker away): the consumer session is over, and
        // the supervisor's next one checks the topic and says what is wrong ("topic … does not
        // exist") instead of this resync retrying the same refusal under a vaguer reason.
        if (isKafkaError(err) && this.session && this.isCurrent(generation)) {
          this.log.warn({ err: describeSourceError(err, this.brokers) }, 'resync failed on Kafka; the session starts over');
          this.session.end(err);
          return;
        }
        const failed = `resync failed (${why}): ${grpcMessage(err)}; retrying`;
        this.host.resyncing(why, failed);
        this.log.warn({ err: grpcMessage(err) }, 'resync failed; retrying');
        void sleep(1000).then(() => {
          if (this.isCurrent(generation)) this.requestResync(why, failed);
        });
      });
  }

  /** Positions from the catalog, owned partitions sought there, a new stream: then running. */
  private async resync(generation: number, why: string): Promise<void> {
    const session = this.session;
    if (!this.isCurrent(generation) || !session) return;
    const owned = this.partitions.ownedIds;
    const committed = await this.committedOffsets();
    const askedAtMs = Date.now();
    const marks = await watermarks(session.admin, this.topic);
    await this.checkTopicIdentity(committed, marks);
    if (!this.isCurrent(generation)) return;
    const lostCovers: { partition: number; start: number; end: number }[] = [];
    for (const p of owned) {
      const st = this.partitions.get(p);
      if (!st) throw new FatalJobError(`partition ${this.topic}/${p} appeared after the job started; restart the job to include it`);
      st.committed = committed.get(p);
      // A commit (here or by another process) means the start was confirmed long ago; without
      // one, reading starts over at the recorded start and confirms it again.
      st.startSearch = st.committed === undefined ? st.recordedSearch : null;
      st.position = st.committed ?? st.initialStart;
      const wm = marks.get(p);
      if (wm) {
        this.partitions.setHighWatermark(p, wm.high, askedAtMs);
        if (st.position < wm.low) {
          const decision = onExpired(this.topic, p, st.position, wm.low, this.job.offsetReset);
          if (decision.action === 'fail') throw new FatalJobError(decision.reason);
          this.log.warn({ partition: p, lost: decision.lost }, decision.reason);
          this.counters.countError('offset_out_of_range', decision.lost);
          lostCovers.push({ partition: p, start: st.position, end: wm.low });
        }
      }
    }
    // A standby member (members.ts) holds no partition: it opens no stream, so a job runs as
    // many streams as its parallelism, wherever its members are.
    if (owned.length === 0) {
      this.log.info({ why }, 'no partitions assigned: standing by');
      this.host.synced();
      if (this.ownedDone()) this.host.ownedDone();
      return;
    }
    // Unique per stream for the whole process life: a job stopped and started again in this
    // process gets a new JobReader whose generations count from 1 again, and transformation
    // refuses a worker id whose data files exist already.
    const workerId = `${this.job.name}-${this.deps.instanceId}-${++streamsOpened}`;
    const stream = new TransformStream(
      this.deps.transformation,
      {
        job: this.job.name,
        table: this.job.table,
        mapping: this.job.mapping,
        workerId,
        flushBufferBytes: this.job.bufferBytes,
        errorsCommitted: this.errorsCommitted,
      },
      {
        onAck: (ack) => this.onAck(generation, ack),
        onBroken: (reason, fatal) => this.onStreamBroken(generation, reason, fatal),
      },
    );
    this.stream = stream;
    // Expired ranges (offset_reset = EARLIEST) are covered without rows, so commits continue.
    for (const gap of lostCovers) {
      const sent = stream.send([{ topic: this.topic, partition: gap.partition, startOffset: gap.start, endOffset: gap.end }]);
      this.inFlight.add(sent.sequence, sent.inFlightBytes);
      this.partitions.at(gap.partition).position = gap.end;
    }
    this.lastRecordAtMs = Date.now();
    this.log.info({ why, workerId, owned }, 'stream opened; partitions sought to committed offsets');
    this.host.synced();
    if (this.ownedDone()) this.host.ownedDone();
    session.fetcher?.wake();
  }

  private onStreamBroken(generation: number, reason: string, fatal: boolean): void {
    if (generation !== this.incarnation || !isLive(this.host.phase())) return;
    if (fatal) {
      // The job's own verdict (a record its policy refused): re-reading would end the same way.
      this.log.error({ reason }, 'transform stream ended the job');
      this.host.fatal(reason);
      return;
    }
    const problem = `transformation stream broke: ${reason}; re-reading from the committed offsets`;
    this.log.warn({ reason }, 'transform stream broke');
    this.host.resyncing('stream broke', problem);
    void sleep(1000).then(() => {
      if (this.isCurrent(generation)) this.requestResync('stream broke', problem);
    });
  }

  // ---------------------------------------------------------------- data path

  /**
   * What the fetcher reads next: every owned partition, at its position, unless the job may
   * not take batches now (resyncing, paused by the user, backpressure) or it was read to its end.
   */
  private fetchTargets(): { generation: number; partitions: FetchTarget[] } {
    const generation = this.incarnation;
    const phase = this.host.phase();
    if (!this.stream || !acceptsBatches(phase) || this.host.userPaused() || this.backpressure) return { generation, partitions: [] };
    const partitions: FetchTarget[] = [];
    for (const st of this.partitions.ownedStates())
      if (!readToEnd(st)) partitions.push({ partition: st.partition, fetchOffset: st.position });
    return { generation, partitions };
  }

  /**
   * One partition's fetch. Taken only while the partition is still at the offset it was
   * fetched from, in the same stream incarnation: anything else (a resync, a rewind, a
   * rebalance since) makes the answer stale, and the next round asks again.
   */
  private async onFetched(generation: number, target: FetchTarget, fetched: FetchedPartition): Promise<void> {
    const stream = this.stream;
    const st = this.partitions.get(target.partition);
    // A pause holds for answers already on their way too: what a paused job took could be of a
    // topic recreated meanwhile, which the check on resume is there to catch.
    const current = () =>
      generation === this.incarnation &&
      stream === this.stream &&
      st?.position === target.fetchOffset &&
      acceptsBatches(this.host.phase()) &&
      !this.host.userPaused();
    if (!stream || !st || !this.partitions.isOwned(st.partition) || !current()) return;
    if (fetched.errorCode === OFFSET_OUT_OF_RANGE) return this.onOutOfRange(st, current);
    // Never lower: a fetch answered earlier must not undo a watermark asked for later (completion.ts).
    st.highWatermark = Math.max(st.highWatermark, fetched.highWatermark);
    if (readToEnd(st) || fetched.nextOffset === null) return;
    const records = fetched.records;
    // The log skips offsets from the position on: compaction, or transaction markers and aborted
    // records only. Retention cannot be the cause (that is OFFSET_OUT_OF_RANGE), so it is covered.
    const gap = leadingGap(st.position, records.count > 0 ? records.offsets[0] : null);
    if (gap) this.log.debug({ partition: st.partition, from: gap.start, to: gap.end }, 'covering an offset gap');
    this.take(stream, st, records, fetched.nextOffset);
  }

  /**
   * The position is outside the partition's log. Below its start: retention removed records
   * the job had not read (offset_reset decides). Past its end: the log is shorter than what
   * was committed, as when the topic was recreated (the topic check decides) or an unclean
   * leader election truncated it; reading resumes once the log reaches the position again.
   */
  private async onOutOfRange(st: PartitionState, current: () => boolean): Promise<void> {
    const admin = this.session?.admin;
    if (!admin) return;
    const topic = await this.verifyTopic();
    if (topic === 'unknown') await sleep(500); // not told (the broker away): the next round asks again
    if (topic !== 'same' || !current()) return;
    const wm = (await watermarks(admin, this.topic)).get(st.partition);
    if (!wm || !current()) return;
    if (st.position >= wm.low) {
      this.log.warn({ partition: st.partition, position: st.position, high: wm.high }, 'the log ends before the position; waiting for it');
      await sleep(1000);
      return;
    }
    const decision = onExpired(this.topic, st.partition, st.position, wm.low, this.job.offsetReset);
    if (decision.action === 'fail') return this.host.fatal(decision.reason);
    this.log.warn({ partition: st.partition, lost: decision.lost }, decision.reason);
    this.counters.countError('offset_out_of_range', decision.lost);
    const stream = this.stream;
    if (!stream) return;
    const sent = stream.send([{ topic: this.topic, partition: st.partition, startOffset: st.position, endOffset: wm.low }]);
    this.inFlight.add(sent.sequence, sent.inFlightBytes);
    st.position = wm.low;
  }

  /**
   * The fetched records of an owned partition from its position on (none: markers only): the
   * start by timestamp confirmed, the batch planned, its records sent with its cover, the
   * position moved, and the partition's end acted on. Synchronous: the records are valid only
   * until the fetcher's next round (partition-fetcher.ts), and are encoded before it returns.
   */
  private take(stream: TransformStream, st: PartitionState, records: FetchedRecords, batchEnd: number): void {
    if (st.startSearch) {
      // A start by timestamp is confirmed by reading: the records before it are not the job's,
      // and are covered without rows (like records outside a window), so the job's first commit
      // begins at its recorded start.
      const { start, found } = findStart(st.position, st.startSearch, records, batchEnd);
      if (found) st.startSearch = null;
      if (start > st.position) {
        const skipped = countFrom(records, st.position, start);
        const sent = stream.send([{ topic: this.topic, partition: st.partition, startOffset: st.position, endOffset: start }]);
        this.inFlight.add(sent.sequence, sent.inFlightBytes);
        this.counters.countRead(skipped, skipped);
        st.position = start;
      }
      if (!found) return;
    }
    const { closeAtMs, window } = this.bounds;
    const limits = { endOffset: st.endOffset, closeAtMs: st.knownEnd ? null : closeAtMs, window };
    const plan = planBatch(st.position, limits, records, batchEnd);
    if (plan.end !== null) st.endOffset = plan.end;
    if (plan.coverEnd === plan.coverStart) {
      // Nothing to send, but the partition may end right at its position (a restart at its end).
      if (plan.end !== null) this.partitionEnded();
      return;
    }
    const { partition } = st;
    const cover = { start: plan.coverStart, end: plan.coverEnd };
    const span = startBatchSpan(this.job.name, this.topic, partition, cover, records, plan.send);
    const sent = stream.send(
      [{ topic: this.topic, partition, startOffset: plan.coverStart, endOffset: plan.coverEnd }],
      { topic: this.topic, partition, records, send: plan.send },
      traceparentOf(span),
    );
    span.end();
    this.inFlight.add(sent.sequence, sent.inFlightBytes);
    st.position = plan.coverEnd;
    this.counters.countRead(plan.send.length + plan.excluded, plan.excluded, sent.payloadBytes);
    if (records.count > 0) this.lastRecordAtMs = Date.now();
    if (this.inFlight.overBudget) this.backpressure = true;
    if (plan.end !== null) this.partitionEnded();
  }

  /** An owned partition ended: it is paused, and the job finishes once every owned one has. */
  private partitionEnded(): void {
    this.applyPauses();
    if (this.ownedDone()) this.host.ownedDone();
  }

  /**
   * END_POSITION jobs, once the close time (window end + allowed lateness) has passed: asks the
   * broker for the high watermarks and ends each owned partition, still open, that was read up
   * to its one (completion.ts endWithoutRecord). Without this, a partition holding no record
   * past the close time would keep the job running forever.
   */
  async endOpenPartitions(): Promise<void> {
    const { closeAtMs } = this.bounds;
    const admin = this.session?.admin;
    const generation = this.incarnation;
    if (closeAtMs === null || !admin || Date.now() < closeAtMs) return;
    const open = this.partitions.ownedStates().filter((st) => st.endOffset === null);
    if (open.length === 0) return;
    const askedAtMs = Date.now();
    const marks = await watermarks(admin, this.topic);
    if (!this.isCurrent(generation) || this.host.phase().name !== 'running') return;
    let ended = false;
    for (const st of open) {
      const wm = marks.get(st.partition);
      if (wm) this.partitions.setHighWatermark(st.partition, Math.max(wm.high, st.highWatermark), askedAtMs);
      const end = st.endOffset === null ? endWithoutRecord(st, closeAtMs) : null;
      if (end !== null) {
        st.endOffset = end;
        ended = true;
        this.log.info({ partition: st.partition, end }, 'no record past the window close time up to the high watermark; partition ended');
      }
    }
    if (ended) this.partitionEnded();
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
        const permanent = permanentProduceError(err);
        if (permanent) {
          // Kafka will never take these records: re-reading would refuse and produce them again
          // forever, so the job fails and names them (nothing after them was committed).
          const topics = [...new Set(records.map((r) => r.topic))].join(', ');
          if (this.isCurrent(generation))
            this.host.fatal(`error topic ${topics} refused the refused records of ${describeSources(records)} (${permanent})`);
          return false;
        }
        // Drop the stream's uncommitted work so the refused records are re-read (and refused
        // and produced again) rather than lost.
        const problem = `error topic produce failed: ${describeSourceError(err, this.brokers)}; re-reading`;
        if (this.isCurrent(generation)) this.requestResync('error topic produce failed', problem);
        return false;
      },
    );
  }

  /**
   * Something that decides what is fetched changed (a pause or resume, a partition's end):
   * the fetcher looks again now instead of at its next idle tick.
   */
  applyPauses(): void {
    this.session?.fetcher?.wake();
  }

  /** A CommittedEvent of the job's table: cursors, the last commit, and Kafka's group offsets. */
  onCommitted(e: CommittedEvent): void {
    if (e.job !== this.job.name) return;
    const toKafka: { topic: string; partition: number; offset: string }[] = [];
    for (const r of e.offsets) {
      if (r.topic !== this.topic || !this.partitions.has(r.partition)) continue;
      this.partitions.recordCommitted(r.partition, r.endOffset);
      if (this.partitions.isOwned(r.partition)) toKafka.push({ topic: this.topic, partition: r.partition, offset: String(r.endOffset) });
    }
    this.counters.recordCommit(e);
    // For lag tools only; positions never come from here. Not while the group is being resynced.
    const consumer = this.session?.consumer;
    if (toKafka.length > 0 && consumer && settled(this.host.phase())) {
      consumer.commitOffsets(toKafka).catch((err) => this.log.debug({ err: String(err) }, 'group offset commit failed (lag only)'));
    }
  }

  /** Every owned partition has reached its end (END_POSITION jobs). */
  ownedDone(): boolean {
    return ownedDone(this.bounds.completion, this.partitions.ownedStates());
  }

  /** Committed (or empty from the start) up to the end on every partition of the topic. */
  boundedComplete(): boolean {
    return boundedComplete(this.bounds.completion, this.partitions.all());
  }

  /** END_POSITION: this process's part is committed and another process leads the group (completion.ts). */
  handsOver(): boolean {
    return handsOver(this.bounds.completion, this.groupLeader, this.partitions.ownedStates(), this.partitions.all());
  }

  coveredUpTo(targets: Map<number, number>): boolean {
    return coveredUpTo(targets, (p) => this.partitions.at(p));
  }

  async refreshCommitted(): Promise<void> {
    for (const [p, next] of await this.committedOffsets()) this.partitions.recordCommitted(p, next);
  }

  /** Refreshes high watermarks (best effort) for an accurate lag. */
  async refreshWatermarks(): Promise<void> {
    const admin = this.session?.admin;
    if (!admin) return;
    const askedAtMs = Date.now();
    for (const [p, wm] of await watermarks(admin, this.topic)) this.partitions.setHighWatermark(p, wm.high, askedAtMs);
  }

  /**
   * The job ended: the session stops, the stream goes (ended when everything sent was
   * acknowledged, else cancelled) and the error-topic producer disconnects.
   */
  async close(): Promise<void> {
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

  /** A RewindEvent: drops the current stream's work when it names that stream (DESIGN.md). */
  onRewind({ workerId, reason }: RewindEvent): void {
    if (!this.stream || workerId !== this.stream.workerId || !isLive(this.host.phase())) return;
    this.log.info({ workerId, reason }, 'rewind');
    this.requestResync(`rewind: ${reason}`);
  }
}

/** How many of the records lie in [from, to). */
function countFrom(records: FetchedRecords, from: number, to: number): number {
  let n = 0;
  for (let i = 0; i < records.count; i++) {
    const offset = records.offsets[i];
    if (offset >= from && offset < to) n++;
  }
  return n;
}

/** The group's assignment and the positions are settled (not starting, retrying or resyncing). */
function settled(phase: Phase): boolean {
  return phase.name === 'running' || phase.name === 'finishing' || phase.name === 'stopping';
}

/** The members a job runs with (its spec's parallelism; unset is 1). */
export function parallelismOf(job: Pick<Job, 'parallelism'>): number {
  return Math.max(1, job.parallelism || 1);
}
