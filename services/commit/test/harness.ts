/**
 * A real little stack for the commit tests: the in-process stack (fresh PostgreSQL database,
 * NATS) with the real catalog's handlers over gRPC and their warehouse published over HTTP (so
 * icebird can read it), coordinators served over real gRPC, and workers played by the test:
 * real heartbeats on NATS, real Parquet files, real ReportDataFiles calls.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { StartFrom } from '#shared/gen/sluice/v1/catalog.js';
import { CommitServiceService } from '#shared/gen/sluice/v1/commit.js';
import { CommittedEvent, FlushEvent, RewindEvent, WorkerHeartbeat } from '#shared/gen/sluice/v1/events.js';
import type { DataFile, OffsetRange, TableRef } from '#shared/gen/sluice/v1/types.js';
import type { LogLevel } from '#shared/config.js';
import { subjects } from '#shared/events.js';
import { createClient, type ServiceClient } from '#shared/grpc/client.js';
import { startGrpcServer } from '#shared/grpc/server.js';
import { createLogger } from '#shared/logger.js';
import { connectNats, publish, type NatsConnection } from '#shared/nats.js';
import { parsePrimitive } from '#shared/iceberg/single-value.js';
import { currentSnapshot } from '#shared/iceberg/index.js';
import { snapshotFiles } from '#shared/iceberg/scan.js';
import type { Storage } from '#shared/storage/index.js';
import { field, job, recordStarts, source, tableRequest } from '#test-support/builders.js';
import { writeTableDataFile } from '#test-support/data-files.js';
import { serveDirectory } from '#test-support/file-server.js';
import { NATS_URL } from '#test-support/nats.js';
import { startCatalogHandlers } from '#test-support/services.js';
import { startStack } from '#test-support/stack.js';
import { tempDir } from '#test-support/temp.js';
import { waitFor } from '#test-support/wait.js';
import { natsAnnouncer } from '../src/announcer.js';
import { loadTable, type CatalogClient } from '../src/catalog.js';
import { readRows } from '../src/maintenance/rows.js';
import type { CoordinatorContext, CoordinatorSettings } from '../src/context.js';
import { CommitCoordinator } from '../src/coordinator.js';
import { CommitPeers } from '../src/peers.js';
import { commitBinding, listenForHeartbeats } from '../src/service.js';

export interface RunningCoordinator {
  coordinator: CommitCoordinator;
  client: ServiceClient<typeof CommitServiceService>;
  stop(): Promise<void>;
}

export interface CommitStack {
  catalog: CatalogClient;
  storage: Storage;
  /** The warehouse as icebird sees it: http://127.0.0.1:<port>/wh */
  base: string;
  nats: NatsConnection;
  database: string;
  context(settings?: Partial<CoordinatorSettings>, owner?: string): CoordinatorContext;
  /**
   * A coordinator served over gRPC. `replica`: it records its address with its leases and
   * forwards a table's calls to the replica holding the table's lease, as the service does.
   */
  startCoordinator(settings?: Partial<CoordinatorSettings>, owner?: string, options?: { replica?: boolean }): Promise<RunningCoordinator>;
  /** A table (id long, part string; partitioned by part) and, when named, a job writing it. */
  /**
   * A table of ids and parts; with `job`, a job into it whose starts are recorded as ingestion
   * records them (`starts`, partition → offset; partitions 0 and 1 at offset 0 unless given).
   */
  createTable(
    name: string,
    options?: { job?: string; properties?: Record<string, string>; bufferBytes?: number; starts?: Record<number, number> },
  ): Promise<TableRef>;
  stop(): Promise<void>;
}

export const TEST_SETTINGS: CoordinatorSettings = {
  defaultIntervalMs: 3_600_000, // tests trigger flushes themselves
  flushTimeoutMs: 2_000,
  workerTtlMs: 10_000,
  leaseTtlMs: 10_000,
  maintenanceIntervalMs: 0,
  orphanMinAgeMs: 3_600_000,
};

const LOG_LEVEL = (process.env.TEST_LOG_LEVEL as LogLevel | undefined) ?? 'silent';
const silent = createLogger('commit-test', LOG_LEVEL);

export async function startCommitStack(): Promise<CommitStack> {
  // The catalog's warehouse is an http:// location (mounted onto <dir>/wh), so the server must
  // run before the catalog starts; it learns the directory once the stack has made it.
  let warehouseDir = '';
  const http = await serveDirectory(() => warehouseDir);
  const base = `${http.url}/wh`;
  const stack = await startStack({
    name: 'sluice_commit',
    catalog: ({ dir, databaseUrl }) => {
      warehouseDir = dir;
      return startCatalogHandlers({ databaseUrl, warehouse: base, storage: { mounts: { [base]: join(dir, 'wh') } }, logLevel: LOG_LEVEL });
    },
  }).catch(async (err) => {
    await http.close();
    throw err;
  });
  stack.own({ stop: () => http.close() });
  const catalog = stack.catalog.client;
  const storage = stack.catalog.storage;
  // NATS subjects are shared by every test run on this server: a unique database name keeps
  // this file's tables (and so its subjects) its own.
  const database = `c${Math.random().toString(36).slice(2, 10)}`;
  try {
    await catalog.createDatabase({ name: database, location: '', properties: {} });
    await catalog.createSource({ source: source(`${database}_src`, 'events') });
  } catch (err) {
    await stack.stop();
    throw err;
  }

  let owners = 0;
  const context = (settings: Partial<CoordinatorSettings> = {}, owner = `test-owner-${++owners}`): CoordinatorContext => ({
    catalog,
    storage,
    logger: silent,
    settings: { ...TEST_SETTINGS, ...settings },
    owner,
    now: Date.now,
  });

  return {
    catalog,
    storage,
    base,
    nats: stack.nats,
    database,
    context,
    async startCoordinator(settings = {}, owner, options = {}) {
      const own = await connectNats(NATS_URL, 'commit-test-coordinator');
      let address: string | undefined;
      const replica = options.replica ? { advertisedAddress: () => address, peers: new CommitPeers({ deadlineMs: 20_000 }) } : {};
      const coordinator = new CommitCoordinator({ ...context(settings, owner), ...replica }, natsAnnouncer(own));
      const sub = listenForHeartbeats(own, coordinator);
      const server = await startGrpcServer({
        host: '127.0.0.1',
        port: 0,
        protoFiles: ['sluice/v1/commit.proto'],
        services: [commitBinding(coordinator)],
        logger: silent,
      });
      address = `127.0.0.1:${server.port}`;
      const client = createClient(CommitServiceService, address, { deadlineMs: 20_000, retries: 0 });
      let stopped: Promise<void> | undefined;
      return stack.own({
        coordinator,
        client,
        stop: () =>
          (stopped ??= (async () => {
            client.close();
            await server.stop(500);
            sub.unsubscribe();
            await coordinator.stop();
            await own.drain();
          })()),
      });
    },
    async createTable(name, options = {}) {
      const ref = { database, table: name };
      const columns = [field(0, 'id', 'long', true), field(0, 'part', 'string')];
      const partitionSpec = { specId: 0, fields: [{ sourceId: 0, fieldId: 0, name: 'part', transform: 'identity', sourceName: 'part' }] };
      await catalog.createTable(tableRequest(ref, columns, { partitionSpec, properties: options.properties ?? {} }));
      if (options.job) {
        const start = { from: StartFrom.START_FROM_EARLIEST };
        await catalog.createJob({ job: job(options.job, `${database}_src`, ref, { start, bufferBytes: options.bufferBytes ?? 0 }) });
        await recordStarts(catalog, options.job, 'events', options.starts ?? { 0: 0, 1: 0 });
      }
      return ref;
    },
    stop: () => stack.stop(),
  };
}

const COLUMNS = [
  { fieldId: 1, name: 'id', type: parsePrimitive('long'), required: true },
  { fieldId: 2, name: 'part', type: parsePrimitive('string'), required: false },
];

/**
 * A real Parquet data file of `worker` under the table location holding one row per offset in
 * [start, end) (id = offset), so tests can tell exactly which records a table holds.
 */
export function writeDataFile(
  stack: CommitStack,
  ref: TableRef,
  part: string,
  start: number,
  end: number,
  worker = 'w1',
): Promise<DataFile> {
  return writeTableDataFile(stack.catalog, stack.storage, ref, worker, {
    rows: Array.from({ length: end - start }, (_, i) => [BigInt(start + i), part]),
    partitionPath: `part=${part}`,
    partition: [{ fieldId: 1000, name: 'part', value: { kind: { $case: 'stringValue', value: part } } }],
  });
}

export const range = (partition: number, start: number, end: number, topic = 'events'): OffsetRange => ({
  topic,
  partition,
  startOffset: start,
  endOffset: end,
});

export function heartbeat(stack: CommitStack, ref: TableRef, job: string, workerId: string, alive = true, bufferedBytes = 0): void {
  publish(
    stack.nats,
    subjects.workers(ref),
    WorkerHeartbeat.encode({ table: ref, job, workerId, sentAtMs: Date.now(), bufferedBytes, alive }).finish(),
  );
}

/** Collects decoded events from a subject; `next(pred)` waits for the first match. */
export function collect<T>(stack: CommitStack, subject: string, decode: (b: Uint8Array) => T) {
  const seen: T[] = [];
  const sub = stack.nats.subscribe(subject);
  void (async () => {
    for await (const msg of sub) seen.push(decode(msg.data));
  })();
  return {
    seen,
    next: (pred: (e: T) => boolean = () => true, timeoutMs = 15_000): Promise<T> =>
      waitFor(`a matching event on ${subject}`, () => seen.find(pred), { timeoutMs, intervalMs: 10 }),
    stop: () => sub.unsubscribe(),
  };
}

export const events = {
  flush: (stack: CommitStack, ref: TableRef) => collect(stack, subjects.flush(ref), (b) => FlushEvent.decode(b)),
  committed: (stack: CommitStack, ref: TableRef) => collect(stack, subjects.committed(ref), (b) => CommittedEvent.decode(b)),
  rewind: (stack: CommitStack, job: string) => collect(stack, subjects.rewind(job), (b) => RewindEvent.decode(b)),
};

/** The ids (= offsets) of every row in the table's current snapshot, sorted, read back from the Parquet files. */
export async function tableIds(stack: CommitStack, ref: TableRef): Promise<number[]> {
  const { metadata } = await loadTable(stack.catalog, stack.storage, ref);
  const snapshot = currentSnapshot(metadata);
  if (!snapshot) return [];
  const { dataFiles } = await snapshotFiles(stack.storage, snapshot);
  const tmp = tempDir('commit-read');
  try {
    const paths: string[] = [];
    for (const [i, f] of dataFiles.entries()) {
      const p = join(tmp.path, `${i}.parquet`);
      await writeFile(p, await stack.storage.read(f.dataFile.filePath));
      paths.push(p);
    }
    if (paths.length === 0) return [];
    const rows = await readRows(paths, COLUMNS);
    return rows.map((r) => Number(r[0])).sort((a, b) => a - b);
  } finally {
    tmp.remove();
  }
}

export const ids = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);

/** Waits until a coordinator has seen `n` live workers of the job (heartbeats travel through NATS). */
export async function waitForWorkers(coord: RunningCoordinator, ref: TableRef, jobName: string, n: number): Promise<void> {
  await waitFor(
    `the coordinator to see ${n} live workers of ${jobName}`,
    () => coord.coordinator.table(ref).pipeline(jobName).workers.live(Date.now()).length >= n,
    { intervalMs: 10 },
  );
}
