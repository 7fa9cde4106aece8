// Drain rate of the dev broker: 1M 200-byte records, read back by kafkajs (consumer group) and by
// kcat (librdkafka). The broker must not be the bottleneck of later pipeline benchmarks.
import { spawn } from 'node:child_process';
import { Kafka, logLevel } from 'kafkajs';
import { startDevBroker, type DevBroker } from '#kafka-broker/index.js';

const RECORDS = Number(process.env.DEV_BROKER_BENCH_RECORDS ?? 1_000_000);
const RECORD_BYTES = 200;
const PARTITIONS = 6;
const BATCH = 1_000;

function load(broker: DevBroker, topic: string): number {
  const value = Buffer.alloc(RECORD_BYTES, 'x');
  const started = performance.now();
  const now = Date.now();
  for (let sent = 0, p = 0; sent < RECORDS; sent += BATCH, p = (p + 1) % PARTITIONS) {
    const n = Math.min(BATCH, RECORDS - sent);
    broker.append(
      topic,
      p,
      Array.from({ length: n }, (_, i) => ({ value, timestamp: now + sent + i })),
    );
  }
  return performance.now() - started;
}

async function drainKafkajs(broker: DevBroker, topic: string): Promise<number> {
  const kafka = new Kafka({ clientId: 'bench', brokers: [broker.address], logLevel: logLevel.NOTHING });
  const consumer = kafka.consumer({
    groupId: `bench-${Date.now()}`,
    maxBytes: 50 << 20,
    maxBytesPerPartition: 4 << 20,
    maxWaitTimeInMs: 100,
  });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  let count = 0;
  let started = 0;
  const done = new Promise<number>((resolve) => {
    void consumer.run({
      autoCommit: false,
      eachBatch: async ({ batch }) => {
        if (started === 0) started = performance.now();
        count += batch.messages.length;
        if (count >= RECORDS) resolve(performance.now() - started);
      },
    });
  });
  const ms = await done;
  await consumer.disconnect();
  return ms;
}

function drainKcat(broker: DevBroker, topic: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn('/usr/bin/kcat', ['-b', broker.address, '-C', '-t', topic, '-o', 'beginning', '-e', '-q', '-f', '%o\n'], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let lines = 0;
    child.stdout.on('data', (d: Buffer) => {
      for (let i = d.indexOf(10); i !== -1; i = d.indexOf(10, i + 1)) lines++;
    });
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0 || lines !== RECORDS) reject(new Error(`kcat exited ${code} after ${lines} of ${RECORDS} records`));
      else resolve(performance.now() - started);
    });
  });
}

const rate = (ms: number) => ({
  seconds: +(ms / 1000).toFixed(3),
  msgsPerSec: Math.round(RECORDS / (ms / 1000)),
  mbPerSec: +((RECORDS * RECORD_BYTES) / (1 << 20) / (ms / 1000)).toFixed(1),
});

export default async function run(): Promise<Record<string, unknown>> {
  const broker = await startDevBroker({ port: 0 });
  try {
    broker.createTopic('bench', PARTITIONS);
    const loadMs = load(broker, 'bench');
    const kafkajs = rate(await drainKafkajs(broker, 'bench'));
    const kcat = rate(await drainKcat(broker, 'bench'));
    return { records: RECORDS, recordBytes: RECORD_BYTES, partitions: PARTITIONS, appendLoad: rate(loadMs), kafkajs, kcat };
  } finally {
    await broker.stop();
  }
}
