/**
 * Metrics through OpenTelemetry's metrics API, one meter provider per process, scraped by
 * Prometheus at `http://<host>:SLUICE_METRICS_PORT/metrics` when that port is set, and pushed
 * over OTLP/HTTP with the traces when OTEL_EXPORTER_OTLP_ENDPOINT is. Instruments
 * are made where their numbers live (the RPC server, the commit pipeline, the ingestion jobs);
 * job-level numbers that already exist as counters are observed when scraped, so the hot paths
 * pay nothing for them.
 *
 * The Prometheus text is written here rather than by @opentelemetry/exporter-prometheus: that
 * package pins an older sdk-metrics than the one the rest of the SDK here uses, and the text
 * format for counters, gauges and histograms is a few dozen lines.
 */
import { createServer, type Server } from 'node:http';
import { metrics, type Meter } from '@opentelemetry/api';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  AggregationTemporality,
  DataPointType,
  MeterProvider,
  MetricReader,
  PeriodicExportingMetricReader,
  type Histogram,
  type MetricData,
} from '@opentelemetry/sdk-metrics';

/** Collects on demand: each scrape reads every instrument once. */
class ScrapeReader extends MetricReader {
  constructor() {
    super({ aggregationTemporalitySelector: () => AggregationTemporality.CUMULATIVE });
  }
  protected async onShutdown(): Promise<void> {}
  protected async onForceFlush(): Promise<void> {}
}

let reader: ScrapeReader | undefined;
let provider: MeterProvider | undefined;
let server: Server | undefined;

/** The meter every instrument of Sluice is made with (a no-op until initMetrics). */
export function meter(): Meter {
  return metrics.getMeter('sluice');
}

/**
 * Registers this process's meter provider and, with a port, serves the Prometheus text on it.
 * Idempotent: services started in one process (tests) share the provider and the endpoint.
 * Returns the port served, 0 when none.
 */
export async function initMetrics(options: {
  serviceName: string;
  port?: number;
  host?: string;
  /** OTEL_EXPORTER_OTLP_ENDPOINT: metrics are also pushed there (`/v1/metrics`), every exportIntervalMs. */
  otlpEndpoint?: string;
  exportIntervalMs?: number;
}): Promise<number> {
  if (!reader) {
    reader = new ScrapeReader();
    const readers: MetricReader[] = [reader];
    if (options.otlpEndpoint) {
      const { OTLPMetricExporter } = await import('@opentelemetry/exporter-metrics-otlp-http');
      const url = `${options.otlpEndpoint.replace(/\/$/, '')}/v1/metrics`;
      readers.push(
        new PeriodicExportingMetricReader({
          exporter: new OTLPMetricExporter({ url }),
          exportIntervalMillis: options.exportIntervalMs ?? 15_000,
        }),
      );
    }
    provider = new MeterProvider({ resource: resourceFromAttributes({ 'service.name': options.serviceName }), readers });
    metrics.setGlobalMeterProvider(provider);
  }
  if (!server && options.port !== undefined && options.port > 0) {
    const collecting = reader;
    const http = createServer((req, res) => {
      if (req.method !== 'GET' || req.url?.split('?')[0] !== '/metrics') {
        res.writeHead(404).end('not found: metrics are at /metrics\n');
        return;
      }
      collecting.collect().then(
        ({ resourceMetrics }) => {
          const text = resourceMetrics.scopeMetrics.flatMap((s) => s.metrics.map(prometheusText)).join('');
          res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' }).end(text);
        },
        (err: Error) => res.writeHead(500).end(`collecting metrics failed: ${err.message}\n`),
      );
    });
    await new Promise<void>((resolve, reject) => {
      http.once('error', reject);
      http.listen(options.port, options.host ?? '0.0.0.0', () => resolve());
    });
    http.unref();
    server = http;
  }
  const address = server?.address();
  return typeof address === 'object' && address ? address.port : 0;
}

/** Stops the endpoint and pushes what the OTLP exporter has not sent yet. */
export async function shutdownMetrics(): Promise<void> {
  const closing = server;
  server = undefined;
  if (closing) await new Promise<void>((resolve) => closing.close(() => resolve()));
  await provider?.forceFlush().catch(() => {});
}

/** One metric in the Prometheus text exposition format (version 0.0.4). */
export function prometheusText(metric: MetricData): string {
  const name = metricName(metric.descriptor.name);
  const help = `# HELP ${name} ${metric.descriptor.description.replace(/\n/g, ' ')}\n`;
  switch (metric.dataPointType) {
    case DataPointType.SUM: {
      const counter = metric.isMonotonic;
      const full = counter ? `${name}_total` : name;
      return `${help}# TYPE ${full} ${counter ? 'counter' : 'gauge'}\n${metric.dataPoints
        .map((p) => `${full}${labels(p.attributes)} ${p.value as number}\n`)
        .join('')}`;
    }
    case DataPointType.GAUGE:
      return `${help}# TYPE ${name} gauge\n${metric.dataPoints.map((p) => `${name}${labels(p.attributes)} ${p.value as number}\n`).join('')}`;
    case DataPointType.HISTOGRAM: {
      let out = `${help}# TYPE ${name} histogram\n`;
      for (const p of metric.dataPoints) {
        const h = p.value as Histogram;
        let cumulative = 0;
        h.buckets.boundaries.forEach((bound, i) => {
          cumulative += h.buckets.counts[i];
          out += `${name}_bucket${labels(p.attributes, { le: String(bound) })} ${cumulative}\n`;
        });
        out += `${name}_bucket${labels(p.attributes, { le: '+Inf' })} ${h.count}\n`;
        out += `${name}_sum${labels(p.attributes)} ${h.sum ?? 0}\n${name}_count${labels(p.attributes)} ${h.count}\n`;
      }
      return out;
    }
    default:
      return '';
  }
}

const metricName = (name: string) => name.replace(/[^a-zA-Z0-9_:]/g, '_');

function labels(attributes: Record<string, unknown>, extra: Record<string, string> = {}): string {
  const pairs = Object.entries({ ...attributes, ...extra }).map(
    ([k, v]) => `${metricName(k)}="${String(v).replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"')}"`,
  );
  return pairs.length === 0 ? '' : `{${pairs.join(',')}}`;
}
