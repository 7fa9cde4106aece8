import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { context, INVALID_SPAN_CONTEXT, trace } from '@opentelemetry/api';
import { createLogger } from '#shared/logger.js';
import { initTracing, shutdownTracing } from '#shared/tracing.js';

/** Log lines written by `write`, parsed. */
function capture(write: (logger: ReturnType<typeof createLogger>) => void): Record<string, unknown>[] {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk, _encoding, done) {
      lines.push(String(chunk));
      done();
    },
  });
  write(createLogger('test', 'info', sink));
  return lines.flatMap((l) => l.split('\n').filter(Boolean)).map((l) => JSON.parse(l));
}

describe('log lines and traces', () => {
  // As in a service: spans become active through the registered context manager.
  before(() => initTracing({ serviceName: 'logger-test' }));
  after(() => shutdownTracing());

  it('carry no trace or span id when the active span has none (no tracer provider): never all zeros', () => {
    const [line] = capture((logger) =>
      context.with(trace.setSpan(context.active(), trace.wrapSpanContext(INVALID_SPAN_CONTEXT)), () => logger.info('hello')),
    );
    assert.equal(line.msg, 'hello');
    assert.equal(line.trace_id, undefined);
    assert.equal(line.span_id, undefined);
  });

  it("carry the active span's ids when it has them", () => {
    const spanContext = { traceId: '0af7651916cd43dd8448eb211c80319c', spanId: 'b7ad6b7169203331', traceFlags: 1 };
    const [line] = capture((logger) =>
      context.with(trace.setSpan(context.active(), trace.wrapSpanContext(spanContext)), () => logger.info('hello')),
    );
    assert.equal(line.trace_id, spanContext.traceId);
    assert.equal(line.span_id, spanContext.spanId);
  });
});
