import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { initTracing, shutdownTracing } from '#shared/tracing.js';
import { FetchedRecords, type RecordHeader } from '../src/kafka/fetched-records.js';
import { producerLinks } from '../src/trace-links.js';

before(() => initTracing({ serviceName: 'trace-links-test' }));
after(() => shutdownTracing());

const traceparent = (trace: string, span: string) => Buffer.from(`00-${trace}-${span}-01`);
const T1 = '0af7651916cd43dd8448eb211c80319c';
const T2 = '4bf92f3577b34da6a3ce929d0e0e4736';

/** A holder of records with these headers (a record with an empty list has none, as the decoder gives). */
function holding(messages: readonly { headers: RecordHeader[] | null }[]): FetchedRecords {
  const records = new FetchedRecords();
  const data = Buffer.alloc(0);
  for (const [i, m] of messages.entries()) records.add(i, 0, data, 0, -1, 0, -1, m.headers && m.headers.length > 0 ? m.headers : null);
  return records;
}

test('records with traceparent headers link the batch to their producers, once each, up to a limit', () => {
  const messages = [
    { headers: [{ key: 'traceparent', value: traceparent(T1, 'b7ad6b7169203331') }] },
    { headers: [] },
    { headers: [{ key: 'traceparent', value: traceparent(T1, 'b7ad6b7169203331') }] }, // same producer span
    {
      headers: [
        { key: 'other', value: null },
        { key: 'traceparent', value: traceparent(T2, '00f067aa0ba902b7') },
        { key: 'traceparent', value: traceparent(T1, '0000000000000001') }, // a repeat: the first wins
      ],
    },
    { headers: [{ key: 'traceparent', value: Buffer.from('not a traceparent') }] },
    { headers: [{ key: 'traceparent', value: null }] },
    { headers: null },
  ];
  const records = holding(messages);
  const all = messages.map((_, i) => i);
  const links = producerLinks(records, all);
  assert.deepEqual(
    links.map((l) => [l.context.traceId, l.context.spanId]),
    [
      [T1, 'b7ad6b7169203331'],
      [T2, '00f067aa0ba902b7'],
    ],
  );
  assert.equal(producerLinks(records, all, 1).length, 1);
  assert.deepEqual(producerLinks(holding([{ headers: [{ key: 'other', value: Buffer.from('x') }] }]), [0]), []);
  assert.deepEqual(
    producerLinks(records, [3, 4, 5]).map((l) => l.context.spanId),
    ['00f067aa0ba902b7'],
    'only the records sent are looked at',
  );
});
