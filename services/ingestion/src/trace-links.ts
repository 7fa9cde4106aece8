/**
 * Links from a batch's span to the spans that produced its records: a producer that puts W3C
 * `traceparent` headers on its messages can follow a record from its own trace into Sluice's.
 * Links, not parents: one batch carries records of many traces.
 */
import { propagation, ROOT_CONTEXT, trace, type Link, type Span, type TextMapGetter } from '@opentelemetry/api';
import { tracer } from '#shared/tracing.js';

type Headers = Record<string, Buffer | string | (Buffer | string)[] | undefined>;

const headerGetter: TextMapGetter<Headers> = {
  get(carrier, key) {
    const raw = carrier[key];
    const value = Array.isArray(raw) ? raw[0] : raw;
    return value === undefined ? undefined : value.toString();
  },
  keys: (carrier) => Object.keys(carrier),
};

/** At most `max` distinct producer span contexts found in the records' headers. */
export function producerLinks(messages: readonly { headers?: Headers }[], max = 16): Link[] {
  const links: Link[] = [];
  const seen = new Set<string>();
  for (const message of messages) {
    if (links.length >= max) break;
    const headers = message.headers;
    if (!headers || headers.traceparent === undefined) continue;
    const context = trace.getSpanContext(propagation.extract(ROOT_CONTEXT, headers, headerGetter));
    if (!context || seen.has(context.spanId)) continue;
    seen.add(context.spanId);
    links.push({ context });
  }
  return links;
}

/** One span per batch sent (never per record), linked to the producers' spans found in headers. */
export function startBatchSpan(
  job: string,
  topic: string,
  partition: number,
  cover: { readonly start: number; readonly end: number },
  sent: readonly { headers?: Headers }[],
): Span {
  return tracer().startSpan(
    'ingestion.batch',
    {
      attributes: {
        'sluice.job': job,
        'messaging.destination.name': topic,
        'messaging.kafka.destination.partition': partition,
        'sluice.offsets.start': cover.start,
        'sluice.offsets.end': cover.end,
        'messaging.batch.message_count': sent.length,
      },
      links: producerLinks(sent),
    },
    // Each batch is a trace of its own, whatever context the job was started in.
    ROOT_CONTEXT,
  );
}
