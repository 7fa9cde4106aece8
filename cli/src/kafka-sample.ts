/**
 * Samples recent messages of a topic for schema inference, like the seeds' "sample data"
 * step: the last few records of each partition, read without a consumer group (so no group
 * offsets are touched) through kafkajs's fetch path with explicit seeks.
 */
import { Kafka, logLevel } from 'kafkajs';
import { readRanges } from '#shared/kafka-ranges.js';
import type { KafkaRecord } from '#shared/gen/sluice/v1/types.js';
import { CliError } from './output.js';

/** kafkajs wraps causes (retries, connection errors); the first protocol error type or message found. */
function kafkaCause(err: unknown): { type?: string; message: string } {
  let e = err as { type?: string; message?: string; cause?: unknown; originalError?: unknown } | undefined;
  const first = e?.message ?? String(err);
  for (let depth = 0; e && depth < 5; depth++) {
    if (e.type) return { type: e.type, message: e.message ?? first };
    e = (e.originalError ?? e.cause) as typeof e;
  }
  return { message: first };
}

/** One line for a failed sampling: a missing topic or an unreachable broker, named. */
export function describeSampleFailure(err: unknown, brokers: string[], topic: string, brokersFrom: string): CliError {
  const cause = kafkaCause(err);
  if (cause.type === 'UNKNOWN_TOPIC_OR_PARTITION' || /does not host this topic-partition/.test(cause.message))
    return new CliError(`topic ${topic} does not exist on ${brokers.join(',')} (${brokersFrom}); create it or fix the source's topic`);
  return new CliError(`cannot sample topic ${topic} from Kafka at ${brokers.join(',')} (${brokersFrom}): ${cause.message}`);
}

/** How many partitions a topic has (throws as kafkajs does: describeSampleFailure names it). */
export async function topicPartitionCount(brokers: string[], topic: string): Promise<number> {
  const kafka = new Kafka({ clientId: 'sluice-cli', brokers, logLevel: logLevel.NOTHING, retry: { retries: 2 } });
  const admin = kafka.admin();
  await admin.connect();
  try {
    return (await admin.fetchTopicOffsets(topic)).length;
  } finally {
    await admin.disconnect();
  }
}

export async function sampleTopic(
  brokers: string[],
  topic: string,
  count: number,
  onProgress: (sampled: number) => void = () => {},
  timeoutMs = 10_000,
): Promise<KafkaRecord[]> {
  const kafka = new Kafka({ clientId: 'sluice-cli', brokers, logLevel: logLevel.NOTHING, retry: { retries: 2 } });
  const admin = kafka.admin();
  await admin.connect();
  let offsets: Awaited<ReturnType<typeof admin.fetchTopicOffsets>>;
  try {
    offsets = await admin.fetchTopicOffsets(topic);
  } finally {
    await admin.disconnect();
  }
  const perPartition = Math.max(1, Math.ceil(count / Math.max(1, offsets.length)));
  const wanted = new Map<number, { from: number; to: number }>();
  for (const o of offsets) {
    const high = Number(o.high);
    const low = Number(o.low);
    if (high > low) wanted.set(o.partition, { from: Math.max(low, high - perPartition), to: high });
  }
  const total = [...wanted.values()].reduce((n, w) => n + (w.to - w.from), 0);
  if (total === 0) return [];

  const samples: KafkaRecord[] = [];
  await readRanges(
    kafka,
    topic,
    wanted,
    (partition, messages) => {
      for (const m of messages) {
        samples.push({
          topic,
          partition,
          offset: Number(m.offset),
          timestampMs: Number(m.timestamp),
          key: m.key ?? undefined,
          value: m.value ?? undefined,
          headers: Object.entries(m.headers ?? {}).flatMap(([key, value]) =>
            (Array.isArray(value) ? value : [value]).map((v) => ({ key, value: v === undefined ? undefined : Buffer.from(v) })),
          ),
        });
      }
      onProgress(samples.length);
    },
    timeoutMs,
    'sluice-cli-sample',
  );
  return samples.sort((a, b) => a.partition - b.partition || a.offset - b.offset).slice(-count);
}
