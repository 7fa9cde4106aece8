import * as grpc from '@grpc/grpc-js';
import { context, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { setTimeout as sleep } from 'node:timers/promises';
import { type Config, ConfigError } from '../config.js';
import { injectContext, tracer } from '../tracing.js';
import { FRAMED_IN_PLACE_CHANNEL_OPTIONS } from './framing.js';
import { metadataCarrier } from './metadata.js';
import type { BidiMethodNames, CallOptions, RequestOf, ResponseOf, ServiceDefinition, UnaryMethods } from './types.js';

export interface ClientOptions {
  /** Default deadline of each call. */
  deadlineMs?: number;
  /** How many times a call that failed with UNAVAILABLE is tried again (with backoff, within its deadline). */
  retries?: number;
  /** TLS and the bearer token; plaintext without a token when omitted. */
  security?: ClientSecurity;
}

/** How a client reaches the services and who it says it is. */
export interface ClientSecurity {
  readonly credentials: grpc.ChannelCredentials;
  /** Sent as `authorization: Bearer <token>` on every call. */
  readonly token?: string;
}

export const CLIENT_SECURITY_KEYS = ['tlsMode', 'tlsCert', 'tlsKey', 'tlsCa', 'token'] as const;

/**
 * A client's TLS and token from its settings: with TLS on, the services' certificates are
 * verified against SLUICE_TLS_CA (the system's CAs when unset), and SLUICE_TLS_CERT with its
 * key is the client certificate a server under mutual TLS asks for (required in that mode).
 */
export function clientSecurity(config: Config<(typeof CLIENT_SECURITY_KEYS)[number]>): ClientSecurity {
  const token = config.token;
  if (config.tlsMode === 'off') return { credentials: grpc.credentials.createInsecure(), token };
  const { tlsCert: cert, tlsKey: key } = config;
  if (config.tlsMode === 'mutual' && !cert)
    throw new ConfigError(
      'SLUICE_TLS_CERT',
      'invalid configuration: SLUICE_TLS=mutual needs SLUICE_TLS_CERT, the client certificate to present',
    );
  if (!cert !== !key) {
    const [given, missing] = cert ? ['SLUICE_TLS_CERT', 'SLUICE_TLS_KEY'] : ['SLUICE_TLS_KEY', 'SLUICE_TLS_CERT'];
    throw new ConfigError(missing, `invalid configuration: ${given} is set but ${missing} is not (a certificate goes with its key)`);
  }
  quietIpServerNameWarning();
  // The certificate is sent only when a server asks for one, i.e. under mutual TLS.
  const credentials = grpc.credentials.createSsl(config.tlsCa?.value ?? null, key?.value ?? null, cert?.value ?? null);
  return { credentials, token };
}

let quieted = false;

/**
 * grpc-js sends an IP target (127.0.0.1:50051) as the TLS ServerName, which Node flags once
 * per process (DEP0123) on stderr, in the middle of the CLI's output. The certificate is still
 * verified against the IP (its IP subjectAltName), so the warning tells a user nothing: it alone
 * is dropped, every other warning is emitted as before.
 */
function quietIpServerNameWarning(): void {
  if (quieted) return;
  quieted = true;
  const emitWarning = process.emitWarning;
  process.emitWarning = function (this: NodeJS.Process, warning: string | Error, ...rest: unknown[]) {
    const [typeOrOptions, code] = rest;
    const warningCode = typeof typeOrOptions === 'object' && typeOrOptions !== null ? (typeOrOptions as { code?: string }).code : code;
    if (warningCode === 'DEP0123') return;
    return (emitWarning as (...args: unknown[]) => void).call(this, warning, ...rest);
  } as typeof process.emitWarning;
}

/** Adds the bearer token to the metadata of every call of a channel. */
function bearerInterceptor(token: string): grpc.Interceptor {
  const value = `Bearer ${token}`;
  return (options, nextCall) =>
    new grpc.InterceptingCall(nextCall(options), {
      start(metadata, listener, next) {
        metadata.set('authorization', value);
        next(metadata, listener);
      },
    });
}

export type ServiceClient<D extends ServiceDefinition> = UnaryMethods<D> & {
  readonly address: string;
  /**
   * Opens a bidi stream carrying the current trace context. A request may be written as a
   * message or as its encoded bytes (a Buffer), which a hot path builds itself (ingestion's
   * batches, batch-encoder.ts).
   */
  openStream<K extends BidiMethodNames<D>>(
    method: K,
    options?: { metadata?: grpc.Metadata },
  ): grpc.ClientDuplexStream<RequestOf<D[K]> | Buffer, ResponseOf<D[K]>>;
  /** Resolves when the channel is connected, or rejects after timeoutMs. */
  waitForReady(timeoutMs: number): Promise<void>;
  close(): void;
};

/**
 * The gRPC target of a peer address (config.ts addressSetting): one host:port as it is, or a
 * list of replicas' IP:port as one channel that spreads calls round-robin over the replicas
 * it can reach and skips those it cannot, as a Kubernetes Service would. A stream stays on
 * the replica it opened on; a call after a replica died goes to another.
 */
export function peerTarget(address: string): { target: string; options: grpc.ChannelOptions } {
  const entries = address.split(',');
  if (entries.length === 1) return { target: address, options: {} };
  const family = entries[0].startsWith('[') ? 'ipv6' : 'ipv4';
  return {
    target: `${family}:${entries.join(',')}`,
    options: { 'grpc.service_config': JSON.stringify({ loadBalancingConfig: [{ round_robin: {} }] }) },
  };
}

/**
 * A client of one service with promise-returning unary methods, default deadlines, retry on
 * UNAVAILABLE (connection refused, server restarting), a client span per call whose context
 * travels in the metadata as `traceparent`, and the TLS and token of options.security.
 */
export function createClient<D extends ServiceDefinition>(definition: D, address: string, options: ClientOptions = {}): ServiceClient<D> {
  const deadlineMs = options.deadlineMs ?? 10_000;
  const retries = options.retries ?? 5;
  const security = options.security;
  const interceptors = security?.token ? [tracingInterceptor, bearerInterceptor(security.token)] : [tracingInterceptor];
  const target = peerTarget(address);
  const raw = new grpc.Client(target.target, security?.credentials ?? grpc.credentials.createInsecure(), {
    interceptors,
    'grpc.max_receive_message_length': 64 * 1024 * 1024,
    // No retry buffer: a stream's write callback then means the message left for the socket,
    // which buffers framed in place (framing.ts) wait for. A refused call still fails with
    // UNAVAILABLE, which unary calls retry below.
    ...FRAMED_IN_PLACE_CHANNEL_OPTIONS,
    ...target.options,
  });

  const client: Record<string, unknown> = {
    address,
    openStream(method: string, streamOptions: { metadata?: grpc.Metadata } = {}) {
      const def = definition[method];
      return raw.makeBidiStreamRequest(
        def.path,
        (request: unknown) => (Buffer.isBuffer(request) ? request : def.requestSerialize(request)),
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
