import {
  context,
  propagation,
  ROOT_CONTEXT,
  trace,
  SpanKind,
  SpanStatusCode,
  type Context,
  type Link,
  type Span,
  type TextMapGetter,
  type TextMapSetter,
} from '@opentelemetry/api';
import type { SpanProcessor } from '@opentelemetry/sdk-trace-base';
import type { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';

/**
 * OpenTelemetry for one process: a Node tracer provider with W3C trace context, spans exported over
 * OTLP/HTTP when OTEL_EXPORTER_OTLP_ENDPOINT is set and kept in-process otherwise (tests pass
 * their own processor). Spans cross process boundaries through gRPC metadata and NATS/Kafka
 * headers, always as `traceparent`/`tracestate`.
 */

let provider: NodeTracerProvider | undefined;

export interface TracingOptions {
  serviceName: string;
  otlpEndpoint?: string;
  /** Extra processors, e.g. a SimpleSpanProcessor over an InMemorySpanExporter in tests. */
  spanProcessors?: SpanProcessor[];
}

/**
 * Starts tracing: the tracer provider, registered globally with the AsyncLocalStorage context
 * manager and the W3C trace-context and baggage propagators. The tracing SDK is loaded here, not
 * at the top, because only service processes trace: the CLI and most tests import this module
 * for the API alone. The provider alone, rather than the all-in-one Node SDK, because the SDK
 * costs most of a second of start-up for features (auto-instrumentation, metrics, logs,
 * resource detection) Sluice does not use.
 */
export async function initTracing(options: TracingOptions): Promise<void> {
  if (provider) return;
  const [{ NodeTracerProvider }, { BatchSpanProcessor }, { resourceFromAttributes }] = await Promise.all([
    import('@opentelemetry/sdk-trace-node'),
    import('@opentelemetry/sdk-trace-base'),
    import('@opentelemetry/resources'),
  ]);
  const processors = [...(options.spanProcessors ?? [])];
  if (options.otlpEndpoint) {
    const { OTLPTraceExporter } = await import('@opentelemetry/exporter-trace-otlp-http');
    const url = `${options.otlpEndpoint.replace(/\/$/, '')}/v1/traces`;
    processors.push(new BatchSpanProcessor(new OTLPTraceExporter({ url })));
  }
  provider = new NodeTracerProvider({
    resource: resourceFromAttributes({ 'service.name': options.serviceName }),
    spanProcessors: processors,
  });
  provider.register();
}

export async function shutdownTracing(): Promise<void> {
  const current = provider;
  provider = undefined;
  if (!current) return;
  await current.shutdown();
  // Forget the globals too, so a later initTracing in this process (tests) registers anew.
  trace.disable();
  context.disable();
  propagation.disable();
}

export const tracer = () => trace.getTracer('sluice');

/** Carrier access for anything keyed by lower-case strings (gRPC metadata, NATS or Kafka headers). */
export interface HeaderCarrier {
  get(key: string): string | undefined;
  set(key: string, value: string): void;
  keys(): string[];
}

const carrierGetter: TextMapGetter<HeaderCarrier> = {
  get: (carrier, key) => carrier.get(key),
  keys: (carrier) => carrier.keys(),
};
const carrierSetter: TextMapSetter<HeaderCarrier> = { set: (carrier, key, value) => carrier.set(key, value) };

export function injectContext(carrier: HeaderCarrier, ctx: Context = context.active()): void {
  propagation.inject(ctx, carrier, carrierSetter);
}

export function extractContext(carrier: HeaderCarrier, ctx: Context = context.active()): Context {
  return propagation.extract(ctx, carrier, carrierGetter);
}

/**
 * A span's W3C `traceparent`, for a carrier that is neither metadata nor headers (a field of a
 * message that carries many units of work, such as a Transform batch); '' for a span that is
 * not recorded (tracing off).
 */
export function traceparentOf(span: Span): string {
  const sc = span.spanContext();
  if (!trace.isSpanContextValid(sc)) return '';
  return `00-${sc.traceId}-${sc.spanId}-${(sc.traceFlags & 0xff).toString(16).padStart(2, '0')}`;
}

/** The context a `traceparent` names (the active one when it is empty or malformed). */
export function contextOf(traceparent: string): Context {
  if (traceparent === '') return context.active();
  return propagation.extract(
    ROOT_CONTEXT,
    { traceparent },
    {
      get: (carrier, key) => carrier[key as 'traceparent'],
      keys: (carrier) => Object.keys(carrier),
    },
  );
}

/** Runs fn inside a new span, ending it and recording a thrown error. */
export async function withSpan<T>(
  name: string,
  attributes: Record<string, string | number | boolean>,
  fn: (span: Span) => Promise<T>,
  options: { kind?: SpanKind; parent?: Context; links?: Link[] } = {},
): Promise<T> {
  const parent = options.parent ?? context.active();
  const span = tracer().startSpan(name, { kind: options.kind ?? SpanKind.INTERNAL, attributes, links: options.links }, parent);
  try {
    return await context.with(trace.setSpan(parent, span), () => fn(span));
  } catch (err) {
    span.recordException(err as Error);
    span.setStatus({ code: SpanStatusCode.ERROR, message: (err as Error).message });
    throw err;
  } finally {
    span.end();
  }
}
