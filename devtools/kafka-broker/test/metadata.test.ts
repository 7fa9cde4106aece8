import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ApiKey, ErrorCode, startDevBroker } from '#kafka-broker/index.js';
import { RawClient } from './helpers.js';
import { tempDir } from '#test-support/temp.js';

/** Metadata v4 for one topic: [error code, partition count]. */
async function describe(raw: RawClient, topic: string, allowAutoCreate: boolean): Promise<[number, number]> {
  const r = await raw.request(ApiKey.Metadata, 4, (w) => w.array([topic], (w, t) => w.string(t)).bool(allowAutoCreate));
  r.int32();
  r.array((r) => (r.int32(), r.string(), r.int32(), r.nullableString()));
  r.nullableString();
  r.int32();
  const [t] = r.array((r) => {
    const error = r.int16();
    r.string();
    r.bool();
    const partitions = r.array((r) => (r.int16(), r.int32(), r.int32(), r.array((r) => r.int32()), r.array((r) => r.int32())));
    return [error, partitions.length] as [number, number];
  });
  return t;
}

test('metadata auto-creates unknown topics only when broker and client both allow it', async () => {
  const cases: [boolean, boolean, [number, number]][] = [
    [true, true, [ErrorCode.NONE, 4]],
    [true, false, [ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, 0]],
    [false, true, [ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, 0]],
  ];
  for (const [brokerAllows, clientAllows, expected] of cases) {
    const broker = await startDevBroker({ autoCreateTopics: brokerAllows, defaultPartitions: 4 });
    const raw = await RawClient.connect(broker.port);
    try {
      assert.deepEqual(await describe(raw, 'fresh', clientAllows), expected, `broker ${brokerAllows}, client ${clientAllows}`);
      assert.deepEqual(await describe(raw, 'bad/name', true), [ErrorCode.INVALID_TOPIC_EXCEPTION, 0]);
      assert.equal(broker.topicNames().includes('fresh'), expected[0] === ErrorCode.NONE);
    } finally {
      raw.close();
      await broker.stop();
    }
  }
});

/**
 * Metadata v9-v12 (flexible) for one topic, by name or (v12, name null) by id: [error code,
 * name, topic id as base64url (v10+; null before), partition count].
 */
async function describeFlexible(
  raw: RawClient,
  version: number,
  topic: { name: string | null; id?: Buffer },
): Promise<[number, string | null, string | null, number]> {
  const r = await raw.request(ApiKey.Metadata, version, (w) => {
    w.emptyTaggedFields(); // request header v2
    w.compactArray([topic], (w, t) => {
      if (version >= 10) w.raw(t.id ?? Buffer.alloc(16));
      w.compactNullableString(t.name).emptyTaggedFields();
    });
    w.bool(false); // allow auto-creation
    if (version <= 10) w.bool(false);
    w.bool(false).emptyTaggedFields();
  });
  r.skipTaggedFields(); // response header v1
  r.int32(); // throttle
  r.compactNullableArray((r) => (r.int32(), r.compactNullableString(), r.int32(), r.compactNullableString(), r.skipTaggedFields()));
  r.compactNullableString(); // cluster id
  r.int32(); // controller
  const [t] = r.compactNullableArray((r) => {
    const error = r.int16();
    const name = r.compactNullableString();
    const id = version >= 10 ? r.uuid().toString('base64url') : null;
    r.bool();
    const partitions = r.compactNullableArray((r) => {
      r.int16(), r.int32(), r.int32(), r.int32();
      for (let i = 0; i < 3; i++) r.compactNullableArray((r) => r.int32());
      r.skipTaggedFields();
    });
    r.int32();
    r.skipTaggedFields();
    return [error, name, id, partitions?.length ?? 0] as [number, string | null, string | null, number];
  })!;
  if (version <= 10) r.int32();
  r.skipTaggedFields();
  assert.equal(r.remaining, 0, `Metadata v${version}: nothing after the tagged fields`);
  return t;
}

test('metadata v9-v12 (flexible): topic ids from v10, a new id when a topic is recreated, a topic by id at v12', async () => {
  const broker = await startDevBroker({ autoCreateTopics: false });
  const raw = await RawClient.connect(broker.port);
  try {
    broker.createTopic('orders', 3);
    const [, , v9Id, v9Partitions] = await describeFlexible(raw, 9, { name: 'orders' });
    assert.deepEqual([v9Id, v9Partitions], [null, 3]);
    const [error, name, id, partitions] = await describeFlexible(raw, 12, { name: 'orders' });
    assert.deepEqual([error, name, partitions], [ErrorCode.NONE, 'orders', 3]);
    assert.match(id!, /^[A-Za-z0-9_][A-Za-z0-9_-]{21}$/);
    for (const version of [10, 11]) assert.equal((await describeFlexible(raw, version, { name: 'orders' }))[2], id, `v${version}`);
    const oldId = Buffer.from(id!, 'base64url');
    assert.deepEqual(await describeFlexible(raw, 12, { name: null, id: oldId }), [ErrorCode.NONE, 'orders', id, 3]);

    broker.deleteTopic('orders');
    assert.deepEqual(await describeFlexible(raw, 12, { name: 'orders' }), [
      ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
      'orders',
      'A'.repeat(22),
      0,
    ]);
    broker.createTopic('orders', 2);
    const [, , newId, newPartitions] = await describeFlexible(raw, 12, { name: 'orders' });
    assert.notEqual(newId, id, 'a recreated topic has a new id');
    assert.equal(newPartitions, 2);
    assert.deepEqual(await describeFlexible(raw, 12, { name: null, id: oldId }), [ErrorCode.UNKNOWN_TOPIC_ID, null, 'A'.repeat(22), 0]);
  } finally {
    raw.close();
    await broker.stop();
  }
});

test("a topic's id survives a restart on the data directory (a running job would take a new one for a recreated topic)", async () => {
  const dir = tempDir('dev-broker-ids');
  try {
    let broker = await startDevBroker({ dataDir: dir.path });
    broker.createTopic('kept', 1);
    const idOf = async () => {
      const raw = await RawClient.connect(broker.port);
      try {
        return (await describeFlexible(raw, 12, { name: 'kept' }))[2];
      } finally {
        raw.close();
      }
    };
    const before = await idOf();
    await broker.stop();
    broker = await startDevBroker({ dataDir: dir.path });
    try {
      assert.equal(await idOf(), before);
    } finally {
      await broker.stop();
    }
  } finally {
    dir.remove();
  }
});
