/**
 * A job's own fetching: Fetch requests to the owned partitions' leaders, decoded by
 * kafka/fetch.ts into a FetchedRecords holder per partition. kafkajs stays the job's
 * consumer-group member (joins, heartbeats, assignment, lag offsets) with every partition
 * paused, so it never fetches; the reader decides what is fetched and from where.
 *
 * Why not kafkajs's fetching: it turned every record into decimal-string offsets and
 * timestamps through Long, a Buffer per key and value and a message object, about 4 µs of
 * CPU per record and a third of ingestion's time in the collector (DESIGN.md, "Ingestion's
 * fetch path"). It also reads only gzip among Kafka's codecs; this path reads all four.
 *
 * A fetch asks each partition at the reader's position at that moment, and the reader takes a
 * response only while that is still its position (and its stream incarnation the same), so a
 * seek is just a change of position: there are no stale batches to detect afterwards.
 *
 * The loop is one fetch round at a time: the round's requests go to every leader at once,
 * and their partitions are handed to the reader one by one, in order, before the next round.
 * That is also how long a round's records are valid: the next round reads its answers into the
 * same receive buffers and decodes them into the same holders, so the reader encodes what it
 * sends before its onFetched returns and keeps nothing of the records.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Admin } from 'kafkajs';
import type { Logger } from '#shared/logger.js';
import { BrokerConnection } from './kafka/broker-connection.js';
import { decodeFetchResponse, encodeFetchRequest, type FetchedPartition } from './kafka/fetch.js';
import { FetchedRecords } from './kafka/fetched-records.js';
import { RecordBatchError } from './kafka/record-batches.js';
import { SourceError } from './kafka-source.js';

const FETCH = 1;
const FETCH_VERSION = 11;
const READ_COMMITTED = 1;

/** Kafka error codes after which the partition's leader is looked up again. */
const STALE_LEADER = new Set([
  3, // UNKNOWN_TOPIC_OR_PARTITION (the topic is looked up again: deleted, or not yet known here)
  5, // LEADER_NOT_AVAILABLE
  6, // NOT_LEADER_OR_FOLLOWER
  9, // REPLICA_NOT_AVAILABLE
  56, // KAFKA_STORAGE_ERROR
  74, // FENCED_LEADER_EPOCH
  75, // UNKNOWN_LEADER_EPOCH
]);
export const OFFSET_OUT_OF_RANGE = 1;

/** Consecutive failed rounds (connections, leaders) before the consumer session is ended. */
const MAX_FAILED_ROUNDS = 6;

export interface FetchSettings {
  /** How long the broker may hold a fetch when it has nothing yet. */
  readonly maxWaitMs: number;
  /** Bytes per response, and per partition in it. */
  readonly maxBytes: number;
  readonly partitionMaxBytes: number;
}

/** kafkajs's defaults, which the bench and the memory bounds were measured with. */
export const FETCH_SETTINGS: FetchSettings = { maxWaitMs: 250, maxBytes: 10 << 20, partitionMaxBytes: 1 << 20 };

/** One partition to fetch, from this offset. */
export interface FetchTarget {
  readonly partition: number;
  readonly fetchOffset: number;
}

/** What the fetcher asks of the reader. */
export interface FetchHost {
  /**
   * The partitions to fetch now and the reader's incarnation they were chosen in; none while
   * nothing may be fetched (paused, resyncing, backpressure), and the fetcher waits for wake().
   */
  targets(): { readonly generation: number; readonly partitions: readonly FetchTarget[] };
  /**
   * One partition's part of a response, for the target it was asked for. Awaited in turn. Its
   * records are valid until the next round, which starts once the last of these returns.
   */
  onFetched(generation: number, target: FetchTarget, fetched: FetchedPartition): Promise<void>;
}

interface Leader {
  readonly nodeId: number;
  readonly host: string;
  readonly port: number;
}

export class PartitionFetcher {
  private stopped = false;
  private wakeUp: (() => void) | null = null;
  /** Partition → its leader, from the last metadata look-up; empty until the first. */
  private leaders = new Map<number, Leader>();
  private readonly connections = new Map<number, Promise<BrokerConnection>>();
  /** Partition → the holder its records are decoded into, round after round. */
  private readonly records = new Map<number, FetchedRecords>();
  private failedRounds = 0;
  /** Where the next round's partition order starts (see round()). */
  private rounds = 0;

  constructor(
    private readonly topic: string,
    private readonly admin: Admin,
    private readonly clientId: string,
    private readonly log: Logger,
    private readonly settings: FetchSettings = FETCH_SETTINGS,
  ) {}

  /** Fetches until stop(); rejects when fetching keeps failing (the session is then over). */
  async run(host: FetchHost): Promise<void> {
    while (!this.stopped) {
      const { generation, partitions } = host.targets();
      if (partitions.length === 0) {
        await this.idle();
        continue;
      }
      let results: { target: FetchTarget; fetched: FetchedPartition }[];
      try {
        results = await this.round(partitions);
        this.failedRounds = 0;
      } catch (err) {
        if (this.stopped) return;
        if (err instanceof SourceError || err instanceof RecordBatchError || topicGone(err) || ++this.failedRounds >= MAX_FAILED_ROUNDS)
          throw err;
        this.log.debug({ err: String(err), failedRounds: this.failedRounds }, 'fetch failed; retrying');
        this.leaders.clear();
        await sleep(100 * 2 ** this.failedRounds);
        continue;
      }
      for (const { target, fetched } of results) {
        if (this.stopped) return;
        await host.onFetched(generation, target, fetched);
      }
    }
  }

  /** Something changed that may make a partition fetchable (a resume, acks draining, a resync). */
  wake(): void {
    this.wakeUp?.();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.wake();
    const open = [...this.connections.values()];
    this.connections.clear();
    for (const c of open) await c.then((conn) => conn.close()).catch(() => {});
  }

  /** Waits for wake() (or a moment: a partition's end may come from a timer, not an event). */
  private async idle(): Promise<void> {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, this.settings.maxWaitMs);
      this.wakeUp = () => {
        clearTimeout(timer);
        resolve();
      };
    });
    this.wakeUp = null;
  }

  /**
   * One Fetch per leader of the targets, at once; the partitions of every answer, in the order
   * asked. Each round starts the order one partition further: a broker returns a batch larger
   * than the partition limit whole only for the first partition with data in its answer, and
   * cuts it short elsewhere (a partial batch, nothing complete), so a partition stuck behind
   * others would otherwise never read its large batch.
   */
  private async round(asked: readonly FetchTarget[]): Promise<{ target: FetchTarget; fetched: FetchedPartition }[]> {
    if (asked.some((t) => !this.leaders.has(t.partition))) await this.lookUpLeaders();
    const targets = roundOrder(asked, this.rounds++);
    const byLeader = new Map<number, { leader: Leader; targets: FetchTarget[] }>();
    for (const t of targets) {
      const leader = this.leaders.get(t.partition);
      if (!leader) throw new Error(`partition ${this.topic}/${t.partition} has no leader`);
      const group = byLeader.get(leader.nodeId);
      if (group) group.targets.push(t);
      else byLeader.set(leader.nodeId, { leader, targets: [t] });
    }
    const answers = await Promise.all([...byLeader.values()].map(({ leader, targets }) => this.fetchFrom(leader, targets)));
    const out: { target: FetchTarget; fetched: FetchedPartition }[] = [];
    let stale = false;
    for (const answer of answers) {
      for (const { target, fetched } of answer) {
        if (STALE_LEADER.has(fetched.errorCode)) stale = true;
        else if (fetched.errorCode === 0 || fetched.errorCode === OFFSET_OUT_OF_RANGE) out.push({ target, fetched });
        // Any other refusal (authorization, a broker-side failure) is a failed round: backed off,
        // and after MAX_FAILED_ROUNDS it ends the session, whose status then names it.
        else throw new Error(`Kafka refused the fetch of ${this.topic}/${target.partition} with error code ${fetched.errorCode}`);
      }
    }
    if (stale) {
      // Leadership moved (or the topic went): look the leaders up before the next round.
      this.leaders.clear();
      if (out.length === 0) await sleep(100);
    }
    return out;
  }

  private async fetchFrom(leader: Leader, targets: FetchTarget[]): Promise<{ target: FetchTarget; fetched: FetchedPartition }[]> {
    const { maxWaitMs, maxBytes, partitionMaxBytes } = this.settings;
    const body = encodeFetchRequest({
      maxWaitMs,
      minBytes: 1,
      maxBytes,
      isolationLevel: READ_COMMITTED,
      topic: this.topic,
      partitions: targets.map((t) => ({ partition: t.partition, fetchOffset: t.fetchOffset, maxBytes: partitionMaxBytes })),
    });
    let response: Buffer;
    try {
      const conn = await this.connection(leader);
      response = await conn.request(FETCH, FETCH_VERSION, body, { timeoutMs: maxWaitMs + 30_000 });
    } catch (err) {
      this.dropConnection(leader.nodeId);
      throw err;
    }
    const { errorCode, partitions } = decodeFetchResponse(response, this.topic, (p) => this.recordsOf(p));
    if (errorCode !== 0) throw new Error(`Fetch from broker ${leader.nodeId} failed with Kafka error ${errorCode}`);
    const out: { target: FetchTarget; fetched: FetchedPartition }[] = [];
    for (const target of targets) {
      const fetched = partitions.find((p) => p.partition === target.partition);
      if (fetched) out.push({ target, fetched });
    }
    return out;
  }

  /** The partition's holder, emptied for this round's answer. */
  private recordsOf(partition: number): FetchedRecords {
    let records = this.records.get(partition);
    if (!records) this.records.set(partition, (records = new FetchedRecords()));
    records.clear();
    return records;
  }

  private connection(leader: Leader): Promise<BrokerConnection> {
    let conn = this.connections.get(leader.nodeId);
    if (!conn) {
      conn = BrokerConnection.connect(leader.host, leader.port, { clientId: this.clientId, connectTimeoutMs: 3_000 });
      this.connections.set(leader.nodeId, conn);
    }
    return conn.then((c) => {
      if (!c.closed) return c;
      this.connections.delete(leader.nodeId);
      return this.connection(leader);
    });
  }

  private dropConnection(nodeId: number): void {
    const conn = this.connections.get(nodeId);
    this.connections.delete(nodeId);
    void conn?.then((c) => c.close()).catch(() => {});
  }

  /** The topic's partition leaders and where they listen (kafkajs's admin: rare, not per record). */
  private async lookUpLeaders(): Promise<void> {
    const [meta, cluster] = await Promise.all([this.admin.fetchTopicMetadata({ topics: [this.topic] }), this.admin.describeCluster()]);
    const brokers = new Map(cluster.brokers.map((b) => [b.nodeId, b]));
    const leaders = new Map<number, Leader>();
    for (const p of meta.topics[0]?.partitions ?? []) {
      const broker = brokers.get(p.leader);
      if (broker) leaders.set(p.partitionId, { nodeId: broker.nodeId, host: broker.host, port: broker.port });
    }
    this.leaders = leaders;
  }
}

/** kafkajs's metadata look-up says the topic does not exist: no retry brings it back. */
const topicGone = (err: unknown): boolean => (err as { type?: string } | null)?.type === 'UNKNOWN_TOPIC_OR_PARTITION';

/** The targets in round `round`'s order: each round starts one further along. */
export function roundOrder<T>(targets: readonly T[], round: number): T[] {
  const first = targets.length === 0 ? 0 : round % targets.length;
  return [...targets.slice(first), ...targets.slice(0, first)];
}
