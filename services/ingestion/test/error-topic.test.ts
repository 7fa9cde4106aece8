import assert from 'node:assert/strict';
import { test } from 'node:test';
import kafkajs from 'kafkajs';
import type { KafkaRecord } from '#shared/gen/sluice/v1/types.js';
import { describeSources, permanentProduceError } from '../src/error-topic.js';

const { KafkaJSNonRetriableError, KafkaJSProtocolError } = kafkajs;

const protocolError = (type: string, code: number) => Object.assign(new KafkaJSProtocolError(`${type} from the broker`), { type, code });

const PRODUCE_FAILURES: { name: string; err: unknown; permanent: string | null }[] = [
  { name: 'a record over message.max.bytes', err: protocolError('MESSAGE_TOO_LARGE', 10), permanent: 'MESSAGE_TOO_LARGE' },
  {
    name: "the same, wrapped as kafkajs's retrier wraps it",
    err: ((e) => Object.assign(new KafkaJSNonRetriableError(e), { cause: e }))(protocolError('MESSAGE_TOO_LARGE', 10)),
    permanent: 'MESSAGE_TOO_LARGE',
  },
  {
    name: 'inside an aggregate',
    err: { name: 'KafkaJSAggregateError', errors: [protocolError('INVALID_RECORD', 87)] },
    permanent: 'INVALID_RECORD',
  },
  { name: 'a leader election (retrying helps)', err: protocolError('NOT_LEADER_FOR_PARTITION', 6), permanent: null },
  { name: 'the broker unreachable', err: new Error('Connection error: connect ECONNREFUSED 127.0.0.1:9092'), permanent: null },
  { name: 'not an error at all', err: undefined, permanent: null },
];

for (const c of PRODUCE_FAILURES) test(`permanent produce error: ${c.name}`, () => assert.equal(permanentProduceError(c.err), c.permanent));

const refused = (topic: string, partition: number, offset: number): KafkaRecord => ({
  topic: 'errors',
  partition: 0,
  offset: 0,
  timestampMs: 0,
  key: undefined,
  value: undefined,
  headers: [
    { key: 'sluice.source.topic', value: Buffer.from(topic) },
    { key: 'sluice.source.partition', value: Buffer.from(String(partition)) },
    { key: 'sluice.source.offset', value: Buffer.from(String(offset)) },
  ],
});

test('describeSources names each source partition and its offsets, in order', () => {
  assert.equal(describeSources([refused('orders', 0, 7)]), 'orders/0 at offset 7');
  assert.equal(
    describeSources([refused('orders', 1, 3), refused('orders', 0, 7), refused('orders', 1, 9)]),
    'orders/1 at offsets 3, 9, orders/0 at offset 7',
  );
  assert.equal(describeSources([{ ...refused('x', 0, 0), headers: [] }]), '?/? at offset ?');
});
