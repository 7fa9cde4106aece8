/**
 * The Kafka side of a job: the kafkajs client (the consumer-group member, admin look-ups of
 * watermarks and offsets by timestamp, the error-topic producer) and the translation of Kafka
 * failures into the one-line reasons job status shows. Records are fetched by
 * partition-fetcher.ts, not by kafkajs. No consumer logic lives here; see job-reader.ts.
 */
import { type Consumer, Kafka, logLevel, type Admin, type logCreator, type PartitionAssigner } from 'kafkajs';
import type { Logger } from '#shared/logger.js';
import type { Watermarks } from './positions.js';
import './kafka-request-queue.js'; // kafkajs's idle timer loop, fixed before any client exists

/** kafkajs logs through the service's pino logger; its info chatter is dropped. */
function pinoLogCreator(logger: Logger): logCreator {
  return () =>
    ({ level, log }) => {
      const { message, ...extra } = log;
      if (level === logLevel.ERROR) logger.warn({ kafkajs: extra }, message);
      else if (level === logLevel.WARN) logger.debug({ kafkajs: extra }, message);
    };
}

export function createKafka(clientId: string, brokers: string[], logger: Logger): Kafka {
  return new Kafka({
    clientId,
    brokers,
    logLevel: logLevel.WARN,
    logCreator: pinoLogCreator(logger),
    connectionTimeout: 3000,
    // kafkajs retries each request a few times; longer outages are the runner's backoff loop.
    retry: { retries: 3, initialRetryTime: 100, maxRetryTime: 2000 },
  });
}

/**
 * A job's consumer: offsets are committed by the runner (after Sluice's commits, for lag tools
 * only), and a crash ends the session instead of restarting it: the runner's backoff decides.
 */
export function createConsumer(kafka: Kafka, groupId: string, assigner: PartitionAssigner): Consumer {
  return kafka.consumer({
    groupId,
    partitionAssigners: [assigner],
    sessionTimeout: 10_000,
    heartbeatInterval: 1_000,
    rebalanceTimeout: 15_000,
    maxWaitTimeInMs: 250,
    // kafkajs would create a missing topic through its metadata requests (where the broker
    // allows it), so a deleted topic would come back empty under the job: it must not.
    allowAutoTopicCreation: false,
    retry: { retries: 3, initialRetryTime: 100, restartOnFailure: async () => false },
  });
}

/** How many consumers the group has right now, in every process (0: empty or unknown to the broker). */
export async function groupSize(kafka: Kafka, groupId: string): Promise<number> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const { groups } = await admin.describeGroups([groupId]);
    return groups[0]?.members.length ?? 0;
  } finally {
    await admin.disconnect().catch(() => {});
  }
}

export class SourceError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SourceError';
  }
}

/** Fails with a clear reason when the topic does not exist (never auto-creates it). */
export async function requireTopic(admin: Admin, topic: string): Promise<number[]> {
  const topics = await admin.listTopics();
  if (!topics.includes(topic)) throw new SourceError(`topic "${topic}" does not exist`);
  const meta = await admin.fetchTopicMetadata({ topics: [topic] });
  const partitions = meta.topics[0]?.partitions.map((p) => p.partitionId).sort((a, b) => a - b) ?? [];
  if (partitions.length === 0) throw new SourceError(`topic "${topic}" has no partitions`);
  return partitions;
}

export async function watermarks(admin: Admin, topic: string): Promise<Map<number, Watermarks>> {
  const rows = await admin.fetchTopicOffsets(topic);
  return new Map(rows.map((r) => [r.partition, { low: Number(r.low), high: Number(r.high) }]));
}

/** Per partition, the first offset whose timestamp is >= ms; -1 where there is none. */
export async function offsetsAtTime(admin: Admin, topic: string, ms: number, high: Map<number, Watermarks>): Promise<Map<number, number>> {
  const rows = await admin.fetchTopicOffsetsByTimestamp(topic, ms);
  // kafkajs answers "none" with the high watermark (it substitutes latest); either reads as
  // "nothing at or after ms yet", which the callers map to the high watermark.
  return new Map(
    rows.map((r) => {
      const offset = Number(r.offset);
      const hw = high.get(r.partition)?.high;
      return [r.partition, offset < 0 || offset === hw ? -1 : offset];
    }),
  );
}

/** One line for job status: what failed at the source, without a stack. */
export function describeSourceError(err: unknown, brokers: readonly string[]): string {
  if (err instanceof SourceError) return err.message;
  const e = err as { name?: string; message?: string; type?: string; originalError?: unknown; retryCount?: number };
  const name = e?.name ?? '';
  if (e?.type === 'UNKNOWN_TOPIC_OR_PARTITION') return 'topic does not exist (deleted?)';
  if (
    name === 'KafkaJSConnectionError' ||
    name === 'KafkaJSBrokerNotFound' ||
    /ECONNREFUSED|Connection timeout|ENOTFOUND/.test(e?.message ?? '')
  ) {
    return `Kafka broker unreachable (${brokers.join(', ')}): ${e?.message ?? String(err)}`;
  }
  if (name === 'KafkaJSNumberOfRetriesExceeded' && e.originalError) return describeSourceError(e.originalError, brokers);
  return `${name || 'error'}: ${e?.message ?? String(err)}`;
}
