/**
 * The one in-process stack: what every multi-service test starts from — a directory of its own,
 * a fresh PostgreSQL database, a catalog over them and a NATS connection — plus the starters of
 * services.ts bound to that catalog, everything stopped by one stop() in reverse order of start.
 * The per-service harnesses (services/<name>/test) add their own pieces: the commit tests'
 * coordinators, the transformation tests' recording commit service, the ingestion tests'
 * recording worker. (The process-level mesh, child processes a test can kill -9, is mesh.ts.)
 */
import type { DevBroker, DevBrokerOptions } from '#kafka-broker/index.js';
import { startDevBroker } from '#kafka-broker/index.js';
import type { ClientOptions } from '#shared/grpc/client.js';
import { connectNats, type NatsConnection } from '#shared/nats.js';
import { createTestDatabase, type TestDatabase } from './postgres.js';
import {
  type CatalogClient,
  type CommitClient,
  type IngestionClient,
  type IngestionPeers,
  type ServiceHandle,
  type StartOptions,
  startCatalog,
  startCommit,
  startIngestion,
  startTransformation,
  type TransformationClient,
} from './services.js';
import { NATS_URL } from './nats.js';
import { tempDir } from './temp.js';

/** Anything a stack stops: services, servers, fakes. */
export interface Stoppable {
  stop(): Promise<void> | void;
}

/** The catalog a stack runs: its address and a client at least. */
export interface CatalogLike extends Stoppable {
  readonly address: string;
  readonly client: CatalogClient;
}

/** Where a catalog starter puts the catalog's state. */
export interface StackPlace {
  /** The stack's directory (warehouse below it). */
  dir: string;
  databaseUrl: string;
}

export interface StackOptions<C extends CatalogLike> {
  /** Names the database (<name>_<random>) and the directory (sluice-<name>-XXXXXX). */
  name: string;
  /**
   * Starts the catalog; the default is the catalog service with its warehouse at <dir>/warehouse.
   * startCatalogHandlers fits here when a test needs the pool or mounted storage.
   */
  catalog?: (place: StackPlace) => Promise<C>;
  /** The default catalog's client options (services.ts's defaults unless set). */
  catalogClient?: ClientOptions;
}

export interface Stack<C extends CatalogLike = ServiceHandle<CatalogClient>> {
  readonly dir: string;
  readonly db: TestDatabase;
  readonly catalog: C;
  /** The test's own NATS connection (drained on stop). */
  readonly nats: NatsConnection;
  /** Stops `thing` with the stack, before what was started earlier; returns it. */
  own<T extends Stoppable>(thing: T): T;
  /** The commit service of this stack's catalog. */
  startCommit(options?: StartOptions): Promise<ServiceHandle<CommitClient>>;
  /** A transformation service of this stack's catalog, reporting to `commitAddress`. */
  startTransformation(options: { commitAddress: string } & StartOptions): Promise<ServiceHandle<TransformationClient>>;
  /** An ingestion service of this stack's catalog. */
  startIngestion(options: Omit<IngestionPeers, 'catalogAddress'> & StartOptions): Promise<ServiceHandle<IngestionClient>>;
  /** The Kafka-protocol dev broker, over TCP on loopback. */
  startBroker(options?: DevBrokerOptions): Promise<DevBroker>;
  /** Stops everything the stack started or owns, newest first, then drops the database and removes the directory. */
  stop(): Promise<void>;
}

export async function startStack<C extends CatalogLike = ServiceHandle<CatalogClient>>(options: StackOptions<C>): Promise<Stack<C>> {
  const owned: Stoppable[] = [];
  const own = <T extends Stoppable>(thing: T): T => {
    owned.push(thing);
    return thing;
  };
  // Everything is stopped even when something fails to stop; the first failure is reported.
  const stop = async () => {
    let failure: unknown;
    for (const thing of owned.splice(0).reverse()) {
      try {
        await thing.stop();
      } catch (err) {
        failure ??= err;
      }
    }
    if (failure) throw failure;
  };
  try {
    const dir = tempDir(options.name.replace(/^sluice_/, ''));
    own({ stop: () => dir.remove() });
    const db = await createTestDatabase(options.name);
    own({ stop: () => db.drop() });
    const place = { dir: dir.path, databaseUrl: db.url };
    // Without a starter of its own, C is the default: the catalog service.
    const catalog = own(
      options.catalog
        ? await options.catalog(place)
        : ((await startCatalog({
            databaseUrl: db.url,
            warehouse: `${dir.path}/warehouse`,
            client: options.catalogClient,
          })) as unknown as C),
    );
    const nats = await connectNats(NATS_URL, `${options.name}-test`);
    own({ stop: () => nats.drain() });
    return {
      dir: dir.path,
      db,
      catalog,
      nats,
      own,
      startCommit: async (start = {}) => own(await startCommit({ catalogAddress: catalog.address, ...start })),
      startTransformation: async (start) => own(await startTransformation({ catalogAddress: catalog.address, ...start })),
      startIngestion: async (start) => own(await startIngestion({ catalogAddress: catalog.address, ...start })),
      startBroker: async (brokerOptions) => own(await startDevBroker(brokerOptions)),
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
