/**
 * The mesh services started in the test's own process, one starter each, to compose into
 * whatever a test needs (a catalog alone; catalog + commit + a recording worker; all four).
 * Each starter knows the variables its service reads, so a test names only what differs.
 * The services are the real ones (startService, as main.ts runs them) on port 0, quiet, with
 * short shutdown timeouts. For the four as child processes that a test can kill -9, see mesh.ts.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type RunningService, startService } from '#shared/service.js';
import { catalogService } from '../../services/catalog/src/service.js';
import { commitService } from '../../services/commit/src/service.js';
import { ingestionService } from '../../services/ingestion/src/service.js';
import { transformationService } from '../../services/transformation/src/service.js';

export const NATS_URL = process.env.NATS_URL ?? 'nats://127.0.0.1:4222';

/** What every in-process service of a test gets: quiet logs, loopback, quick stops. */
export const QUIET_ENV: Readonly<Record<string, string>> = {
  LOG_LEVEL: 'silent',
  SLUICE_BIND_HOST: '127.0.0.1',
  SLUICE_SHUTDOWN_TIMEOUT_MS: '3000',
  NATS_URL,
};

export interface InProcessService {
  readonly service: RunningService;
  /** 127.0.0.1:<port> */
  readonly address: string;
  stop(): Promise<void>;
}

async function start(spec: Parameters<typeof startService>[0], env: Record<string, string | undefined>): Promise<InProcessService> {
  const service = await startService(spec, { ...QUIET_ENV, ...env });
  return { service, address: `127.0.0.1:${service.port}`, stop: () => service.stop() };
}

/** The catalog over a (migrated on start) database, with its warehouse. */
export function startCatalog(options: { databaseUrl: string; warehouse: string; env?: Record<string, string> }): Promise<InProcessService> {
  return start(catalogService, {
    CATALOG_PORT: '0',
    DATABASE_URL: options.databaseUrl,
    SLUICE_WAREHOUSE: options.warehouse,
    ...options.env,
  });
}

/** The commit service; tests trigger flushes or set a short interval, and run maintenance only when asked. */
export function startCommit(options: { catalogAddress: string; env?: Record<string, string> }): Promise<InProcessService> {
  return start(commitService, {
    COMMIT_PORT: '0',
    CATALOG_ADDRESS: options.catalogAddress,
    COMMIT_DEFAULT_INTERVAL_MS: '1000',
    COMMIT_FLUSH_TIMEOUT_MS: '1500',
    COMMIT_WORKER_TTL_MS: '1500',
    COMMIT_MAINTENANCE_INTERVAL_MS: '0',
    ...options.env,
  });
}

/** The transformation service, reporting to `commitAddress` (the real commit service or a recorder). */
export function startTransformation(options: {
  catalogAddress: string;
  commitAddress: string;
  env?: Record<string, string>;
}): Promise<InProcessService> {
  return start(transformationService, {
    TRANSFORMATION_PORT: '0',
    CATALOG_ADDRESS: options.catalogAddress,
    COMMIT_ADDRESS: options.commitAddress,
    TRANSFORMATION_HEARTBEAT_MS: '200',
    ...options.env,
  });
}

/** The ingestion service, reading from `kafkaBrokers` and streaming to `transformationAddress`. */
export function startIngestion(options: {
  catalogAddress: string;
  commitAddress: string;
  transformationAddress: string;
  kafkaBrokers: string;
  env?: Record<string, string>;
}): Promise<InProcessService> {
  return start(ingestionService, ingestionEnv(options));
}

/** The variables an ingestion service of this composition reads (also for one run as a child process). */
export function ingestionEnv(options: {
  catalogAddress: string;
  commitAddress: string;
  transformationAddress: string;
  kafkaBrokers: string;
  env?: Record<string, string>;
}): Record<string, string> {
  return {
    ...QUIET_ENV,
    INGESTION_PORT: '0',
    CATALOG_ADDRESS: options.catalogAddress,
    COMMIT_ADDRESS: options.commitAddress,
    TRANSFORMATION_ADDRESS: options.transformationAddress,
    KAFKA_BROKERS: options.kafkaBrokers,
    ...options.env,
  };
}

/** A temporary directory, removed by the returned remove(). */
export async function tempDir(prefix: string): Promise<{ path: string; remove(): Promise<void> }> {
  const path = await mkdtemp(join(tmpdir(), `${prefix}-`));
  return { path, remove: () => rm(path, { recursive: true, force: true }) };
}
