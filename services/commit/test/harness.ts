/**
 * A real little mesh for the commit tests: the real catalog (fresh PostgreSQL database,
 * migrations, handlers over gRPC) with its warehouse published over HTTP (so icebird can read
 * it), real NATS, coordinators served over real gRPC, and workers played by the test: real
 * heartbeats on NATS, real Parquet files, real ReportDataFiles calls.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CatalogServiceService, StartFrom, Job } from '#shared/gen/sluice/v1/catalog.js';
import { CommitServiceService } from '#shared/gen/sluice/v1/commit.js';
import { CommittedEvent, FlushEvent, RewindEvent, WorkerHeartbeat } from '#shared/gen/sluice/v1/events.js';
import { MessageFormat, type DataFile, type OffsetRange, type TableRef } from '#shared/gen/sluice/v1/types.js';
import { subjects } from '#shared/events.js';
import { createClient, type ServiceClient } from '#shared/grpc/client.js';
import { bindService, startGrpcServer } from '#shared/grpc/server.js';
import { createLogger } from '#shared/logger.js';
import { connectNats, publish, type NatsConnection } from '#shared/nats.js';
import { createPool, migrate } from '#shared/pg.js';
import { ParquetFileWriter } from '#shared/parquet/writer.js';
import { parsePrimitive } from '#shared/iceberg/single-value.js';
import { currentSnapshot } from '#shared/iceberg/index.js';
import { snapshotFiles } from '#shared/iceberg/scan.js';
import { createStorage, type Storage } from '#shared/storage/index.js';
import { serveDirectory } from '#test-support/file-server.js';
import { createTestDatabase } from '#test-support/postgres.js';
import { NATS_URL } from '#test-support/services.js';
import { catalogHandlers, DEFAULT_JDBC_CATALOG_NAME } from '../../catalog/src/handlers.js';
import { CATALOG_MIGRATIONS } from '../../catalog/src/service.js';
import { natsAnnouncer } from '../src/announcer.js';
import { loadTable, type CatalogClient } from '../src/catalog.js';
import { readRows } from '../src/maintenance/rows.js';
import type { CoordinatorContext, CoordinatorSettings } from '../src/context.js';
import { CommitCoordinator } from '../src/coordinator.js';
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
  startCoordinator(settings?: Partial<CoordinatorSettings>, owner?: string): Promise<RunningCoordinator>;
  /** A table (id long, part string; partitioned by part) and, when named, a job writing it. */
  createTable(name: string, options?: { job?: string; properties?: Record<string, string>; bufferBytes?: number }): Promise<TableRef>;
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

const silent = createLogger('commit-test', (process.env.TEST_LOG_LEVEL as 'silent') ?? 'silent');

export async function startCommitStack(): Promise<CommitStack> {
  const dir = await mkdtemp(join(tmpdir(), 'sluice-commit-'));
  const http = await serveDirectory(dir);
  const base = `${http.url}/wh`;
  const storage = createStorage({ mounts: { [base]: join(dir, 'wh') } });

  const db = await createTestDatabase('sluice_commit');
  const pool = createPool(db.url, 20);
  await migrate(pool, 'catalog', CATALOG_MIGRATIONS);
  const catalogServer = await startGrpcServer({
    host: '127.0.0.1',
    port: 0,
    protoFiles: ['sluice/v1/catalog.proto'],
    services: [
      bindService(
        'sluice.v1.CatalogService',
        CatalogServiceService,
        catalogHandlers({ pool, storage, warehouse: base, jdbcCatalogName: DEFAULT_JDBC_CATALOG_NAME }),
      ),
    ],
    logger: silent,
  });
  const catalog = createClient(CatalogServiceService, `127.0.0.1:${catalogServer.port}`, { deadlineMs: 20_000 });
  const nats = await connectNats(NATS_URL, 'commit-test');
  // NATS subjects are shared by every test run on this server: a unique database name keeps
  // this file's tables (and so its subjects) its own.
  const database = `c${Math.random().toString(36).slice(2, 10)}`;
  await catalog.createDatabase({ name: database, location: '', properties: {} });
  await catalog.createSource({
    source: {
      name: `${database}_src`,
      brokers: [],
      topic: 'events',
      format: MessageFormat.MESSAGE_FORMAT_JSON,
      mode: 0 as never,
      properties: {},
      createdAtMs: 0,
    },
  });

  const running: RunningCoordinator[] = [];
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
    nats,
    database,
    context,
    async startCoordinator(settings = {}, owner) {
      const own = await connectNats(NATS_URL, 'commit-test-coordinator');
      const coordinator = new CommitCoordinator(context(settings, owner), natsAnnouncer(own));
      const sub = listenForHeartbeats(own, coordinator);
      const server = await startGrpcServer({
        host: '127.0.0.1',
        port: 0,
        protoFiles: ['sluice/v1/commit.proto'],
        services: [commitBinding(coordinator)],
        logger: silent,
      });
      const client = createClient(CommitServiceService, `127.0.0.1:${server.port}`, { deadlineMs: 20_000, retries: 0 });
      let stopped: Promise<void> | undefined;
      const handle: RunningCoordinator = {
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
      };
      running.push(handle);
      return handle;
    },
    async createTable(name, options = {}) {
      const ref = { database, table: name };
      const prim = (value: string) => ({ kind: { $case: 'primitive' as const, value } });
      await catalog.createTable({
        ref,
        schema: {
          schemaId: 0,
          fields: [
            { id: 0, name: 'id', required: true, type: prim('long'), doc: '' },
            { id: 0, name: 'part', required: false, type: prim('string'), doc: '' },
          ],
          identifierFieldIds: [],
        },
        partitionSpec: { specId: 0, fields: [{ sourceId: 0, fieldId: 0, name: 'part', transform: 'identity', sourceName: 'part' }] },
        location: '',
        properties: options.properties ?? {},
        ifNotExists: false,
      });
      if (options.job) {
        await catalog.createJob({
          job: Job.fromPartial({
            name: options.job,
            source: `${database}_src`,
            table: ref,
            start: { from: StartFrom.START_FROM_EARLIEST },
            bufferBytes: options.bufferBytes ?? 0,
          }),
        });
      }
      return ref;
    },
    async stop() {
      for (const r of running) await r.stop();
      await nats.drain();
      catalog.close();
      await catalogServer.stop(500);
      await pool.end();
      await db.drop();
      await http.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

const COLUMNS = [
  { fieldId: 1, name: 'id', type: parsePrimitive('long'), required: true },
  { fieldId: 2, name: 'part', type: parsePrimitive('string'), required: false },
];

/**
 * A real Parquet data file under the table location holding one row per offset in
 * [start, end) (id = offset), so tests can tell exactly which records a table holds.
 */
export async function writeDataFile(mesh: CommitStack, ref: TableRef, part: string, start: number, end: number): Promise<DataFile> {
  const { table } = await mesh.catalog.getTable({ ref });
  const tmp = await mkdtemp(join(tmpdir(), 'sluice-commit-file-'));
  try {
    const path = join(tmp, 'f.parquet');
    const writer = await ParquetFileWriter.open({
      path,
      columns: COLUMNS,
      partition: [{ fieldId: 1000, name: 'part', value: { kind: { $case: 'stringValue', value: part } } }],
      specId: 0,
    });
    for (let id = start; id < end; id++) writer.append([BigInt(id), part]);
    const file = await writer.close();
    const location = `${table!.location}/data/part=${part}/${start}-${end}-${Math.random().toString(36).slice(2, 8)}.parquet`;
    await mesh.storage.write(location, await readFile(path));
    return { ...file, filePath: location, fileFormat: 'parquet' };
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

export const range = (partition: number, start: number, end: number, topic = 'events'): OffsetRange => ({
  topic,
  partition,
  startOffset: start,
  endOffset: end,
});

export function heartbeat(mesh: CommitStack, ref: TableRef, job: string, workerId: string, alive = true, bufferedBytes = 0): void {
  publish(
    mesh.nats,
    subjects.workers(ref),
    WorkerHeartbeat.encode({ table: ref, job, workerId, sentAtMs: Date.now(), bufferedBytes, alive }).finish(),
  );
}

/** Collects decoded events from a subject; `next(pred)` waits for the first match. */
export function collect<T>(mesh: CommitStack, subject: string, decode: (b: Uint8Array) => T) {
  const seen: T[] = [];
  const waiters: { pred: (e: T) => boolean; resolve: (e: T) => void }[] = [];
  const sub = mesh.nats.subscribe(subject);
  void (async () => {
    for await (const msg of sub) {
      const e = decode(msg.data);
      seen.push(e);
      for (const w of [...waiters])
        if (w.pred(e)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(e);
        }
    }
  })();
  return {
    seen,
    next(pred: (e: T) => boolean = () => true, timeoutMs = 15_000): Promise<T> {
      const found = seen.find(pred);
      if (found) return Promise.resolve(found);
      return new Promise<T>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no matching event on ${subject} within ${timeoutMs} ms`)), timeoutMs);
        waiters.push({ pred, resolve: (e) => (clearTimeout(timer), resolve(e)) });
      });
    },
    stop: () => sub.unsubscribe(),
  };
}

export const events = {
  flush: (mesh: CommitStack, ref: TableRef) => collect(mesh, subjects.flush(ref), (b) => FlushEvent.decode(b)),
  committed: (mesh: CommitStack, ref: TableRef) => collect(mesh, subjects.committed(ref), (b) => CommittedEvent.decode(b)),
  rewind: (mesh: CommitStack, job: string) => collect(mesh, subjects.rewind(job), (b) => RewindEvent.decode(b)),
};

/** The ids (= offsets) of every row in the table's current snapshot, sorted, read back from the Parquet files. */
export async function tableIds(mesh: CommitStack, ref: TableRef): Promise<number[]> {
  const { metadata } = await loadTable(mesh.catalog, mesh.storage, ref);
  const snapshot = currentSnapshot(metadata);
  if (!snapshot) return [];
  const { dataFiles } = await snapshotFiles(mesh.storage, snapshot);
  const tmp = await mkdtemp(join(tmpdir(), 'sluice-commit-read-'));
  try {
    const paths: string[] = [];
    for (const [i, f] of dataFiles.entries()) {
      const p = join(tmp, `${i}.parquet`);
      await writeFile(p, await mesh.storage.read(f.dataFile.filePath));
      paths.push(p);
    }
    if (paths.length === 0) return [];
    const rows = await readRows(paths, COLUMNS);
    return rows.map((r) => Number(r[0])).sort((a, b) => a - b);
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

export const ids = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);

/** Waits until a coordinator has seen `n` live workers of the job (heartbeats travel through NATS). */
export async function waitForWorkers(coord: RunningCoordinator, ref: TableRef, job: string, n: number): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (coord.coordinator.table(ref).pipeline(job).workers.live(Date.now()).length >= n) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`coordinator did not see ${n} live workers of ${job}`);
}
