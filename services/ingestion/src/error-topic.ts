/**
 * ERROR_TOPIC policy: transformation refuses records and returns them in its ack; ingestion
 * owns the Kafka producer that writes them to the error topic. One producer per job, connected
 * on first use; produces are chained so the error topic keeps the source order.
 */
import type { Kafka, Message, Producer } from 'kafkajs';
import { ERROR_HEADERS } from '#shared/error-topic.js';
import type { KafkaRecord } from '#shared/gen/sluice/v1/types.js';

/** The records of one ack as kafkajs topic messages, grouped by topic in first-seen order. */
export function errorTopicMessages(records: readonly KafkaRecord[]): { topic: string; messages: Message[] }[] {
  const byTopic = new Map<string, Message[]>();
  for (const r of records) {
    const messages = byTopic.get(r.topic) ?? [];
    messages.push({
      key: r.key ?? null,
      value: r.value ?? null,
      // The source record's time, not the routing time: a reader of the error topic (or a
      // bounded job over it) sees when the refused record happened.
      ...(r.timestampMs > 0 ? { timestamp: String(r.timestampMs) } : {}),
      headers: Object.fromEntries(r.headers.map((h) => [h.key, h.value ?? ''])),
    });
    byTopic.set(r.topic, messages);
  }
  return [...byTopic].map(([topic, messages]) => ({ topic, messages }));
}

/**
 * Kafka's answers to a produce that no retry can change: the records themselves are refused
 * (too large for the topic, or invalid). A re-read would refuse and produce them again, forever.
 */
const PERMANENT_PRODUCE_ERRORS = new Set(['MESSAGE_TOO_LARGE', 'RECORD_LIST_TOO_LARGE', 'INVALID_RECORD', 'CORRUPT_MESSAGE']);

/** The Kafka error type of a produce failure (kafkajs wraps it in retry and aggregate errors), if any is permanent. */
export function permanentProduceError(err: unknown): string | null {
  const seen = new Set<unknown>();
  const queue: unknown[] = [err];
  while (queue.length > 0) {
    const e = queue.shift();
    if (!e || typeof e !== 'object' || seen.has(e)) continue;
    seen.add(e);
    const { type, cause, originalError, errors } = e as { type?: unknown; cause?: unknown; originalError?: unknown; errors?: unknown };
    if (typeof type === 'string' && PERMANENT_PRODUCE_ERRORS.has(type)) return type;
    queue.push(cause, originalError, ...(Array.isArray(errors) ? errors : []));
  }
  return null;
}

/** Where refused records came from, from their source headers (ERROR_HEADERS): "orders/0 at offset 7, orders/1 at offsets 3, 9". */
export function describeSources(records: readonly KafkaRecord[]): string {
  const header = (r: KafkaRecord, key: string) => {
    const h = r.headers.find((x) => x.key === key);
    return h?.value ? Buffer.from(h.value).toString() : '?';
  };
  const byPartition = new Map<string, string[]>();
  for (const r of records) {
    const where = `${header(r, ERROR_HEADERS.topic)}/${header(r, ERROR_HEADERS.partition)}`;
    const offsets = byPartition.get(where) ?? [];
    offsets.push(header(r, ERROR_HEADERS.offset));
    byPartition.set(where, offsets);
  }
  return [...byPartition].map(([where, offsets]) => `${where} at offset${offsets.length > 1 ? 's' : ''} ${offsets.join(', ')}`).join(', ');
}

export class ErrorTopicProducer {
  private producer: Producer | null = null;
  /** The last produce; the next one starts after it settled, whatever its outcome. */
  private chain: Promise<void> = Promise.resolve();

  constructor(private readonly kafka: Kafka) {}

  /** Writes the records after every earlier produce; rejects when Kafka refused them. */
  produce(records: readonly KafkaRecord[]): Promise<void> {
    const done = this.chain.then(async () => {
      if (!this.producer) {
        const producer = this.kafka.producer({ allowAutoTopicCreation: true, idempotent: false });
        await producer.connect();
        this.producer = producer;
      }
      await this.producer.sendBatch({ topicMessages: errorTopicMessages(records) });
    });
    this.chain = done.catch(() => {});
    return done;
  }

  /** Waits for the produces already asked for, then disconnects. */
  async close(): Promise<void> {
    await this.chain;
    await this.producer?.disconnect().catch(() => {});
    this.producer = null;
  }
}
