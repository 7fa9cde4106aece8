import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ApiKey, ErrorCode, startDevBroker } from '#kafka-broker/index.js';
import { kafka, RawClient } from './helpers.js';
import { Writer } from '#kafka-broker/protocol/writer.js';
import { waitFor } from '#test-support/wait.js';

const GROUP = 'evict-group';
const TOPIC = 'evict';

/** Consumer-protocol subscription metadata (version 0, topics, no user data). */
function subscription(): Buffer {
  return Buffer.concat(
    new Writer()
      .int16(0)
      .array([TOPIC], (w, t) => w.string(t))
      .int32(-1)
      .finish(),
  );
}

async function join(raw: RawClient, memberId: string): Promise<{ error: number; generation: number; memberId: string }> {
  const r = await raw.request(ApiKey.JoinGroup, 5, (w) =>
    w
      .string(GROUP)
      .int32(1_000)
      .int32(5_000)
      .string(memberId)
      .nullableString(null)
      .string('consumer')
      .array(['RoundRobinAssigner'], (w, name) => w.string(name).bytes(subscription())),
  );
  r.int32();
  const error = r.int16();
  const generation = r.int32();
  r.string();
  r.string();
  return { error, generation, memberId: r.string() };
}

test('a member that stops heartbeating is evicted and a kafkajs consumer takes over its partitions', { timeout: 30_000 }, async () => {
  // The raw member's 1 s session timeout is below Kafka's (and the dev broker's) default minimum of 6 s.
  const broker = await startDevBroker({ port: 0, minSessionTimeoutMs: 1_000 });
  broker.createTopic(TOPIC, 4);
  for (let p = 0; p < 4; p++)
    broker.append(
      TOPIC,
      p,
      Array.from({ length: 25 }, (_, i) => ({ value: `${p}-${i}` })),
    );
  const consumer = kafka(broker.address).consumer({ groupId: GROUP, sessionTimeout: 10_000, heartbeatInterval: 100, maxWaitTimeInMs: 50 });
  const raw = await RawClient.connect(broker.port);
  try {
    const seen = new Set<string>();
    let joins = 0;
    consumer.on(consumer.events.GROUP_JOIN, () => joins++);
    await consumer.connect();
    await consumer.subscribe({ topic: TOPIC, fromBeginning: true });
    await consumer.run({ autoCommit: false, eachMessage: async ({ message }) => void seen.add(message.value!.toString()) });
    await waitFor('kafkajs to join', () => joins === 1);
    await waitFor('kafkajs alone to read everything', () => seen.size === 100);

    // A second member joins and receives half the partitions from kafkajs, the leader...
    const first = await join(raw, '');
    assert.equal(first.error, ErrorCode.MEMBER_ID_REQUIRED);
    const joined = await join(raw, first.memberId);
    assert.equal(joined.error, ErrorCode.NONE);
    const sync = await raw.request(ApiKey.SyncGroup, 3, (w) =>
      w.string(GROUP).int32(joined.generation).string(joined.memberId).nullableString(null).int32(0),
    );
    sync.int32();
    assert.equal(sync.int16(), ErrorCode.NONE);
    assert.ok(sync.bytes().length > 0, 'the kafkajs leader assigned partitions to the raw member');
    await waitFor('kafkajs to finish the shared generation', () => joins === 2);

    // ...then falls silent. After its 1 s session timeout it is evicted and kafkajs rejoins alone.
    await waitFor('kafkajs to rejoin after the eviction', () => joins === 3, { timeoutMs: 15_000 });
    for (let p = 0; p < 4; p++) broker.append(TOPIC, p, [{ value: `after-${p}` }]);
    await waitFor('kafkajs to read new records on every partition', () => seen.size === 104);
    const hb = await raw.request(ApiKey.Heartbeat, 3, (w) =>
      w.string(GROUP).int32(joined.generation).string(joined.memberId).nullableString(null),
    );
    hb.int32();
    assert.equal(hb.int16(), ErrorCode.UNKNOWN_MEMBER_ID);
    const { groups } = await (async () => {
      const admin = kafka(broker.address).admin();
      await admin.connect();
      try {
        return await admin.describeGroups([GROUP]);
      } finally {
        await admin.disconnect();
      }
    })();
    assert.equal(groups[0].members.length, 1);
  } finally {
    raw.close();
    await consumer.disconnect();
    await broker.stop();
  }
});
