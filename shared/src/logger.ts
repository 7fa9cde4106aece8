import { isSpanContextValid, trace } from '@opentelemetry/api';
import pino, { type Logger } from 'pino';
import type { LogLevel } from './config.js';

export type { Logger };

/**
 * JSON logs on stdout, one line per event, stamped with the service name and, when a span is
 * active, its trace and span ids so logs join traces.
 */
export function createLogger(service: string, level: LogLevel = 'info', destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      mixin() {
        const span = trace.getActiveSpan();
        if (!span) return {};
        const ctx = span.spanContext();
        // A span of the no-op tracer (no provider registered, as in the CLI) has all-zero ids,
        // which would join every such log line into one bogus trace.
        if (!isSpanContextValid(ctx)) return {};
        return { trace_id: ctx.traceId, span_id: ctx.spanId };
      },
    },
    destination ?? pino.destination({ sync: false }),
  );
}
