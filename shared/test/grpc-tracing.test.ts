import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { status } from '@grpc/grpc-js';
import { SpanKind } from '@opentelemetry/api';
import { InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { notFound } from '#shared/errors.js';
import { CatalogServiceService } from '#shared/gen/sluice/v1/catalog.js';
import { CommitServiceService } from '#shared/gen/sluice/v1/commit.js';
import { createClient } from '#shared/grpc/client.js';
import { bindService, startGrpcServer, type RunningGrpcServer } from '#shared/grpc/server.js';
import { createLogger } from '#shared/logger.js';
import { initTracing, shutdownTracing, withSpan } from '#shared/tracing.js';

const exporter = new InMemorySpanExporter();
const logger = createLogger('test', 'silent');

describe('gRPC plumbing: trace propagation, errors, retries', () => {
  let catalog: RunningGrpcServer;
  let commit: RunningGrpcServer;
  before(async () => {
    await initTracing({ serviceName: 'grpc-test', spanProcessors: [new SimpleSpanProcessor(exporter)] });
    // "catalog": answers GetDatabase, refusing unknown names with NOT_FOUND.
    catalog = await startGrpcServer({
      host: '127.0.0.1',
      port: 0,
      protoFiles: ['sluice/v1/catalog.proto'],
      logger,
      services: [
        bindService('sluice.v1.CatalogService', CatalogServiceService, {
          async getDatabase(request) {
            if (request.name !== 'shop') throw notFound(`database "${request.name}" does not exist`);
            return { database: { name: 'shop', location: 'file:///w/shop', properties: {}, createdAtMs: 1 } };
          },
          async listDatabases() {
            throw new Error('boom: a bug with a secret stack');
          },
        }),
      ],
    });
    const catalogClient = createClient(CatalogServiceService, `127.0.0.1:${catalog.port}`);
    // "commit": its handler calls the catalog, as services call each other.
    commit = await startGrpcServer({
      host: '127.0.0.1',
      port: 0,
      protoFiles: ['sluice/v1/commit.proto'],
      logger,
      services: [
        bindService('sluice.v1.CommitService', CommitServiceService, {
          async getCommitStatus() {
            const { database } = await catalogClient.getDatabase({ name: 'shop' });
            return {
              commits: database?.name === 'shop' ? 1 : 0,
              lastCommitAtMs: 0,
              leaseEpoch: 0,
              pendingWorkers: [],
              inFlightFlushId: '',
            };
          },
        }),
      ],
    });
  });
  after(async () => {
    await commit.stop(1000);
    await catalog.stop(1000);
    await shutdownTracing();
  });

  it('a span in one service is the parent of the server span in the next, across two hops', async () => {
    exporter.reset();
    const client = createClient(CommitServiceService, `127.0.0.1:${commit.port}`);
    const response = await withSpan('test-root', {}, () => client.getCommitStatus({ table: { database: 'shop', table: 'orders' } }));
    client.close();
    assert.equal(response.commits, 1);

    const spans = exporter.getFinishedSpans();
    const byName = (name: string, kind: SpanKind) => {
      const found = spans.filter((s) => s.name === name && s.kind === kind);
      assert.equal(found.length, 1, `one ${SpanKind[kind]} span ${name}; got ${spans.map((s) => s.name).join(', ')}`);
      return found[0];
    };
    const root = byName('test-root', SpanKind.INTERNAL);
    const commitServer = byName('sluice.v1.CommitService/GetCommitStatus', SpanKind.SERVER);
    const catalogClientSpan = byName('sluice.v1.CatalogService/GetDatabase', SpanKind.CLIENT);
    const catalogServer = byName('sluice.v1.CatalogService/GetDatabase', SpanKind.SERVER);

    const traceId = root.spanContext().traceId;
    for (const span of [commitServer, catalogClientSpan, catalogServer]) assert.equal(span.spanContext().traceId, traceId);
    // commit's server span descends from the caller's root, through the caller's client span.
    const commitClientSpan = byName('sluice.v1.CommitService/GetCommitStatus', SpanKind.CLIENT);
    assert.equal(commitClientSpan.parentSpanContext?.spanId, root.spanContext().spanId);
    assert.equal(commitServer.parentSpanContext?.spanId, commitClientSpan.spanContext().spanId);
    // The span started inside the commit service is the parent of the catalog's server span.
    assert.equal(catalogClientSpan.parentSpanContext?.spanId, commitServer.spanContext().spanId);
    assert.equal(catalogServer.parentSpanContext?.spanId, catalogClientSpan.spanContext().spanId);
  });

  it('typed errors keep their status code and message', async () => {
    const client = createClient(CatalogServiceService, `127.0.0.1:${catalog.port}`);
    await assert.rejects(client.getDatabase({ name: 'nope' }), (err: any) => {
      return err.code === status.NOT_FOUND && err.details === 'database "nope" does not exist';
    });
    client.close();
  });

  it('unexpected errors become INTERNAL without leaking the message or a stack', async () => {
    const client = createClient(CatalogServiceService, `127.0.0.1:${catalog.port}`);
    await assert.rejects(client.listDatabases({}), (err: any) => {
      return (
        err.code === status.INTERNAL &&
        !err.details.includes('secret') &&
        /internal error in sluice.v1.CatalogService\/ListDatabases/.test(err.details)
      );
    });
    client.close();
  });

  it('methods without a handler answer UNIMPLEMENTED', async () => {
    const client = createClient(CatalogServiceService, `127.0.0.1:${catalog.port}`);
    await assert.rejects(client.getTable({ ref: { database: 'shop', table: 'x' } }), (err: any) => err.code === status.UNIMPLEMENTED);
    client.close();
  });

  it('retries UNAVAILABLE until the server comes up, within the deadline', async () => {
    const { freePort } = await import('#test-support/ports.js');
    const port = await freePort();
    const client = createClient(CatalogServiceService, `127.0.0.1:${port}`, { deadlineMs: 8000, retries: 20 });
    const pending = client.getDatabase({ name: 'shop' });
    await new Promise((r) => setTimeout(r, 300));
    const late = await startGrpcServer({
      host: '127.0.0.1',
      port,
      protoFiles: ['sluice/v1/catalog.proto'],
      logger,
      services: [
        bindService('sluice.v1.CatalogService', CatalogServiceService, {
          async getDatabase() {
            return { database: { name: 'late', location: '', properties: {}, createdAtMs: 0 } };
          },
        }),
      ],
    });
    assert.equal((await pending).database?.name, 'late');
    client.close();
    await late.stop(1000);
  });

  it('gives up on UNAVAILABLE when retries are exhausted', async () => {
    const { freePort } = await import('#test-support/ports.js');
    const client = createClient(CatalogServiceService, `127.0.0.1:${await freePort()}`, { deadlineMs: 3000, retries: 1 });
    await assert.rejects(client.getDatabase({ name: 'shop' }), (err: any) => err.code === status.UNAVAILABLE);
    client.close();
  });
});
