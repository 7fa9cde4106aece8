import * as grpc from '@grpc/grpc-js';
import type { Meter } from '@opentelemetry/api';
import { performance } from 'node:perf_hooks';
import { meter } from '../metrics.js';
import * as protoLoader from '@grpc/proto-loader';
import { ReflectionService } from '@grpc/reflection';
import { context, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { HealthImplementation, protoPath as healthProtoPath } from 'grpc-health-check';
import { createSecureContext } from 'node:tls';
import { fileURLToPath } from 'node:url';
import { type Config, ConfigError } from '../config.js';
import { SluiceError } from '../errors.js';
import type { Logger } from '../logger.js';
import { extractContext, tracer } from '../tracing.js';
import { authorize, METHOD_ROLES, type TokenTable } from './auth.js';
import { guardedDeserializer, UndecodableRequest } from './decode.js';
import { metadataCarrier } from './metadata.js';
import type { AsyncHandlers, MethodDefinition, ServiceDefinition } from './types.js';

export const PROTO_DIR = fileURLToPath(new URL('../../../proto', import.meta.url));

/** A handler with its request and call types erased: a binding holds handlers of every method. */
// biome-ignore lint/suspicious/noExplicitAny: erased on purpose; bindService checks each handler against its method
type ErasedHandler = (...args: any[]) => Promise<unknown>;

/** One gRPC service to serve: its full name, its ts-proto definition and the handlers built so far. */
export interface ServiceBinding {
  readonly name: string;
  readonly definition: ServiceDefinition;
  readonly handlers: Partial<Record<string, ErasedHandler>>;
}

export function bindService<D extends ServiceDefinition>(name: string, definition: D, handlers: Partial<AsyncHandlers<D>>): ServiceBinding {
  return { name, definition, handlers: handlers as ServiceBinding['handlers'] };
}

export interface GrpcServerOptions {
  host: string;
  port: number;
  /** Proto files (relative to proto/) whose services reflection should list. */
  protoFiles: string[];
  services: ServiceBinding[];
  logger: Logger;
  /** TLS and the accepted tokens; plaintext without authentication when omitted. */
  security?: ServerSecurity;
  /** The largest request message taken (SLUICE_MAX_MESSAGE_BYTES); a larger one ends its call RESOURCE_EXHAUSTED. */
  maxMessageBytes?: number;
}

/** SLUICE_MAX_MESSAGE_BYTES's default: see the setting for why. */
export const DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024;

/**
 * The HTTP/2 receive window of each server stream (and twice that for each connection): how
 * many bytes a client may send ahead of what the server has read.
 *
 * Left alone it is HTTP/2's 64 KiB, and grpc-js's server offers no option to raise it (its
 * `grpc-node.flow_control_window` is read by clients only). The Transform stream carries
 * batches of about 1 MiB: with 64 KiB, ingestion sent 64 KiB and then waited for
 * transformation's event loop to read it and grant more, which it does only between its own
 * work, so batches crawled over in pieces while transformation sat idle between them. With
 * this window a batch arrives whole while the previous one is transformed. Measured with
 * `npm run bench -- pipeline`, one run each way, produce → committed rows/s at 64 KiB → 8 MiB:
 * narrow 123,473 → 152,418, wide 54,964 → 61,665, csv 160,479 → 193,317 (ingestion's CPU fell
 * too: fewer stalls). Memory stays bounded by ingestion's in-flight budget, which counts
 * these bytes.
 */
export const RECEIVE_WINDOW_BYTES = 8 * 1024 * 1024;

/**
 * Sets the receive window (RECEIVE_WINDOW_BYTES) of a grpc-js server: the SETTINGS it sends
 * with each new connection (before bindAsync creates its HTTP/2 server), and each connection's
 * own window once it opens (after). grpc-js keeps both places private; a grpc-js without them
 * fails here, at start-up, and shared/test/grpc-window.test.ts says so.
 */
function raiseReceiveWindow(server: grpc.Server, phase: 'before-bind' | 'after-bind', windowBytes: number): void {
  const internals = server as unknown as {
    commonServerOptions?: { settings?: Record<string, unknown> };
    http2Servers?: Map<{ on(event: 'session', listener: (session: { setLocalWindowSize(size: number): void }) => void): void }, unknown>;
  };
  if (phase === 'before-bind') {
    const options = internals.commonServerOptions;
    if (!options) throw new Error('this grpc-js has no server options to set the HTTP/2 window in');
    options.settings = { ...options.settings, initialWindowSize: windowBytes };
    return;
  }
  if (!internals.http2Servers) throw new Error('this grpc-js keeps no HTTP/2 servers to set the connection window on');
  for (const http2Server of internals.http2Servers.keys()) {
    http2Server.on('session', (session) => session.setLocalWindowSize(2 * windowBytes));
  }
}

/** How a server is reached and who may call it. */
export interface ServerSecurity {
  readonly credentials: grpc.ServerCredentials;
  /** Bearer tokens and their roles; every call but health needs one when set. */
  readonly tokens?: TokenTable;
  /** For the start log line: off, on or mutual. */
  readonly tls: Config<'tlsMode'>['tlsMode'];
}

export const SERVER_SECURITY_KEYS = ['tlsMode', 'tlsCert', 'tlsKey', 'tlsCa', 'tokensFile'] as const;

/**
 * A server's TLS and tokens from its settings. TLS needs the certificate and key (which must
 * belong together); mutual TLS also the CA that signs the clients' certificates.
 */
export function serverSecurity(config: Config<(typeof SERVER_SECURITY_KEYS)[number]>): ServerSecurity {
  const tokens = config.tokensFile?.value;
  if (config.tlsMode === 'off') return { credentials: grpc.ServerCredentials.createInsecure(), tokens, tls: 'off' };
  const { tlsCert: cert, tlsKey: key, tlsCa: ca } = config;
  const needs = `SLUICE_TLS=${config.tlsMode} needs`;
  if (!cert) throw new ConfigError('SLUICE_TLS_CERT', `invalid configuration: ${needs} SLUICE_TLS_CERT, the server's certificate`);
  if (!key) throw new ConfigError('SLUICE_TLS_KEY', `invalid configuration: ${needs} SLUICE_TLS_KEY, the key of SLUICE_TLS_CERT`);
  if (config.tlsMode === 'mutual' && !ca)
    throw new ConfigError('SLUICE_TLS_CA', `invalid configuration: ${needs} SLUICE_TLS_CA, the CA that signs client certificates`);
  try {
    createSecureContext({ cert: cert.value, key: key.value, ca: ca?.value });
  } catch (err) {
    // Node's "key values mismatch", "bad decrypt", ...: say which files, not a stack.
    throw new ConfigError(
      'SLUICE_TLS_KEY',
      `invalid configuration: SLUICE_TLS_CERT=${JSON.stringify(cert.path)} and SLUICE_TLS_KEY=${JSON.stringify(key.path)} are not a usable certificate and key (${(err as Error).message})`,
    );
  }
  const credentials = grpc.ServerCredentials.createSsl(
    ca?.value ?? null,
    [{ cert_chain: cert.value, private_key: key.value }],
    config.tlsMode === 'mutual',
  );
  return { credentials, tokens, tls: config.tlsMode };
}

export interface RunningGrpcServer {
  readonly port: number;
  readonly server: grpc.Server;
  readonly health: HealthImplementation;
  /** Marks every service NOT_SERVING, lets in-flight calls finish (up to graceMs), then closes. */
  stop(graceMs: number): Promise<void>;
}

export async function startGrpcServer(options: GrpcServerOptions): Promise<RunningGrpcServer> {
  const tokens = options.security?.tokens;
  const server = new grpc.Server({
    'grpc.max_receive_message_length': options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES,
    interceptors: [...(tokens ? [authInterceptor(tokens, options.logger)] : []), undecodableInterceptor(options.logger)],
  });
  const health = new HealthImplementation({ '': 'NOT_SERVING' });
  health.addToServer(server);

  const packageDefinition = protoLoader.loadSync([...options.protoFiles, healthProtoPath], {
    includeDirs: [PROTO_DIR],
    keepCase: true,
    longs: String,
    enums: String,
    defaults: true,
    oneofs: true,
  });
  new ReflectionService(packageDefinition).addToServer(server);
  raiseReceiveWindow(server, 'before-bind', RECEIVE_WINDOW_BYTES);

  for (const binding of options.services) {
    server.addService(guardedDefinition(binding, packageDefinition), implement(binding, options.logger, rpcDurations()));
  }

  const port = await new Promise<number>((resolve, reject) => {
    const credentials = options.security?.credentials ?? grpc.ServerCredentials.createInsecure();
    server.bindAsync(`${options.host}:${options.port}`, credentials, (err, bound) => {
      if (!err) return resolve(bound);
      const inUse = /EADDRINUSE/.test(err.message);
      reject(new Error(`cannot listen on ${options.host}:${options.port}: ${inUse ? 'the address is already in use' : err.message}`));
    });
  });
  raiseReceiveWindow(server, 'after-bind', RECEIVE_WINDOW_BYTES);
  health.setStatus('', 'SERVING');
  for (const binding of options.services) health.setStatus(binding.name, 'SERVING');

  return {
    port,
    server,
    health,
    async stop(graceMs) {
      health.setStatus('', 'NOT_SERVING');
      for (const binding of options.services) health.setStatus(binding.name, 'NOT_SERVING');
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, graceMs);
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    },
  };
}

/**
 * The one check of credentials: before a call reaches its handler, its bearer token must name
 * a role that ranks at least as high as the method's entry in METHOD_ROLES (health is public).
 */
function authInterceptor(tokens: TokenTable, logger: Logger): grpc.ServerInterceptor {
  return (methodDescriptor, call) =>
    new grpc.ServerInterceptingCall(call, {
      start(next) {
        next({
          onReceiveMetadata(metadata, nextMetadata) {
            const [authorization] = metadata.get('authorization');
            const decision = authorize(methodDescriptor.path, typeof authorization === 'string' ? authorization : undefined, tokens);
            if (decision.allowed) return nextMetadata(metadata);
            logger.warn({ method: methodDescriptor.path, peer: call.getPeer(), code: grpc.status[decision.code] }, decision.details);
            call.sendStatus({ code: decision.code, details: decision.details, metadata: new grpc.Metadata() });
          },
        });
      },
    });
}

/**
 * The binding's definition with deserializers that never throw: a request that cannot be
 * decoded becomes an UndecodableRequest naming its bad field (decode.ts), answered by
 * undecodableInterceptor as INVALID_ARGUMENT.
 */
function guardedDefinition(binding: ServiceBinding, types: protoLoader.PackageDefinition): grpc.ServiceDefinition {
  const service = types[binding.name] as Record<string, { requestType: { type: { name: string } } }> | undefined;
  const guarded: Record<string, unknown> = {};
  for (const [method, definition] of Object.entries(binding.definition)) {
    const requestType =
      service && Object.values(service).find((m) => (m as unknown as { path: string }).path === definition.path)?.requestType;
    const typeName = `${binding.name.split('.').slice(0, -1).join('.')}.${requestType?.type.name ?? ''}`;
    guarded[method] = { ...definition, requestDeserialize: guardedDeserializer(definition.requestDeserialize, typeName, types) };
  }
  return guarded as unknown as grpc.ServiceDefinition;
}

/** Answers a request that could not be decoded with its INVALID_ARGUMENT before any handler runs. */
function undecodableInterceptor(logger: Logger): grpc.ServerInterceptor {
  return (methodDescriptor, call) =>
    new grpc.ServerInterceptingCall(call, {
      start(next) {
        next({
          onReceiveMessage(message, nextMessage) {
            if (!(message instanceof UndecodableRequest)) return nextMessage(message);
            logger.warn({ method: methodDescriptor.path, peer: call.getPeer() }, message.error.message);
            call.sendStatus({ code: message.error.code, details: message.error.message, metadata: new grpc.Metadata() });
          },
        });
      },
    });
}

/** Wraps every method: a server span continuing the caller's trace, and errors as statuses. */
/**
 * Each call's duration (for a stream, its whole life) by method and status code: errors are the
 * calls whose code is not OK.
 */
function rpcDurations(): RpcDurations {
  return meter().createHistogram('sluice_rpc_server_duration_seconds', {
    description: 'Duration of each RPC this process served, by method and gRPC status code (streams: their whole life).',
    unit: 's',
    advice: { explicitBucketBoundaries: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 300] },
  });
}
type RpcDurations = ReturnType<Meter['createHistogram']>;

function recordCall(durations: RpcDurations, definition: MethodDefinition, startedAt: number, code: grpc.status): void {
  durations.record((performance.now() - startedAt) / 1000, { method: definition.path.slice(1), code: grpc.status[code] });
}

function implement(binding: ServiceBinding, logger: Logger, durations: RpcDurations): grpc.UntypedServiceImplementation {
  const implementation: grpc.UntypedServiceImplementation = {};
  for (const [method, definition] of Object.entries(binding.definition)) {
    // Whether authentication is on or not: a method without an access rule is a mistake to catch at once.
    if (!(definition.path in METHOD_ROLES))
      throw new Error(`${definition.path.slice(1)} has no access rule: add it to METHOD_ROLES in shared/src/grpc/auth.ts`);
    const handler = binding.handlers[method];
    if (definition.requestStream === false && definition.responseStream === false) {
      implementation[method] = unary(definition, handler, logger, durations);
    } else {
      implementation[method] = streaming(definition, handler, logger, durations);
    }
  }
  return implementation;
}

function startServerSpan(definition: MethodDefinition, metadata: grpc.Metadata) {
  const parent = extractContext(metadataCarrier(metadata), ROOT_CONTEXT);
  const [, service = '', method = ''] = definition.path.split('/');
  const span = tracer().startSpan(
    `${service}/${method}`,
    { kind: SpanKind.SERVER, attributes: { 'rpc.system': 'grpc', 'rpc.service': service, 'rpc.method': method } },
    parent,
  );
  return { span, ctx: trace.setSpan(parent, span) };
}

function unary(
  definition: MethodDefinition,
  handler: ErasedHandler | undefined,
  logger: Logger,
  durations: RpcDurations,
): grpc.handleUnaryCall<unknown, unknown> {
  return (call, callback) => {
    const startedAt = performance.now();
    const { span, ctx } = startServerSpan(definition, call.metadata);
    context.with(ctx, async () => {
      let code = grpc.status.OK;
      try {
        if (!handler) throw unimplementedError(definition);
        callback(null, await handler(call.request, call));
        span.setAttribute('rpc.grpc.status_code', grpc.status.OK);
      } catch (err) {
        const statusObject = toStatus(err, definition, logger);
        code = statusObject.code;
        span.setAttribute('rpc.grpc.status_code', statusObject.code);
        span.setStatus({ code: SpanStatusCode.ERROR, message: statusObject.details });
        callback(statusObject);
      } finally {
        span.end();
        recordCall(durations, definition, startedAt, code);
      }
    });
  };
}

function streaming(
  definition: MethodDefinition,
  handler: ErasedHandler | undefined,
  logger: Logger,
  durations: RpcDurations,
): grpc.handleBidiStreamingCall<unknown, unknown> {
  return (call) => {
    const startedAt = performance.now();
    const { span, ctx } = startServerSpan(definition, call.metadata);
    context.with(ctx, async () => {
      let code = grpc.status.OK;
      try {
        if (!handler) throw unimplementedError(definition);
        await handler(call);
        if (!call.writableEnded) call.end();
        span.setAttribute('rpc.grpc.status_code', grpc.status.OK);
      } catch (err) {
        const statusObject = toStatus(err, definition, logger);
        code = statusObject.code;
        span.setAttribute('rpc.grpc.status_code', statusObject.code);
        span.setStatus({ code: SpanStatusCode.ERROR, message: statusObject.details });
        call.emit('error', statusObject);
      } finally {
        span.end();
        recordCall(durations, definition, startedAt, code);
      }
    });
  };
}

function unimplementedError(definition: MethodDefinition): SluiceError {
  return new SluiceError(grpc.status.UNIMPLEMENTED, `${definition.path.slice(1)} is not implemented yet`);
}

/**
 * The status message and the detail values travel in HTTP/2 trailers, which peers cap (grpc-js
 * at 8 kB of metadata by default): an error quoting a 1 MB name made the answer undeliverable,
 * so the call never completed and others on the connection stalled. Both are clipped.
 */
const MAX_STATUS_MESSAGE = 2000;
const MAX_DETAIL_VALUE = 200;

function clipped(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max)}… (${text.length - max} more characters)`;
}

/** Typed errors keep their code and message (clipped); anything else is logged and answered as INTERNAL. */
function toStatus(err: unknown, definition: MethodDefinition, logger: Logger): grpc.ServiceError {
  const metadata = new grpc.Metadata();
  if (err instanceof SluiceError) {
    for (const [key, value] of Object.entries(err.details)) metadata.set(`sluice-${key.toLowerCase()}`, clipped(value, MAX_DETAIL_VALUE));
    const details = clipped(err.message, MAX_STATUS_MESSAGE);
    return Object.assign(new Error(details), { code: err.code, details, metadata });
  }
  logger.error({ err, method: definition.path }, 'unexpected error in handler');
  const traceId = trace.getActiveSpan()?.spanContext().traceId ?? 'none';
  const details = `internal error in ${definition.path.slice(1)} (trace ${traceId}); see the service log`;
  return Object.assign(new Error(details), { code: grpc.status.INTERNAL, details, metadata });
}
