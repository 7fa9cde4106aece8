/**
 * What the dev broker's transaction coordinator does beyond the conformance scenarios of
 * test/interop/kafka (which compare it with Apache Kafka): a transaction left open past its
 * timeout is aborted, as Kafka does, and one left open by a broker restart is aborted at load,
 * so neither holds read_committed readers back forever.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startDevBroker } from '#kafka-broker/index.js';
import { kafka } from './helpers.js';
import { tempDir } from '#test-support/temp.js';
import { waitFor } from '#test-support/wait.js';

/** The end a read_committed client is told (kafkajs admin lists offsets read_committed): the last stable offset. */
async function stableEnd(address: string, topic: string): Promise<string> {
  const admin = kafka(address).admin();
  await admin.connect();
  try {
    const [row] = await admin.fetchTopicOffsets(topic);
    return row.high;
  } finally {
    await admin.disconnect();
  }
}

test('a transaction open longer than its timeout is aborted: the last stable offset moves past it', async () => {
  const broker = await startDevBroker({});
  try {
    broker.createTopic('tx-timeout', 1);
    const producer = kafka(broker.address).producer({
      transactionalId: 'slow',
      transactionTimeout: 1000,
      maxInFlightRequests: 1,
      idempotent: true,
    });
    await producer.connect();
    const tx = await producer.transaction();
    await tx.send({ topic: 'tx-timeout', messages: [{ value: 'never committed' }] });
    assert.equal(await stableEnd(broker.address, 'tx-timeout'), '0', 'read_committed stops before the open transaction');
    await waitFor('the timed-out transaction to be aborted', async () => (await stableEnd(broker.address, 'tx-timeout')) === '2', {
      timeoutMs: 10_000,
    });
    assert.equal(broker.highWatermark('tx-timeout', 0), 2, 'the record and its abort marker');
    await producer.disconnect().catch(() => {});
  } finally {
    await broker.stop();
  }
});

test('a transaction left open by a restart is aborted when the data directory is loaded', async () => {
  const dir = tempDir('dev-broker-tx');
  try {
    let broker = await startDevBroker({ dataDir: dir.path });
    broker.createTopic('tx-restart', 1);
    const producer = kafka(broker.address).producer({ transactionalId: 'cut', maxInFlightRequests: 1, idempotent: true });
    await producer.connect();
    const committed = await producer.transaction();
    await committed.send({ topic: 'tx-restart', messages: [{ value: 'kept' }] });
    await committed.commit(); // 0, marker 1
    const open = await producer.transaction();
    await open.send({ topic: 'tx-restart', messages: [{ value: 'cut off' }] }); // 2
    await producer.disconnect().catch(() => {});
    await broker.stop();

    broker = await startDevBroker({ dataDir: dir.path });
    try {
      assert.equal(broker.highWatermark('tx-restart', 0), 4, 'an abort marker was written for the open transaction');
      assert.equal(await stableEnd(broker.address, 'tx-restart'), '4');
      const consumer = kafka(broker.address).consumer({ groupId: 'tx-restart-reader', maxWaitTimeInMs: 100 });
      const seen: string[] = [];
      await consumer.connect();
      await consumer.subscribe({ topic: 'tx-restart', fromBeginning: true });
      await consumer.run({ eachMessage: async ({ message }) => void seen.push(`${message.offset} ${message.value}`) });
      await waitFor('the committed record', () => seen.length >= 1);
      await consumer.disconnect();
      assert.deepEqual(seen, ['0 kept']);
    } finally {
      await broker.stop();
    }
  } finally {
    dir.remove();
  }
});
