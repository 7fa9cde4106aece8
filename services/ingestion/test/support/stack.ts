/**
 * The real things an ingestion test talks to: the in-process stack (a fresh database behind the
 * real catalog service, NATS) with the real commit service, the Kafka-protocol dev broker over
 * TCP and the recording transformation worker. Ingestion itself runs in-process
 * (startIngestion) or as child processes (spawnIngestion) for kill and memory tests.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { DuckDBInstance } from '@duckdb/node-api';
import { fileURLToPath } from 'node:url';
import type { DevBroker } from '#kafka-broker/index.js';
import { type Job, JobState } from '#shared/gen/sluice/v1/catalog.js';
import { IngestionServiceService } from '#shared/gen/sluice/v1/ingestion.js';
import { createClient } from '#shared/grpc/client.js';
import type { NatsConnection } from '#shared/nats.js';
import { resolveSnapshot, snapshotFiles } from '#shared/iceberg/scan.js';
import type { TableMetadata } from '#shared/iceberg/types.js';
import { createStorage } from '#shared/storage/index.js';
import type { TestDatabase } from '#test-support/postgres.js';
import { field, flattenMapping, job, source, tableRequest } from '#test-support/builders.js';
import { freePort } from '#test-support/ports.js';
import { type CatalogClient, type CommitClient, type IngestionClient, ingestionEnv, type ServiceHandle } from '#test-support/services.js';
import { startStack } from '#test-support/stack.js';
import { startRecordingWorker, type RecordingWorker } from './worker.js';
import { programArgs, waitUntilServing } from '#cli/launch.js';

const root = fileURLToPath(new URL('../../../../', import.meta.url));

export type { CatalogClient, IngestionClient };

export interface IngestionStack {
  db: TestDatabase;
  dir: string;
  broker: DevBroker;
  nats: NatsConnection;
  catalog: CatalogClient;
  commit: ServiceHandle<CommitClient>;
  worker: RecordingWorker;
  /** Environment for an ingestion process of this stack. */
  env(extra?: Record<string, string>): Record<string, string>;
  startIngestion(extra?: Record<string, string>): Promise<ServiceHandle<IngestionClient>>;
  /** Starts the real transformation service; returns its address. */
  startTransformation(): Promise<string>;
  stop(): Promise<void>;
}

export async function startIngestionStack(options: { partitions?: number } = {}): Promise<IngestionStack> {
  const stack = await startStack({ name: 'sluice_ingestion', catalogClient: { deadlineMs: 10_000 } });
  try {
    const commit = await stack.startCommit();
    const broker = await stack.startBroker({ defaultPartitions: options.partitions ?? 2 });
    const worker = stack.own(await startRecordingWorker(stack.nats, commit.address, stack.catalog.client));
    const peers = { commitAddress: commit.address, transformationAddress: worker.address, kafkaBrokers: broker.address };
    return {
      db: stack.db,
      dir: stack.dir,
      broker,
      nats: stack.nats,
      catalog: stack.catalog.client,
      commit,
      worker,
      env: (extra = {}) => ingestionEnv({ catalogAddress: stack.catalog.address, ...peers, env: extra }),
      startIngestion: (extra) => stack.startIngestion({ ...peers, env: extra, client: { deadlineMs: 30_000 } }),
      startTransformation: async () => (await stack.startTransformation({ commitAddress: commit.address })).address,
      stop: () => stack.stop(),
    };
  } catch (err) {
    await stack.stop();
    throw err;
  }
}

/** A database, a one-column table, a source on `topic` (default brokers unless named) and a job; returns the job name. */
export async function defineJob(
  catalog: CatalogClient,
  name: string,
  topic: string,
  overrides: Partial<Job> = {},
  brokers: string[] = [],
  withTable = true,
): Promise<string> {
  const ref = { database: 'lake', table: name };
  await catalog.createDatabase({ name: 'lake', location: '', properties: {} }).catch(() => {});
  if (withTable) await catalog.createTable(tableRequest(ref, [field(0, 'v', 'string')], { ifNotExists: true }));
  await catalog.createSource({ source: source(`${name}_src`, topic, { brokers }) });
  const defaults = { commitIntervalMs: 1000, parallelism: 1, state: JobState.JOB_STATE_CREATED };
  await catalog.createJob({ job: job(name, `${name}_src`, ref, { ...defaults, ...overrides }) });
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
  await waitUntilServing('ingestion', address, 60_000);
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
  overrides: Partial<Job> = {},
): Promise<string> {
  await catalog.createDatabase({ name: 'lake', location: '', properties: {} }).catch(() => {});
  const fields = Object.entries(columns).map(([column, type], i) => field(i + 1, column, type));
  await catalog.createTable(tableRequest({ database: 'lake', table: name }, fields));
  return defineJob(catalog, name, topic, { mapping: flattenMapping(), ...overrides }, [], false);
}

/** Every data file of the table's current snapshot (local paths); [] before the first commit. */
export async function snapshotDataFiles(catalog: CatalogClient, tableName: string): Promise<string[]> {
  const { table: t } = await catalog.getTable({ ref: { database: 'lake', table: tableName } });
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
