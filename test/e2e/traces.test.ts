/**
 * One trace per batch, through the real mesh: the services export their spans over OTLP/HTTP
 * to a receiver in this test (the product's exporter is what is under test). A producer's
 * record carries a W3C traceparent; the chain checked is
 *
 *   ingestion.batch (linked to the producer's span)
 *     └ transformation.batch                       same trace, child of the batch
 *   transformation.flush   linked to transformation.batch
 *     └ CommitService/ReportDataFiles (client → server)
 *   commit.round           linked to the ReportDataFiles server span
 *     └ CatalogService/CommitTable (client → server)
 *         └ catalog.commit_transaction
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { after, before, it } from 'node:test';
import { field, fixed, job, mapping, source, tableRequest } from '#test-support/builders.js';
import { printLogsOnFailure, startMesh, type TestMesh } from '#test-support/mesh.js';
import { waitFor } from '#test-support/wait.js';

interface ExportedSpan {
  service: string;
  name: string;
  traceId: string;
  spanId: string;
  parentSpanId: string;
  links: { traceId: string; spanId: string }[];
}

let mesh: TestMesh;
let receiver: Server;
const spans: ExportedSpan[] = [];
printLogsOnFailure(() => mesh);

/** OTLP/JSON (what the HTTP exporter sends): ids are hex strings. */
function collect(body: string): void {
  const payload = JSON.parse(body) as {
    resourceSpans?: {
      resource?: { attributes?: { key: string; value: { stringValue?: string } }[] };
      scopeSpans?: {
        spans?: { name: string; traceId: string; spanId: string; parentSpanId?: string; links?: { traceId: string; spanId: string }[] }[];
      }[];
    }[];
  };
  for (const rs of payload.resourceSpans ?? []) {
    const service = rs.resource?.attributes?.find((a) => a.key === 'service.name')?.value.stringValue ?? '';
    for (const ss of rs.scopeSpans ?? [])
      for (const s of ss.spans ?? [])
        spans.push({
          service,
          name: s.name,
          traceId: s.traceId,
          spanId: s.spanId,
          parentSpanId: s.parentSpanId ?? '',
          links: (s.links ?? []).map((l) => ({ traceId: l.traceId, spanId: l.spanId })),
        });
  }
}

before(async () => {
  receiver = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.url === '/v1/traces') collect(Buffer.concat(chunks).toString('utf8'));
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  const { port } = receiver.address() as { port: number };
  mesh = await startMesh({
    env: {
      OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${port}`,
      OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'http/json',
      OTEL_BSP_SCHEDULE_DELAY: '100',
    },
  });
});
after(async () => {
  await mesh?.stop();
  await new Promise<void>((resolve) => receiver?.close(() => resolve()));
});

const PRODUCER_TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const PRODUCER_SPAN = '00f067aa0ba902b7';

it("a batch is one trace from the fetch through transformation, linked on by the flush, the commit round and the catalog's transaction", async () => {
  const ref = { database: 'traced', table: 'events' };
  await mesh.catalog.createDatabase({ name: ref.database, location: '', properties: {} });
  await mesh.catalog.createTable(tableRequest(ref, [...fixed, field(4, 'id', 'long')]));
  await mesh.catalog.createSource({ source: source('traced', 'traced') });
  await mesh.catalog.createJob({ job: job('traced', 'traced', ref, { commitIntervalMs: 1000, mapping: mapping() }) });
  mesh.broker.createTopic('traced', 1);
  mesh.broker.append('traced', 0, [
    { value: '{"id":1}', headers: { traceparent: `00-${PRODUCER_TRACE}-${PRODUCER_SPAN}-01` } },
    { value: '{"id":2}' },
  ]);
  await mesh.ingestion.startJob({ job: 'traced' });

  const byId = (id: string) => spans.find((s) => s.spanId === id);
  const chain = await waitFor('the chain of spans from the fetch to the catalog transaction', () => {
    const batch = spans.find((s) => s.name === 'ingestion.batch' && s.links.some((l) => l.spanId === PRODUCER_SPAN));
    if (!batch) return undefined;
    const transform = spans.find((s) => s.name === 'transformation.batch' && s.parentSpanId === batch.spanId);
    if (!transform) return undefined;
    const flush = spans.find((s) => s.name === 'transformation.flush' && s.links.some((l) => l.spanId === transform.spanId));
    if (!flush) return undefined;
    const reportClient = spans.find((s) => s.name.endsWith('CommitService/ReportDataFiles') && s.parentSpanId === flush.spanId);
    const reportServer = reportClient && spans.find((s) => s.service === 'sluice-commit' && s.parentSpanId === reportClient.spanId);
    if (!reportServer) return undefined;
    const round = spans.find((s) => s.name === 'commit.round' && s.links.some((l) => l.spanId === reportServer.spanId));
    if (!round) return undefined;
    const commitClient = spans.find(
      (s) => s.name.endsWith('CatalogService/CommitTable') && s.traceId === round.traceId && s.service === 'sluice-commit',
    );
    const commitServer = commitClient && spans.find((s) => s.service === 'sluice-catalog' && s.parentSpanId === commitClient.spanId);
    const transaction =
      commitServer && spans.find((s) => s.name === 'catalog.commit_transaction' && s.parentSpanId === commitServer.spanId);
    if (!transaction) return undefined;
    return { batch, transform, flush, reportServer, round, commitClient: commitClient!, transaction };
  });

  assert.equal(chain.batch.service, 'sluice-ingestion');
  assert.equal(chain.batch.parentSpanId, '', 'a batch starts a trace of its own');
  assert.equal(chain.flush.parentSpanId, '', 'so does a flush, linked to its batches');
  assert.equal(chain.round.parentSpanId, '', 'and a commit round, linked to its reports');
  assert.equal(chain.transform.service, 'sluice-transformation');
  assert.equal(chain.transform.traceId, chain.batch.traceId, 'the batch is one trace from the fetch through transformation');
  assert.notEqual(
    chain.batch.traceId,
    PRODUCER_TRACE,
    "the producer's trace is linked, not continued: a batch holds many producers' records",
  );
  assert.equal(chain.round.service, 'sluice-commit');
  assert.equal(chain.transaction.traceId, chain.round.traceId, 'the catalog transaction is in the round trace');
  assert.equal(byId(chain.commitClient.parentSpanId)?.spanId, chain.round.spanId, 'CommitTable is called from within the round');
});
