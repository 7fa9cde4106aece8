import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { initTracing, shutdownTracing } from '#shared/tracing.js';
import { producerLinks } from '../src/trace-links.js';

before(() => initTracing({ serviceName: 'trace-links-test' }));
after(() => shutdownTracing());

const traceparent = (trace: string, span: string) => Buffer.from(`00-${trace}-${span}-01`);
const T1 = '0af7651916cd43dd8448eb211c80319c';
const T2 = '4bf92f3577b34da6a3ce929d0e0e4736';

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
  const links = producerLinks(messages);
  assert.deepEqual(
    links.map((l) => [l.context.traceId, l.context.spanId]),
    [
      [T1, 'b7ad6b7169203331'],
      [T2, '00f067aa0ba902b7'],
    ],
  );
  assert.equal(producerLinks(messages, 1).length, 1);
  assert.deepEqual(producerLinks([{ headers: [{ key: 'other', value: Buffer.from('x') }] }]), []);
});
