/**
 * Reads given offset ranges of a topic's partitions once, without a consumer group of
 * consequence: kafkajs needs a group id, so a throwaway one is used and nothing is committed
 * under it; each assigned partition is sought to its range's start. The CLI samples topics
 * with it, and the scheduler looks for late records.
 */
import { randomUUID } from 'node:crypto';
import type { Kafka, KafkaMessage } from 'kafkajs';

export interface OffsetSpan {
  /** First offset to read. */
  from: number;
  /** One past the last offset to read. */
  to: number;
}

/**
 * Calls `onBatch` with each fetched batch's records inside the ranges, until every range was
 * read to its end or `timeoutMs` passed; returns the partitions read to their end.
 */
export async function readRanges(
  kafka: Kafka,
  topic: string,
  ranges: ReadonlyMap<number, OffsetSpan>,
  onBatch: (partition: number, messages: KafkaMessage[]) => void,
  timeoutMs: number,
  groupPrefix = 'sluice-read',
): Promise<Set<number>> {
  const wanted = new Map([...ranges].filter(([, r]) => r.to > r.from));
  const done = new Set<number>();
  if (wanted.size === 0) return done;
  const consumer = kafka.consumer({ groupId: `${groupPrefix}-${randomUUID()}`, allowAutoTopicCreation: false });
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => resolve(), timeoutMs);
      consumer
        .run({
          autoCommit: false,
          eachBatchAutoResolve: true,
          eachBatch: async ({ batch }) => {
            const range = wanted.get(batch.partition);
            if (!range || done.has(batch.partition)) return;
            const inside = batch.messages.filter((m) => {
              const offset = Number(m.offset);
              return offset >= range.from && offset < range.to;
            });
            if (inside.length > 0) onBatch(batch.partition, inside);
            if (Number(batch.lastOffset()) + 1 >= range.to) done.add(batch.partition);
            if (done.size === wanted.size) {
              clearTimeout(timer);
              resolve();
            }
          },
        })
        .catch(reject);
      consumer.on(consumer.events.GROUP_JOIN, ({ payload }) => {
        for (const [assignedTopic, partitions] of Object.entries(payload.memberAssignment)) {
          for (const p of partitions) {
            const range = wanted.get(p);
            if (range) consumer.seek({ topic: assignedTopic, partition: p, offset: String(range.from) });
          }
        }
      });
    });
  } finally {
    await consumer.disconnect();
  }
  return done;
}
