/**
 * What the Kafka interop tests share: the two brokers a conformance scenario runs against
 * (the dev broker and real Apache Kafka) behind one interface, kcat, and readers that collect
 * what a client sees.
 */
import { type Admin, type Kafka, type KafkaMessage, logLevel, Kafka as KafkaClient } from 'kafkajs';
import { type DevBroker, startDevBroker } from '#kafka-broker/index.js';
import { type RealKafka, startKafka } from '#test-support/kafka.js';
import { waitFor } from '#test-support/wait.js';
import { kcat } from '#test-support/kcat.js';

export { KCAT, kcat, type RunResult } from '#test-support/kcat.js';

/** One broker a conformance scenario runs against; the operations a scenario cannot do through the protocol alone. */
export interface BrokerTarget {
  readonly name: string;
  readonly brokers: string;
  client(clientId?: string): Kafka;
  admin(): Promise<Admin>;
  createTopic(name: string, partitions: number, config?: Record<string, string>): Promise<void>;
  /**
   * Runs log compaction over the records below `before` (Kafka: the segments before the active
   * one, which the caller rolled) and resolves once `expectedRemaining` records are left below it.
   */
  compact(topic: string, partition: number, before: number, expectedRemaining: number): Promise<void>;
  stop(): Promise<void>;
}

/** Topic configs under which Kafka compacts as soon as a segment rolls. */
export const COMPACT_NOW: Record<string, string> = {
  'cleanup.policy': 'compact',
  'segment.ms': '100',
  'min.cleanable.dirty.ratio': '0.001',
  'min.compaction.lag.ms': '0',
  'delete.retention.ms': '86400000',
};
/** Kafka rolls a segment on the first append after segment.ms; a compaction scenario waits this long before it. */
export const SEGMENT_ROLL_WAIT_MS = 150;

export function quietClient(brokers: string, clientId: string): Kafka {
  return new KafkaClient({
    clientId,
    brokers: [brokers],
    logLevel: logLevel.NOTHING,
    retry: { retries: 8, initialRetryTime: 100, maxRetryTime: 2000 },
  });
}

export async function devTarget(): Promise<BrokerTarget & { broker: DevBroker }> {
  const broker = await startDevBroker({ onError: () => {} });
  let admin: Admin | null = null;
  const connectedAdmin = async () => {
    if (!admin) {
      admin = quietClient(broker.address, 'interop-admin').admin();
      await admin.connect();
    }
    return admin;
  };
  return {
    name: 'dev broker',
    broker,
    brokers: broker.address,
    client: (clientId = 'interop') => quietClient(broker.address, clientId),
    admin: connectedAdmin,
    async createTopic(name, partitions, config = {}) {
      const a = await connectedAdmin();
      await a.createTopics({
        topics: [
          {
            topic: name,
            numPartitions: partitions,
            replicationFactor: 1,
            configEntries: Object.entries(config).map(([n, value]) => ({ name: n, value })),
          },
        ],
      });
      // As the Kafka target does (it waits for leaders): kafkajs admin calls such as
      // deleteTopicRecords need the topic's metadata loaded first.
      await a.fetchTopicMetadata({ topics: [name] });
    },
    async compact(topic, partition, before) {
      broker.compact(topic, partition, before);
    },
    async stop() {
      await admin?.disconnect();
      await broker.stop();
    },
  };
}

export async function kafkaTarget(): Promise<BrokerTarget & { kafka: RealKafka }> {
  const kafka = await startKafka();
  process.stdout.write(`# Apache Kafka started in ${kafka.startMs} ms, RSS ${(kafka.rssBytes() / 2 ** 20).toFixed(0)} MiB\n`);
  return {
    name: 'Apache Kafka',
    kafka,
    brokers: kafka.brokers,
    client: (clientId = 'interop') => quietClient(kafka.brokers, clientId),
    admin: () => kafka.admin(),
    createTopic: (name, partitions, config = {}) => kafka.createTopic(name, { partitions, config }),
    async compact(topic, partition, before, expectedRemaining) {
      // The cleaner runs on its own (log.cleaner.backoff.ms=200); wait until it has.
      await waitFor(
        `Kafka's log cleaner to leave ${expectedRemaining} records below offset ${before} of ${topic}/${partition}`,
        async () => {
          const lines = await readAll(kafka.brokers, topic, partition, '%o\n');
          return lines.filter((l) => Number(l) < before).length === expectedRemaining;
        },
        { timeoutMs: 60_000, intervalMs: 250 },
      );
    },
    async stop() {
      const rss = kafka.rssBytes();
      process.stdout.write(`# Apache Kafka RSS at the end: ${(rss / 2 ** 20).toFixed(0)} MiB\n`);
      await kafka.remove();
    },
  };
}

/**
 * Waits until read_committed readers can see up to `end` on partition 0: Kafka answers EndTxn
 * once the outcome is logged and writes the markers right after, so the stable offset lags
 * commit() and abort() by a moment (the dev broker writes them before answering).
 */
export async function stableAt(admin: Admin, topic: string, end: number): Promise<void> {
  await waitFor(
    `the last stable offset of ${topic}/0 to reach ${end} (transaction markers written)`,
    async () => {
      const rows = await admin.fetchTopicOffsets(topic);
      return Number(rows.find((r) => r.partition === 0)?.high) === end;
    },
    { timeoutMs: 30_000, intervalMs: 50 },
  );
}

/** Every record of a partition from the beginning to its end (kcat -e), one formatted line each. */
export async function readAll(brokers: string, topic: string, partition: number, format: string, extra: string[] = []): Promise<string[]> {
  const res = await kcat(brokers, ['-C', '-t', topic, '-p', String(partition), '-o', 'beginning', '-e', '-q', '-f', format, ...extra]);
  if (res.code !== 0) throw new Error(`kcat -C ${topic}/${partition} exited ${res.code}: ${res.stderr.trim()}`);
  return res.stdout.split('\n').filter((l) => l !== '');
}

/** What a test compares of a consumed record. */
export interface Seen {
  partition: number;
  offset: number;
  key: string | null;
  value: string | null;
  timestamp?: number;
  headers?: Record<string, string>;
}

export function seen(partition: number, m: KafkaMessage, withTime = true): Seen {
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(m.headers ?? {})) headers[k] = String(v);
  return {
    partition,
    offset: Number(m.offset),
    key: m.key === null ? null : m.key.toString(),
    value: m.value === null ? null : m.value.toString(),
    ...(withTime ? { timestamp: Number(m.timestamp) } : {}),
    ...(Object.keys(headers).length > 0 ? { headers } : {}),
  };
}

/**
 * Reads a topic with a kafkajs consumer in a fresh group from the beginning until `count`
 * records arrived; returns them by partition, then offset.
 */
export async function consumeCount(
  client: Kafka,
  topic: string,
  count: number,
  opts: { groupId: string; readUncommitted?: boolean; withTime?: boolean },
): Promise<Seen[]> {
  const consumer = client.consumer({ groupId: opts.groupId, readUncommitted: opts.readUncommitted ?? false, maxWaitTimeInMs: 100 });
  const out: Seen[] = [];
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ partition, message }) => {
        out.push(seen(partition, message, opts.withTime ?? true));
      },
    });
    await waitFor(`${count} records of ${topic} (have ${out.length})`, () => out.length >= count, { timeoutMs: 30_000 });
  } finally {
    await consumer.disconnect();
  }
  return out.sort((a, b) => a.partition - b.partition || a.offset - b.offset);
}
