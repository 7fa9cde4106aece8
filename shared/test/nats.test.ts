import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { context, trace } from '@opentelemetry/api';
import { InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { FlushEvent } from '#shared/gen/sluice/v1/events.js';
import { connectNats, publish, subscribe, type NatsConnection } from '#shared/nats.js';
import { initTracing, shutdownTracing, tracer } from '#shared/tracing.js';
import { NATS_URL } from '#test-support/nats.js';

describe('NATS on the real server', () => {
  let publisher: NatsConnection;
  let subscriber: NatsConnection;
  before(async () => {
    await initTracing({ serviceName: 'nats-test', spanProcessors: [new SimpleSpanProcessor(new InMemorySpanExporter())] });
    publisher = await connectNats(NATS_URL, 'test-publisher');
    subscriber = await connectNats(NATS_URL, 'test-subscriber');
  });
  after(async () => {
    await publisher.close();
    await subscriber.close();
    await shutdownTracing();
  });

  it('round-trips a protobuf event between two connections, with the trace context', async () => {
    const subject = `sluice.test.${randomUUID()}`;
    const received = new Promise<{ event: FlushEvent; traceId?: string }>((resolve) => {
      subscribe(
        subscriber,
        subject,
        (payload) => resolve({ event: FlushEvent.decode(payload), traceId: trace.getSpanContext(context.active())?.traceId }),
        (err) => assert.fail(err as Error),
      );
    });
    await subscriber.flush();
    const event: FlushEvent = { table: { database: 'shop', table: 'orders' }, flushId: 'f-1', deadlineMs: 1234, job: 'j' };
    const span = tracer().startSpan('publisher');
    context.with(trace.setSpan(context.active(), span), () => publish(publisher, subject, FlushEvent.encode(event).finish()));
    span.end();
    const got = await received;
    assert.deepEqual(got.event, event);
    assert.equal(got.traceId, span.spanContext().traceId);
  });

  it('keeps delivering after a handler throws', async () => {
    const subject = `sluice.test.${randomUUID()}`;
    const errors: unknown[] = [];
    const seen: string[] = [];
    const done = new Promise<void>((resolve) => {
      subscribe(
        subscriber,
        subject,
        (payload) => {
          const text = new TextDecoder().decode(payload);
          if (text === 'bad') throw new Error('cannot handle');
          seen.push(text);
          if (seen.length === 2) resolve();
        },
        (err) => errors.push(err),
      );
    });
    await subscriber.flush();
    for (const text of ['one', 'bad', 'two']) publish(publisher, subject, new TextEncoder().encode(text));
    await done;
    assert.deepEqual(seen, ['one', 'two']);
    assert.equal(errors.length, 1);
  });
});
