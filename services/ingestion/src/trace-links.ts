/**
 * Links from a batch's span to the spans that produced its records: a producer that puts W3C
 * `traceparent` headers on its messages can follow a record from its own trace into Sluice's.
 * Links, not parents: one batch carries records of many traces.
 */
import { propagation, ROOT_CONTEXT, trace, type Link, type Span, type TextMapGetter } from '@opentelemetry/api';
import { tracer } from '#shared/tracing.js';
import type { FetchedRecords, RecordHeader } from './kafka/fetched-records.js';

type Headers = readonly RecordHeader[];

/** A record's headers as the propagator reads them: the first header of a key wins. */
const headerGetter: TextMapGetter<Headers> = {
  get: (carrier, key) => carrier.find((h) => h.key === key)?.value?.toString(),
  keys: (carrier) => carrier.map((h) => h.key),
};

/** The part of fetched records (kafka/fetched-records.ts) this module reads: who has headers. */
type WithHeaders = Pick<FetchedRecords, 'headersOf'>;

/**
 * At most `max` distinct producer span contexts found in the headers of the records `sent`
 * (indexes into `records`, ascending). Only records with headers are looked at: nearly none.
 */
export function producerLinks(records: WithHeaders, sent: ArrayLike<number>, max = 16): Link[] {
  const links: Link[] = [];
  const seen = new Set<string>();
  for (const [, headers] of records.headersOf(sent) ?? []) {
    if (links.length >= max) break;
    if (!headers.some((header) => header.key === 'traceparent')) continue;
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
  records: WithHeaders,
  sent: ArrayLike<number>,
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
      links: producerLinks(records, sent),
    },
    // Each batch is a trace of its own, whatever context the job was started in.
    ROOT_CONTEXT,
  );
}
