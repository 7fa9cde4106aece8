import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { CompressionTypes, type Consumer } from 'kafkajs';
import { startDevBroker, type DevBroker } from '#kafka-broker/index.js';
import { kafka } from './helpers.js';
import { waitFor } from '#test-support/wait.js';

let broker: DevBroker;
before(async () => {
  broker = await startDevBroker({ port: 0, defaultPartitions: 1 });
});
after(() => broker.stop());

test('kafkajs admin creates, lists and deletes topics with Kafka errors', async () => {
  const admin = kafka(broker.address).admin();
  await admin.connect();
  try {
    assert.equal(await admin.createTopics({ topics: [{ topic: 'admin-a', numPartitions: 3 }, { topic: 'admin-b' }] }), true);
    // kafkajs reports TOPIC_ALREADY_EXISTS as "not created"
    assert.equal(await admin.createTopics({ topics: [{ topic: 'admin-a', numPartitions: 3 }] }), false);
    await assert.rejects(
      admin.createTopics({ topics: [{ topic: 'bad name!' }] }),
      /INVALID_TOPIC_EXCEPTION|not valid|Topic creation errors/,
    );
    assert.deepEqual((await admin.listTopics()).filter((t) => t.startsWith('admin-')).sort(), ['admin-a', 'admin-b']);
    const meta = await admin.fetchTopicMetadata({ topics: ['admin-a'] });
    assert.equal(meta.topics[0].partitions.length, 3);
    await admin.deleteTopics({ topics: ['admin-a'] });
    assert.deepEqual(
      (await admin.listTopics()).filter((t) => t.startsWith('admin-')),
      ['admin-b'],
    );
    await assert.rejects(admin.deleteTopics({ topics: ['admin-a'] }), /does not host this topic-partition|UNKNOWN_TOPIC/i);
  } finally {
    await admin.disconnect();
  }
});

const TOTAL = 100_000;
const PARTITIONS = 6;

test('100k records across 6 partitions: a group of 3 where one leaves commits every record', async () => {
  const topic = 'bulk';
  broker.createTopic(topic, PARTITIONS);
  const k = kafka(broker.address, 'bulk');
  const producer = k.producer({ idempotent: true });
  await producer.connect();
  const produce = async (from: number, to: number) => {
    for (let start = from; start < to; start += 10_000) {
      const byPartition = Array.from({ length: PARTITIONS }, (_, p) => ({
        topic,
        partition: p,
        messages: [] as { key: string; value: string }[],
      }));
      for (let i = start; i < Math.min(to, start + 10_000); i++)
        byPartition[i % PARTITIONS].messages.push({ key: `k${i}`, value: `v${i}` });
      await producer.sendBatch({
        topicMessages: byPartition.flatMap((b) => [{ topic, messages: b.messages.map((m) => ({ ...m, partition: b.partition })) }]),
      });
    }
  };

  // seen[i] counts deliveries of record i; a record at the wrong offset or with a foreign value fails at once.
  const seen = new Uint8Array(TOTAL);
  let delivered = 0;
  const problems: string[] = [];
  const consumers: Consumer[] = [];
  const joins = new Map<Consumer, number>();
  const received = new Map<Consumer, number>();
  for (let c = 0; c < 3; c++) {
    const consumer = k.consumer({ groupId: 'bulk-group', sessionTimeout: 10_000, heartbeatInterval: 200, maxWaitTimeInMs: 100 });
    consumer.on(consumer.events.GROUP_JOIN, () => joins.set(consumer, (joins.get(consumer) ?? 0) + 1));
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({
      eachBatch: async ({ batch }) => {
        for (const m of batch.messages) {
          const i = Number(m.value!.toString().slice(1));
          const offset = Number(m.offset);
          if (!(i >= 0 && i < TOTAL) || i % PARTITIONS !== batch.partition || Math.floor(i / PARTITIONS) !== offset) {
            problems.push(`partition ${batch.partition} offset ${offset} holds ${m.value}`);
          } else {
            if (seen[i] === 0) delivered++;
            seen[i]++;
          }
        }
        received.set(consumer, (received.get(consumer) ?? 0) + batch.messages.length);
      },
    });
    consumers.push(consumer);
  }
  try {
    await waitFor('all three consumers to join', () => consumers.every((c) => (joins.get(c) ?? 0) > 0));
    await produce(0, TOTAL / 2);
    await waitFor('first half delivered', () => delivered >= TOTAL / 2, { timeoutMs: 60_000 });
    const leaver = consumers.pop()!;
    assert.ok((received.get(leaver) ?? 0) > 0, 'the leaving member had partitions and consumed');
    const joinsBefore = consumers.map((c) => joins.get(c) ?? 0);
    await Promise.all([produce(TOTAL / 2, TOTAL), leaver.disconnect()]);
    await waitFor(
      'committed offsets to reach the high watermarks',
      () =>
        Array.from(
          { length: PARTITIONS },
          (_, p) => broker.committedOffset('bulk-group', topic, p) === broker.highWatermark(topic, p),
        ).every(Boolean),
      { timeoutMs: 60_000 },
    );
    assert.deepEqual(problems, []);
    assert.equal(delivered, TOTAL, 'every record delivered at least once');
    for (const [i, c] of consumers.entries())
      assert.ok((joins.get(c) ?? 0) > joinsBefore[i], 'remaining members rejoined a new generation');
    const admin = k.admin();
    await admin.connect();
    const { groups } = await admin.describeGroups(['bulk-group']);
    assert.deepEqual([groups[0].state, groups[0].protocolType, groups[0].members.length], ['Stable', 'consumer', 2]);
    assert.ok((await admin.listGroups()).groups.some((g) => g.groupId === 'bulk-group'));
    await admin.disconnect();
    for (let p = 0; p < PARTITIONS; p++) assert.equal(broker.highWatermark(topic, p), Math.ceil((TOTAL - p) / PARTITIONS));
  } finally {
    await Promise.all(consumers.map((c) => c.disconnect()));
    await producer.disconnect();
  }
});

test('timestamp lookups and consumer seeks land on the first record at or after t', async () => {
  const topic = 'times';
  broker.createTopic(topic, 1);
  const T = 1_700_000_000_000;
  const producer = kafka(broker.address).producer();
  await producer.connect();
  // Two batches with timestamps out of order inside and across them; the second one gzip.
  const stamps = [
    [1000, 5000, 3000],
    [2000, 7000, 4000, 6000],
  ];
  await producer.send({ topic, messages: stamps[0].map((d) => ({ value: `at${d}`, timestamp: String(T + d) })) });
  await producer.send({
    topic,
    compression: CompressionTypes.GZIP,
    messages: stamps[1].map((d) => ({ value: `at${d}`, timestamp: String(T + d) })),
  });
  await producer.disconnect();

  const admin = kafka(broker.address).admin();
  await admin.connect();
  const cases: [number, string][] = [
    [500, '0'],
    [1500, '1'],
    [5500, '4'],
    [6500, '4'],
    [7500, '7' /* none: kafkajs answers the high watermark */],
  ];
  for (const [delta, expected] of cases) {
    const [res] = await admin.fetchTopicOffsetsByTimestamp(topic, T + delta);
    assert.equal(res.offset, expected, `first offset at or after T+${delta}`);
  }
  await admin.disconnect();

  const consumer = kafka(broker.address).consumer({ groupId: 'times-group', maxWaitTimeInMs: 50 });
  await consumer.connect();
  await consumer.subscribe({ topic });
  const values: string[] = [];
  await consumer.run({ eachMessage: async ({ message }) => void values.push(message.value!.toString()) });
  consumer.seek({ topic, partition: 0, offset: '4' });
  await waitFor('records after the seek', () => values.length >= 3);
  await consumer.disconnect();
  assert.deepEqual(values.slice(0, 3), ['at7000', 'at4000', 'at6000']);
});
