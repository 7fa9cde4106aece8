import { ConfigError, loadConfig, type Config, type SettingKey } from './config.js';
import { CLIENT_SECURITY_KEYS, type ClientSecurity, clientSecurity } from './grpc/client.js';
import { SERVER_SECURITY_KEYS, serverSecurity, startGrpcServer, type RunningGrpcServer, type ServiceBinding } from './grpc/server.js';
import { createLogger, type Logger } from './logger.js';
import { initMetrics, shutdownMetrics } from './metrics.js';
import { initTracing, shutdownTracing } from './tracing.js';

const SECURITY_KEYS = [...new Set([...SERVER_SECURITY_KEYS, ...CLIENT_SECURITY_KEYS])];
type SecurityKey = (typeof SECURITY_KEYS)[number];
type BaseKey = 'bindHost' | 'logLevel' | 'otlpEndpoint' | 'shutdownTimeoutMs' | 'maxMessageBytes' | 'metricsPort' | SecurityKey;
const BASE_KEYS: readonly BaseKey[] = [
  'bindHost',
  'logLevel',
  'otlpEndpoint',
  'shutdownTimeoutMs',
  'maxMessageBytes',
  'metricsPort',
  ...SECURITY_KEYS,
];

export interface ServiceContext<K extends SettingKey> {
  readonly config: Config<K | BaseKey>;
  readonly logger: Logger;
  /** TLS and token of this service's clients of its peers: pass as ClientOptions.security. */
  readonly security: ClientSecurity;
  /** Registers cleanup to run after the server stopped taking calls, in reverse order. */
  onShutdown(fn: () => Promise<void> | void): void;
  /**
   * Registers work to run first on stop, while the server still runs: ending long-lived
   * streams, which the server's own stop would otherwise wait for until its timeout.
   */
  onDrain(fn: () => Promise<void> | void): void;
  /** Registers a callback told the port the server listens on, once it does (an OS-chosen one included). */
  onServing(fn: (port: number) => void): void;
}

export interface ServiceSpec<K extends SettingKey> {
  /** Short name: catalog, ingestion, transformation, commit. */
  name: string;
  /** The setting holding this service's port. */
  portKey: K;
  settings: readonly K[];
  /** Proto files (relative to proto/) listed through reflection. */
  protoFiles: string[];
  /** Connects to what the service needs and returns its gRPC services. */
  build(ctx: ServiceContext<K>): Promise<ServiceBinding[]>;
}

export interface RunningService {
  readonly name: string;
  readonly port: number;
  readonly logger: Logger;
  readonly grpc: RunningGrpcServer;
  /** Graceful: drains long-lived calls, stops taking calls, waits for in-flight ones, then runs the cleanup hooks. */
  stop(): Promise<void>;
}

/** Starts a service in this process; env overrides let tests pick ports and databases. */
export async function startService<K extends SettingKey>(
  spec: ServiceSpec<K>,
  env: Record<string, string | undefined> = process.env,
): Promise<RunningService> {
  const config = loadConfig<K | BaseKey>([...BASE_KEYS, ...spec.settings], env);
  const logger = createLogger(spec.name, config.logLevel);
  const serving = serverSecurity(config);
  const security = clientSecurity(config);
  const cleanups: (() => Promise<void> | void)[] = [];
  const drains: (() => Promise<void> | void)[] = [];
  const servingListeners: ((port: number) => void)[] = [];
  const runCleanups = async () => {
    for (const fn of cleanups.reverse()) {
      try {
        await fn();
      } catch (err) {
        logger.warn({ err }, 'cleanup step failed during shutdown');
      }
    }
  };
  let grpc: RunningGrpcServer;
  try {
    // Before build: services make their instruments there, and they need the provider.
    const metricsPort = await initMetrics({
      serviceName: `sluice-${spec.name}`,
      port: config.metricsPort,
      host: config.bindHost,
      otlpEndpoint: config.otlpEndpoint || undefined,
    });
    if (metricsPort > 0) logger.info({ port: metricsPort }, 'metrics served at /metrics');
    const services = await spec.build({
      config,
      logger,
      security,
      onShutdown: (fn) => cleanups.push(fn),
      onDrain: (fn) => drains.push(fn),
      onServing: (fn) => servingListeners.push(fn),
    });
    grpc = await startGrpcServer({
      host: config.bindHost,
      port: config[spec.portKey] as number,
      protoFiles: spec.protoFiles,
      services,
      logger,
      security: serving,
      maxMessageBytes: config.maxMessageBytes,
    });
  } catch (err) {
    await runCleanups();
    throw err;
  }
  for (const fn of servingListeners) fn(grpc.port);
  const authentication = serving.tokens ? 'bearer tokens' : 'none';
  logger.info({ port: grpc.port, host: config.bindHost, tls: serving.tls, authentication }, `${spec.name} serving`);
  for (const warning of securityWarnings(config.bindHost, serving.tls !== 'off', serving.tokens !== undefined)) logger.warn(warning);
  let stopping: Promise<void> | undefined;
  return {
    name: spec.name,
    port: grpc.port,
    logger,
    grpc,
    stop() {
      stopping ??= (async () => {
        await Promise.all(
          drains.map(async (fn) => {
            try {
              await fn();
            } catch (err) {
              logger.warn({ err }, 'drain step failed during shutdown');
            }
          }),
        );
        await grpc.stop(config.shutdownTimeoutMs);
        await runCleanups();
        logger.info(`${spec.name} stopped`);
      })();
      return stopping;
    },
  };
}

/** What an operator should hear about a server's exposure; nothing on loopback or with both TLS and tokens. */
export function securityWarnings(host: string, tls: boolean, tokens: boolean): string[] {
  const warnings: string[] = [];
  if (tokens && !tls) warnings.push('bearer tokens travel in plaintext: set SLUICE_TLS_CERT and SLUICE_TLS_KEY');
  if (!isLoopback(host) && !tokens)
    warnings.push(`listening on ${host} without authentication: anyone who reaches the port may call every RPC (set SLUICE_TOKENS_FILE)`);
  return warnings;
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host === '[::1]' || host.startsWith('127.');
}

/**
 * The entry point of a service process: tracing, start, and a graceful stop on SIGTERM/SIGINT.
 * A configuration error is one line on stderr and exit code 2; a failed start is one line and 1.
 */
export async function runMain<K extends SettingKey>(spec: ServiceSpec<K>): Promise<void> {
  let service: RunningService;
  try {
    const { otlpEndpoint } = loadConfig(['otlpEndpoint']);
    await initTracing({ serviceName: `sluice-${spec.name}`, otlpEndpoint: otlpEndpoint || undefined });
    service = await startService(spec);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`sluice ${spec.name}: ${err.message}\n`);
      process.exit(2);
    }
    process.stderr.write(`sluice ${spec.name}: failed to start: ${(err as Error).message}\n`);
    process.exit(1);
  }
  let signalled = false;
  const shutdown = async (signal: string) => {
    if (signalled) return;
    signalled = true;
    service.logger.info({ signal }, 'shutting down');
    await service.stop();
    await shutdownTracing().catch(() => {});
    await shutdownMetrics();
    service.logger.flush();
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
  // A launcher (sluice up, a test harness) that sets this hands us a stdin pipe: when it
  // dies, even by SIGKILL, the pipe closes and we stop instead of living on as an orphan.
  if (process.env.SLUICE_EXIT_WITH_PARENT === '1') {
    process.stdin.on('close', () => void shutdown('launcher exited'));
    process.stdin.on('end', () => void shutdown('launcher exited'));
    process.stdin.resume();
  }
}
