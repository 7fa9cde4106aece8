/**
 * kafka-request-queue.ts: kafkajs's request queue arms its pending-check timer only while
 * requests wait. Checked on a real client against the dev broker: once its requests are
 * answered, none of its connections' queues holds a timer (kafkajs 2.2.4's own queue always
 * does, re-arming itself every millisecond).
 */
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { after, before, describe, it } from 'node:test';
import { Kafka, logLevel } from 'kafkajs';
import { type DevBroker, startDevBroker } from '#kafka-broker/index.js';
import { pendingCheckDelay, requestQueuePatched } from '../src/kafka-request-queue.js';

describe('pendingCheckDelay', () => {
  const now = 1_000_000;
  const cases: { name: string; pending: number; throttledUntil: number; expected: number | null }[] = [
    { name: 'nothing waits, never throttled (the case kafkajs loops on)', pending: 0, throttledUntil: -1, expected: null },
    { name: 'nothing waits while throttled', pending: 0, throttledUntil: now + 500, expected: null },
    { name: 'requests wait, not throttled: the queue interval', pending: 2, throttledUntil: -1, expected: 10 },
    { name: 'requests wait, throttle over', pending: 1, throttledUntil: now - 5, expected: 10 },
    { name: 'requests wait, throttled: until it ends', pending: 1, throttledUntil: now + 250, expected: 250 },
    { name: 'requests wait, throttle ends within a millisecond', pending: 1, throttledUntil: now + 1, expected: 1 },
  ];
  for (const c of cases) it(c.name, () => assert.equal(pendingCheckDelay(c.pending, c.throttledUntil, now), c.expected));
});

describe('kafkajs request queues with the patch', () => {
  let broker: DevBroker;
  before(async () => {
    broker = await startDevBroker();
    broker.createTopic('queue-check', 2);
  });
  after(async () => broker?.stop());

  it('is applied to the kafkajs ingestion loads', () => assert.equal(requestQueuePatched, true));

  it('leaves no timer armed on an idle connection', async () => {
    const kafka = new Kafka({ clientId: 'queue-check', brokers: [broker.address], logLevel: logLevel.NOTHING });
    const admin = kafka.admin();
    const collected = collectQueues();
    await admin.connect();
    try {
      // Several requests, some at once, so the queues have been used both ways.
      await Promise.all([admin.fetchTopicOffsets('queue-check'), admin.fetchTopicMetadata({ topics: ['queue-check'] })]);
      await admin.fetchTopicOffsets('queue-check');
      const queues = [...collected.queues];
      assert.ok(queues.length > 0, 'the admin client has answered requests');
      for (const q of queues) {
        assert.equal(q.pending.length, 0);
        assert.equal(q.throttleCheckTimeoutId, null, 'an idle queue holds no pending-check timer');
      }
    } finally {
      collected.stop();
      await admin.disconnect();
    }
  });
});

interface QueueView {
  pending: unknown[];
  throttleCheckTimeoutId: unknown;
}

/** Every kafkajs request queue that answers a request from now on (read through its prototype). */
function collectQueues(): { queues: Set<QueueView>; stop(): void } {
  const RequestQueue = createRequire(import.meta.url)('kafkajs/src/network/requestQueue/index.js') as {
    prototype: { fulfillRequest(this: QueueView, response: unknown): void };
  };
  const original = RequestQueue.prototype.fulfillRequest;
  const queues = new Set<QueueView>();
  RequestQueue.prototype.fulfillRequest = function (this: QueueView, response: unknown) {
    queues.add(this);
    return original.call(this, response);
  };
  return { queues, stop: () => (RequestQueue.prototype.fulfillRequest = original) };
}
