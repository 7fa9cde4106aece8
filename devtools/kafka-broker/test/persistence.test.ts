import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { CompressionTypes } from 'kafkajs';
import { startDevBroker } from '#kafka-broker/index.js';
import { kafka } from './helpers.js';
import { tempDir } from '#test-support/temp.js';
import { waitFor } from '#test-support/wait.js';

test('a broker restarted on its data directory keeps topics, records, log start and group offsets', async () => {
  const dir = tempDir('dev-broker-data');
  try {
    let broker = await startDevBroker({ dataDir: dir.path });
    broker.createTopic('kept', 2);
    broker.createTopic('dropped', 1);
    broker.append(
      'kept',
      0,
      Array.from({ length: 5 }, (_, i) => ({ key: `k${i}`, value: `v${i}`, headers: { n: String(i) }, timestamp: 1000 + i })),
    );
    const producer = kafka(broker.address).producer();
    await producer.connect();
    await producer.send({
      topic: 'kept',
      compression: CompressionTypes.GZIP,
      messages: [
        { partition: 1, value: 'gz0' },
        { partition: 1, value: 'gz1' },
      ],
    });
    await producer.disconnect();
    const admin = kafka(broker.address).admin();
    await admin.connect();
    await admin.setOffsets({
      groupId: 'g',
      topic: 'kept',
      partitions: [
        { partition: 0, offset: '3' },
        { partition: 1, offset: '1' },
      ],
    });
    await admin.disconnect();
    broker.deleteRecordsBefore('kept', 0, 2);
    broker.deleteTopic('dropped');
    assert.equal(existsSync(join(dir.path, 'topics', 'dropped')), false, 'a deleted topic leaves no files');
    await broker.stop();

    broker = await startDevBroker({ dataDir: dir.path });
    try {
      assert.deepEqual(broker.topicNames().sort(), ['kept']);
      assert.equal(broker.highWatermark('kept', 0), 5);
      assert.equal(broker.logStartOffset('kept', 0), 2);
      assert.equal(broker.highWatermark('kept', 1), 2);
      assert.equal(broker.committedOffset('g', 'kept', 0), 3);
      const admin2 = kafka(broker.address).admin();
      await admin2.connect();
      const [offsets] = await admin2.fetchOffsets({ groupId: 'g', topics: ['kept'] });
      assert.deepEqual(offsets.partitions.map((p) => [p.partition, p.offset]).sort(), [
        [0, '3'],
        [1, '1'],
      ]);
      await admin2.disconnect();

      // The group resumes from its committed offsets; retention hid nothing it still needs.
      const consumer = kafka(broker.address).consumer({ groupId: 'g', maxWaitTimeInMs: 50 });
      const got: string[] = [];
      await consumer.connect();
      await consumer.subscribe({ topic: 'kept' });
      await consumer.run({
        eachMessage: async ({ partition, message }) =>
          void got.push(`${partition}:${message.offset}:${message.value}:${message.headers?.n ?? ''}`),
      });
      await waitFor('records after the committed offsets', () => got.length >= 3);
      await consumer.disconnect();
      assert.deepEqual(got.sort(), ['0:3:v3:3', '0:4:v4:4', '1:1:gz1:']);
      // New appends continue the offsets.
      assert.deepEqual(broker.append('kept', 0, [{ value: 'after' }]), { baseOffset: 5, lastOffset: 5 });
    } finally {
      await broker.stop();
    }
  } finally {
    dir.remove();
  }
});

test('retention of every record survives a restart without rewinding offsets', async () => {
  const dir = tempDir('dev-broker-retention');
  try {
    let broker = await startDevBroker({ dataDir: dir.path });
    broker.createTopic('r', 1);
    broker.append('r', 0, [{ value: 'a' }, { value: 'b' }]);
    broker.deleteRecordsBefore('r', 0, 2);
    await broker.stop();
    broker = await startDevBroker({ dataDir: dir.path });
    assert.equal(broker.logStartOffset('r', 0), 2);
    assert.equal(broker.highWatermark('r', 0), 2);
    assert.equal(broker.append('r', 0, [{ value: 'c' }]).baseOffset, 2);
    await broker.stop();
  } finally {
    dir.remove();
  }
});
