import * as grpc from '@grpc/grpc-js';
import { context, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { setTimeout as sleep } from 'node:timers/promises';
import { injectContext, tracer } from '../tracing.js';
import { metadataCarrier } from './metadata.js';
import type { BidiMethodNames, CallOptions, RequestOf, ResponseOf, ServiceDefinition, UnaryMethods } from './types.js';

export interface ClientOptions {
  /** Default deadline of each call. */
  deadlineMs?: number;
  /** How many times a call that failed with UNAVAILABLE is tried again (with backoff, within its deadline). */
  retries?: number;
}

export type ServiceClient<D extends ServiceDefinition> = UnaryMethods<D> & {
  readonly address: string;
  /** Opens a bidi stream carrying the current trace context. */
  openStream<K extends BidiMethodNames<D>>(
    method: K,
    options?: { metadata?: grpc.Metadata },
  ): grpc.ClientDuplexStream<RequestOf<D[K]>, ResponseOf<D[K]>>;
  /** Resolves when the channel is connected, or rejects after timeoutMs. */
  waitForReady(timeoutMs: number): Promise<void>;
  close(): void;
};

/**
 * A client of one service with promise-returning unary methods, default deadlines, retry on
 * UNAVAILABLE (connection refused, server restarting) and a client span per call whose
 * context travels in the metadata as `traceparent`.
 */
export function createClient<D extends ServiceDefinition>(definition: D, address: string, options: ClientOptions = {}): ServiceClient<D> {
  const deadlineMs = options.deadlineMs ?? 10_000;
  const retries = options.retries ?? 5;
  const raw = new grpc.Client(address, grpc.credentials.createInsecure(), {
    interceptors: [tracingInterceptor],
    'grpc.max_receive_message_length': 64 * 1024 * 1024,
  });

  const client: Record<string, unknown> = {
    address,
    openStream(method: string, streamOptions: { metadata?: grpc.Metadata } = {}) {
      const def = definition[method];
      return raw.makeBidiStreamRequest(
        def.path,
        def.requestSerialize,
        def.responseDeserialize,
        streamOptions.metadata ?? new grpc.Metadata(),
        {},
      );
    },
    waitForReady(timeoutMs: number) {
      return new Promise<void>((resolve, reject) => raw.waitForReady(Date.now() + timeoutMs, (err) => (err ? reject(err) : resolve())));
    },
    close() {
      raw.close();
    },
  };

  for (const [method, def] of Object.entries(definition)) {
    if (def.requestStream || def.responseStream) continue;
    client[method] = async (request: unknown, callOptions: CallOptions = {}) => {
      const deadline = Date.now() + (callOptions.deadlineMs ?? deadlineMs);
      const attempts = 1 + (callOptions.retries ?? retries);
      for (let attempt = 1; ; attempt++) {
        try {
          return await new Promise((resolve, reject) => {
            raw.makeUnaryRequest(
              def.path,
              def.requestSerialize,
              def.responseDeserialize,
              request,
              callOptions.metadata?.clone() ?? new grpc.Metadata(),
              { deadline },
              (err, response) => (err ? reject(err) : resolve(response)),
            );
          });
        } catch (err) {
          const backoff = Math.min(2000, 50 * 2 ** attempt);
          const retriable = (err as grpc.ServiceError).code === grpc.status.UNAVAILABLE;
          if (!retriable || attempt >= attempts || Date.now() + backoff >= deadline) throw err;
          await sleep(backoff);
        }
      }
    };
  }
  return client as ServiceClient<D>;
}

/** Client span per call, its context injected into the outgoing metadata. */
const tracingInterceptor: grpc.Interceptor = (options, nextCall) => {
  const path = options.method_definition.path;
  const [, service = '', method = ''] = path.split('/');
  const span = tracer().startSpan(`${service}/${method}`, {
    kind: SpanKind.CLIENT,
    attributes: { 'rpc.system': 'grpc', 'rpc.service': service, 'rpc.method': method },
  });
  const callContext = trace.setSpan(context.active(), span);
  return new grpc.InterceptingCall(nextCall(options), {
    start(metadata, _listener, next) {
      injectContext(metadataCarrier(metadata), callContext);
      next(metadata, {
        onReceiveStatus(status, nextStatus) {
          span.setAttribute('rpc.grpc.status_code', status.code);
          if (status.code !== grpc.status.OK) span.setStatus({ code: SpanStatusCode.ERROR, message: status.details });
          span.end();
          nextStatus(status);
        },
      });
    },
  });
};
