/**
 * The mesh services started in the test's own process, one starter each, to compose into
 * whatever a test needs (a catalog alone; catalog + commit + a recording worker; all four).
 * Each starter knows the variables its service reads, so a test names only what differs, and
 * returns a handle: the address, a client of the service, and stop() (closes the client, then
 * stops the service). The services are the real ones (startService, as main.ts runs them) on
 * port 0, quiet, with short shutdown timeouts. stack.ts composes them with a database, a
 * directory and NATS; for the four as child processes that a test can kill -9, see mesh.ts.
 */
import { CatalogServiceService } from '#shared/gen/sluice/v1/catalog.js';
import { CommitServiceService } from '#shared/gen/sluice/v1/commit.js';
import { IngestionServiceService } from '#shared/gen/sluice/v1/ingestion.js';
import { TransformationServiceService } from '#shared/gen/sluice/v1/transformation.js';
import { CLIENT_SECURITY_KEYS, type ClientOptions, clientSecurity, createClient, type ServiceClient } from '#shared/grpc/client.js';
import { bindService, type RunningGrpcServer, startGrpcServer } from '#shared/grpc/server.js';
import type { AsyncHandlers } from '#shared/grpc/types.js';
import type { ServiceDefinition } from '@grpc/grpc-js';
import { type LogLevel, loadConfig } from '#shared/config.js';
import { createLogger } from '#shared/logger.js';
import { createPool, migrate, type Pool } from '#shared/pg.js';
import { type RunningService, startService } from '#shared/service.js';
import { createStorage, type LocalStorageOptions, type Storage } from '#shared/storage/index.js';
import { catalogHandlers, DEFAULT_JDBC_CATALOG_NAME } from '../../services/catalog/src/handlers.js';
import { CATALOG_MIGRATIONS, catalogService } from '../../services/catalog/src/service.js';
import { commitService } from '../../services/commit/src/service.js';
import { ingestionService } from '../../services/ingestion/src/service.js';
import { transformationService } from '../../services/transformation/src/service.js';
import { NATS_URL } from './nats.js';

/** What every in-process service of a test gets: quiet logs, loopback, quick stops. */
export const QUIET_ENV: Readonly<Record<string, string>> = {
  // TEST_LOG_LEVEL=debug shows the services' logs when a test needs looking into.
  LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
  SLUICE_BIND_HOST: '127.0.0.1',
  SLUICE_SHUTDOWN_TIMEOUT_MS: '3000',
  NATS_URL,
};

export type CatalogClient = ServiceClient<typeof CatalogServiceService>;
export type CommitClient = ServiceClient<typeof CommitServiceService>;
export type TransformationClient = ServiceClient<typeof TransformationServiceService>;
export type IngestionClient = ServiceClient<typeof IngestionServiceService>;

/** A service running in this process, with a client of it. */
export interface ServiceHandle<C> {
  readonly service: RunningService;
  /** 127.0.0.1:<port> */
  readonly address: string;
  readonly client: C;
  /** Closes the client, then stops the service gracefully. */
  stop(): Promise<void>;
}

/** What every starter accepts besides its addresses: variables to add or override, the client's options. */
export interface StartOptions {
  env?: Record<string, string>;
  /** The handle's client: a 20 s deadline, the default UNAVAILABLE retries and the service's TLS and token unless set. */
  client?: ClientOptions;
}

const DEFAULT_CLIENT: ClientOptions = { deadlineMs: 20_000 };

async function start<D extends ServiceDefinition>(
  spec: Parameters<typeof startService>[0],
  definition: D,
  env: Record<string, string>,
  clientOptions: ClientOptions = DEFAULT_CLIENT,
): Promise<ServiceHandle<ServiceClient<D>>> {
  const serviceEnv = { ...QUIET_ENV, ...env };
  const service = await startService(spec, serviceEnv);
  const address = `127.0.0.1:${service.port}`;
  // The service's own TLS and token unless the test gives the client others.
  const security = clientSecurity(loadConfig(CLIENT_SECURITY_KEYS, serviceEnv));
  const client = createClient(definition, address, { security, ...clientOptions });
  return {
    service,
    address,
    client,
    async stop() {
      client.close();
      await service.stop();
    },
  };
}

/** The catalog service over a database (migrated on start), with its warehouse. */
export function startCatalog(options: { databaseUrl: string; warehouse: string } & StartOptions): Promise<ServiceHandle<CatalogClient>> {
  const env = { CATALOG_PORT: '0', DATABASE_URL: options.databaseUrl, SLUICE_WAREHOUSE: options.warehouse, ...options.env };
  return start(catalogService, CatalogServiceService, env, options.client);
}

/** The commit service; tests trigger flushes or set a short interval, and run maintenance only when asked. */
export function startCommit(options: { catalogAddress: string } & StartOptions): Promise<ServiceHandle<CommitClient>> {
  const env = {
    COMMIT_PORT: '0',
    CATALOG_ADDRESS: options.catalogAddress,
    COMMIT_DEFAULT_INTERVAL_MS: '1000',
    COMMIT_FLUSH_TIMEOUT_MS: '1500',
    COMMIT_WORKER_TTL_MS: '1500',
    COMMIT_MAINTENANCE_INTERVAL_MS: '0',
    ...options.env,
  };
  return start(commitService, CommitServiceService, env, options.client);
}

/** The transformation service, reporting to `commitAddress` (the real commit service or a recorder). */
export function startTransformation(
  options: { catalogAddress: string; commitAddress: string } & StartOptions,
): Promise<ServiceHandle<TransformationClient>> {
  const env = {
    TRANSFORMATION_PORT: '0',
    CATALOG_ADDRESS: options.catalogAddress,
    COMMIT_ADDRESS: options.commitAddress,
    TRANSFORMATION_HEARTBEAT_MS: '200',
    ...options.env,
  };
  return start(transformationService, TransformationServiceService, env, options.client);
}

/** Where an ingestion service of a composition reads from and streams to. */
export interface IngestionPeers {
  catalogAddress: string;
  commitAddress: string;
  transformationAddress: string;
  kafkaBrokers: string;
}

/** The ingestion service, reading from `kafkaBrokers` and streaming to `transformationAddress`. */
export function startIngestion(options: IngestionPeers & StartOptions): Promise<ServiceHandle<IngestionClient>> {
  return start(ingestionService, IngestionServiceService, ingestionEnv(options), options.client);
}

/** The variables an ingestion service of this composition reads (also for one run as a child process). */
export function ingestionEnv(options: IngestionPeers & { env?: Record<string, string> }): Record<string, string> {
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

/** The catalog's handlers alone, for tests that reach below the service: its pool, its storage. */
export interface CatalogHandlersHandle {
  readonly address: string;
  readonly client: CatalogClient;
  /** The catalog's own pool, for SQL the RPCs do not offer (expiring a lease, reading the JDBC rows). */
  readonly pool: Pool;
  /** The storage the handlers write through (with the test's mounts). */
  readonly storage: Storage;
  readonly warehouse: string;
  stop(): Promise<void>;
}

/**
 * The catalog's handlers over gRPC, on a database this migrates, writing through storage the
 * test configures: a warehouse published over HTTP (mounts) that the service's own
 * configuration cannot express.
 */
export async function startCatalogHandlers(options: {
  databaseUrl: string;
  warehouse: string;
  /** More allowed roots for locations (SLUICE_WAREHOUSE_ROOTS). */
  roots?: string[];
  storage?: LocalStorageOptions;
  /** Connections of the catalog's pool (tests that commit in parallel need more). */
  poolSize?: number;
  logLevel?: LogLevel;
  client?: ClientOptions;
}): Promise<CatalogHandlersHandle> {
  const pool = createPool(options.databaseUrl, options.poolSize ?? 20);
  const storage = createStorage(options.storage ?? {});
  try {
    await migrate(pool, 'catalog', CATALOG_MIGRATIONS);
    const handlers = catalogHandlers({
      pool,
      storage,
      warehouse: options.warehouse,
      roots: options.roots,
      jdbcCatalogName: DEFAULT_JDBC_CATALOG_NAME,
    });
    const server = await startGrpcServer({
      host: '127.0.0.1',
      port: 0,
      protoFiles: ['sluice/v1/catalog.proto'],
      services: [bindService('sluice.v1.CatalogService', CatalogServiceService, handlers)],
      logger: createLogger('catalog-test', options.logLevel ?? 'silent'),
    });
    const address = `127.0.0.1:${server.port}`;
    const client = createClient(CatalogServiceService, address, options.client ?? DEFAULT_CLIENT);
    return {
      address,
      client,
      pool,
      storage,
      warehouse: options.warehouse,
      async stop() {
        client.close();
        await server.stop(1000);
        await pool.end();
      },
    };
  } catch (err) {
    await pool.end();
    throw err;
  }
}

/**
 * A bare gRPC server on a free local port with TransformationService's `handlers` and nothing
 * behind them: for tests of the gRPC layer itself (windows, framing).
 */
export function startTransformationServer(
  handlers: Partial<AsyncHandlers<typeof TransformationServiceService>> = {},
): Promise<RunningGrpcServer> {
  return startGrpcServer({
    host: '127.0.0.1',
    port: 0,
    protoFiles: ['sluice/v1/transformation.proto'],
    logger: createLogger('test', 'silent'),
    services: [bindService('sluice.v1.TransformationService', TransformationServiceService, handlers)],
  });
}
