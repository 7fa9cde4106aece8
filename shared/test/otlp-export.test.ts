import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { test } from 'node:test';
import { initMetrics, meter, shutdownMetrics } from '#shared/metrics.js';
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

test('with OTEL_EXPORTER_OTLP_ENDPOINT set, metrics are pushed over OTLP/HTTP to <endpoint>/v1/metrics', async () => {
  const received: { path: string; body: Buffer }[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      received.push({ path: req.url ?? '', body: Buffer.concat(chunks) });
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };

  await initMetrics({ serviceName: 'sluice-otlp-metrics-test', otlpEndpoint: `http://127.0.0.1:${port}/`, exportIntervalMs: 60_000 });
  meter().createCounter('sluice_test_pushed', { description: 'a counter the test pushes' }).add(3, { job: 'j' });
  await shutdownMetrics(); // pushes what was not sent yet

  await new Promise<void>((resolve) => server.close(() => resolve()));
  const metricsPosts = received.filter((r) => r.path === '/v1/metrics');
  assert.ok(metricsPosts.length >= 1, `a metrics export request (got ${received.map((r) => r.path).join(', ')})`);
  const body = Buffer.concat(metricsPosts.map((r) => r.body)).toString('latin1');
  assert.ok(body.includes('sluice_test_pushed'), 'the metric is in the payload');
  assert.ok(body.includes('sluice-otlp-metrics-test'), 'the service name is in the resource');
});
