import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { ReflectionService } from '@grpc/reflection';
import { context, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { HealthImplementation, protoPath as healthProtoPath } from 'grpc-health-check';
import { fileURLToPath } from 'node:url';
import { SluiceError } from '../errors.js';
import type { Logger } from '../logger.js';
import { extractContext, tracer } from '../tracing.js';
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
}

export interface RunningGrpcServer {
  readonly port: number;
  readonly server: grpc.Server;
  readonly health: HealthImplementation;
  /** Marks every service NOT_SERVING, lets in-flight calls finish (up to graceMs), then closes. */
  stop(graceMs: number): Promise<void>;
}

export async function startGrpcServer(options: GrpcServerOptions): Promise<RunningGrpcServer> {
  const server = new grpc.Server({ 'grpc.max_receive_message_length': 64 * 1024 * 1024 });
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

  for (const binding of options.services) {
    server.addService(binding.definition as unknown as grpc.ServiceDefinition, implement(binding, options.logger));
  }

  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(`${options.host}:${options.port}`, grpc.ServerCredentials.createInsecure(), (err, bound) => {
      if (!err) return resolve(bound);
      const inUse = /EADDRINUSE/.test(err.message);
      reject(new Error(`cannot listen on ${options.host}:${options.port}: ${inUse ? 'the address is already in use' : err.message}`));
    });
  });
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

/** Wraps every method: a server span continuing the caller's trace, and errors as statuses. */
function implement(binding: ServiceBinding, logger: Logger): grpc.UntypedServiceImplementation {
  const implementation: grpc.UntypedServiceImplementation = {};
  for (const [method, definition] of Object.entries(binding.definition)) {
    const handler = binding.handlers[method];
    if (definition.requestStream === false && definition.responseStream === false) {
      implementation[method] = unary(definition, handler, logger);
    } else {
      implementation[method] = streaming(definition, handler, logger);
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

function unary(definition: MethodDefinition, handler: ErasedHandler | undefined, logger: Logger): grpc.handleUnaryCall<unknown, unknown> {
  return (call, callback) => {
    const { span, ctx } = startServerSpan(definition, call.metadata);
    context.with(ctx, async () => {
      try {
        if (!handler) throw unimplementedError(definition);
        callback(null, await handler(call.request, call));
        span.setAttribute('rpc.grpc.status_code', grpc.status.OK);
      } catch (err) {
        const statusObject = toStatus(err, definition, logger);
        span.setAttribute('rpc.grpc.status_code', statusObject.code);
        span.setStatus({ code: SpanStatusCode.ERROR, message: statusObject.details });
        callback(statusObject);
      } finally {
        span.end();
      }
    });
  };
}

function streaming(
  definition: MethodDefinition,
  handler: ErasedHandler | undefined,
  logger: Logger,
): grpc.handleBidiStreamingCall<unknown, unknown> {
  return (call) => {
    const { span, ctx } = startServerSpan(definition, call.metadata);
    context.with(ctx, async () => {
      try {
        if (!handler) throw unimplementedError(definition);
        await handler(call);
        if (!call.writableEnded) call.end();
        span.setAttribute('rpc.grpc.status_code', grpc.status.OK);
      } catch (err) {
        const statusObject = toStatus(err, definition, logger);
        span.setAttribute('rpc.grpc.status_code', statusObject.code);
        span.setStatus({ code: SpanStatusCode.ERROR, message: statusObject.details });
        call.emit('error', statusObject);
      } finally {
        span.end();
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
