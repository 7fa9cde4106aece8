/**
 * ERROR_TOPIC policy: transformation refuses records and returns them in its ack; ingestion
 * owns the Kafka producer that writes them to the error topic. One producer per job, connected
 * on first use; produces are chained so the error topic keeps the source order.
 */
import type { Kafka, Message, Producer } from 'kafkajs';
import type { KafkaRecord } from '#shared/gen/sluice/v1/types.js';

/** The records of one ack as kafkajs topic messages, grouped by topic in first-seen order. */
export function errorTopicMessages(records: readonly KafkaRecord[]): { topic: string; messages: Message[] }[] {
  const byTopic = new Map<string, Message[]>();
  for (const r of records) {
    const messages = byTopic.get(r.topic) ?? [];
    messages.push({
      key: r.key ?? null,
      value: r.value ?? null,
      headers: Object.fromEntries(r.headers.map((h) => [h.key, h.value ?? ''])),
    });
    byTopic.set(r.topic, messages);
  }
  return [...byTopic].map(([topic, messages]) => ({ topic, messages }));
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
