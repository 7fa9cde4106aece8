import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { test } from 'node:test';
import { initTracing, shutdownTracing, withSpan } from '#shared/tracing.js';

test('with OTEL_EXPORTER_OTLP_ENDPOINT set, spans are exported over OTLP/HTTP to <endpoint>/v1/traces', async () => {
  const received: { path: string; contentType: string; body: Buffer }[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      received.push({ path: req.url ?? '', contentType: req.headers['content-type'] ?? '', body: Buffer.concat(chunks) });
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };

  await initTracing({ serviceName: 'sluice-otlp-test', otlpEndpoint: `http://127.0.0.1:${port}/` });
  await withSpan('exported-span', { 'sluice.test': true }, async () => {});
  await shutdownTracing(); // flushes the batch processor

  await new Promise<void>((resolve) => server.close(() => resolve()));
  assert.equal(received.length, 1, 'one export request');
  assert.equal(received[0].path, '/v1/traces');
  const body = received[0].body.toString('latin1');
  assert.ok(body.includes('exported-span'), 'the span name is in the payload');
  assert.ok(body.includes('sluice-otlp-test'), 'the service name is in the resource');
});
