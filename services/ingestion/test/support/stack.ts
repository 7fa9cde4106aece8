/**
 * The real things an ingestion test talks to: a fresh PostgreSQL database behind the real
 * catalog service, the real commit service, NATS, the Kafka-protocol dev broker over TCP, and
 * the recording transformation worker. Ingestion itself runs in-process (startService) or as
 * child processes (spawnIngestion) for kill and memory tests.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { DuckDBInstance } from '@duckdb/node-api';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startDevBroker, type DevBroker } from '#kafka-broker/index.js';
import { CatalogServiceService, type Job } from '#shared/gen/sluice/v1/catalog.js';
import { MessageFormat, MessageMode } from '#shared/gen/sluice/v1/types.js';
import { IngestionServiceService } from '#shared/gen/sluice/v1/ingestion.js';
import { createClient, type ServiceClient } from '#shared/grpc/client.js';
import { waitForServing } from '#shared/grpc/health.js';
import { connectNats, type NatsConnection } from '#shared/nats.js';
import type { RunningService } from '#shared/service.js';
import { resolveSnapshot, snapshotFiles } from '#shared/iceberg/scan.js';
import type { TableMetadata } from '#shared/iceberg/types.js';
import { createStorage } from '#shared/storage/index.js';
import { createTestDatabase, type TestDatabase } from '#test-support/postgres.js';
import { job as builtJob, field, jsonSource, schema } from '#test-support/builders.js';
import { freePort } from '#test-support/ports.js';
import {
  type InProcessService,
  ingestionEnv,
  NATS_URL,
  startCatalog,
  startCommit,
  startIngestion,
  startTransformation,
} from '#test-support/services.js';
import { startRecordingWorker, type RecordingWorker } from './worker.js';
import { programArgs } from '#cli/launch.js';

const root = fileURLToPath(new URL('../../../../', import.meta.url));

export type CatalogClient = ServiceClient<typeof CatalogServiceService>;
export type IngestionClient = ServiceClient<typeof IngestionServiceService>;

export interface Stack {
  db: TestDatabase;
  dir: string;
  broker: DevBroker;
  nats: NatsConnection;
  catalog: CatalogClient;
  catalogService: RunningService;
  commitService: RunningService;
  worker: RecordingWorker;
  /** Environment for an ingestion process of this stack. */
  env(extra?: Record<string, string>): Record<string, string>;
  startIngestion(extra?: Record<string, string>): Promise<{ service: RunningService; client: IngestionClient }>;
  /** Starts the real transformation service; returns its address. */
  startTransformation(): Promise<string>;
  stop(): Promise<void>;
}

export async function startStack(options: { partitions?: number } = {}): Promise<Stack> {
  const dir = await mkdtemp(join(tmpdir(), 'sluice-ingestion-'));
  const db = await createTestDatabase('sluice_ingestion');
  const catalogSvc = await startCatalog({ databaseUrl: db.url, warehouse: join(dir, 'warehouse') });
  const commitSvc = await startCommit({ catalogAddress: catalogSvc.address });
  const broker = await startDevBroker({ defaultPartitions: options.partitions ?? 2 });
  const nats = await connectNats(NATS_URL, 'ingestion-test');
  const worker = await startRecordingWorker(nats, commitSvc.address);
  const catalog = createClient(CatalogServiceService, catalogSvc.address, { deadlineMs: 10_000 });
  const started: InProcessService[] = [];
  const clients: IngestionClient[] = [];
  const composition = {
    catalogAddress: catalogSvc.address,
    commitAddress: commitSvc.address,
    transformationAddress: worker.address,
    kafkaBrokers: broker.address,
  };
  return {
    db,
    dir,
    broker,
    nats,
    catalog,
    worker,
    catalogService: catalogSvc.service,
    commitService: commitSvc.service,
    env: (extra = {}) => ingestionEnv({ ...composition, env: extra }),
    async startIngestion(extra) {
      const ingestion = await startIngestion({ ...composition, env: extra });
      const client = createClient(IngestionServiceService, ingestion.address, { deadlineMs: 30_000 });
      started.push(ingestion);
      clients.push(client);
      return { service: ingestion.service, client };
    },
    async startTransformation() {
      const transformation = await startTransformation({ catalogAddress: catalogSvc.address, commitAddress: commitSvc.address });
      started.push(transformation);
      return transformation.address;
    },
    async stop() {
      for (const c of clients) c.close();
      for (const s of started) await s.stop();
      await worker.stop();
      catalog.close();
      await commitSvc.stop();
      await catalogSvc.stop();
      await nats.drain();
      await broker.stop();
      await db.drop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** A database, a one-column table, a source on `topic` (default brokers unless named) and a job; returns the job name. */
export async function defineJob(
  catalog: CatalogClient,
  name: string,
  topic: string,
  job: Partial<Job> = {},
  brokers: string[] = [],
  withTable = true,
): Promise<string> {
  await catalog.createDatabase({ name: 'lake', location: '', properties: {} }).catch(() => {});
  if (withTable)
    await catalog.createTable({
      ref: { database: 'lake', table: name },
      schema: schema(field(0, 'v', 'string')),
      location: '',
      properties: {},
      ifNotExists: true,
    });
  await catalog.createSource({ source: jsonSource(`${name}_src`, topic, brokers) });
  await catalog.createJob({ job: builtJob(name, `${name}_src`, { database: 'lake', table: name }, job) });
  return name;
}

/** An ingestion service as a child process (compiled, from dist/), on a port chosen up front. */
export async function spawnIngestion(
  env: Record<string, string>,
): Promise<{ child: ChildProcess; address: string; client: IngestionClient; stderr: () => string }> {
  const port = await freePort();
  const child = spawn(process.execPath, programArgs('ingestion'), {
    cwd: root,
    env: { ...(process.env as Record<string, string>), ...env, INGESTION_PORT: String(port) },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  const address = `127.0.0.1:${port}`;
  await waitForServing(address, 60_000, `the ingestion service at ${address}`);
  return { child, address, client: createClient(IngestionServiceService, address, { deadlineMs: 30_000 }), stderr: () => stderr };
}

/** Column name → Iceberg primitive type, for tables the real transformation writes. */
export type Columns = Record<string, string>;

/**
 * A table with these columns, a JSON source on `topic` and a job mapping the value's top-level
 * keys onto the columns (FLATTEN, level 1), for tests with the real transformation service.
 */
export async function defineMappedJob(
  catalog: CatalogClient,
  name: string,
  topic: string,
  columns: Columns,
  job: Partial<Job> = {},
): Promise<string> {
  await catalog.createDatabase({ name: 'lake', location: '', properties: {} }).catch(() => {});
  await catalog.createTable({
    ref: { database: 'lake', table: name },
    schema: {
      schemaId: 0,
      fields: Object.entries(columns).map(([column, type], i) => ({
        id: i + 1,
        name: column,
        required: false,
        type: { kind: { $case: 'primitive' as const, value: type } },
        doc: '',
      })),
      identifierFieldIds: [],
    },
    location: '',
    properties: {},
    ifNotExists: false,
  });
  const mapping = {
    format: MessageFormat.MESSAGE_FORMAT_FLATTEN,
    mode: MessageMode.MESSAGE_MODE_VALUE,
    flattenLevel: 1,
    fields: [],
    timeZone: 'UTC',
    includeFixedColumns: false,
  };
  return defineJob(catalog, name, topic, { mapping, ...job }, [], false);
}

/** Every data file of the table's current snapshot (local paths); [] before the first commit. */
export async function snapshotDataFiles(catalog: CatalogClient, table: string): Promise<string[]> {
  const { table: t } = await catalog.getTable({ ref: { database: 'lake', table } });
  const meta = JSON.parse(await readFile(t!.metadataLocation, 'utf8')) as TableMetadata;
  const snapshot = resolveSnapshot(meta);
  if (!snapshot) return [];
  return (await snapshotFiles(createStorage(), snapshot)).dataFiles.map((f) => f.dataFile.filePath.replace(/^file:\/\//, ''));
}

/** Runs SQL in an in-memory DuckDB (read_parquet over snapshot files). */
export async function duck(sql: string): Promise<Record<string, unknown>[]> {
  const conn = await (await DuckDBInstance.create(':memory:')).connect();
  try {
    return (await conn.runAndReadAll(sql)).getRowObjects() as Record<string, unknown>[];
  } finally {
    conn.closeSync();
  }
}
