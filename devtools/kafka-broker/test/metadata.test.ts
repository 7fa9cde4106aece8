import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ApiKey, ErrorCode, startDevBroker } from '#kafka-broker/index.js';
import { RawClient } from './helpers.js';

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
