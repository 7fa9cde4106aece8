/**
 * The whole mesh for end-to-end tests: catalog, ingestion, transformation and commit as real
 * child processes (the compiled `dist/services/<name>/src/main.js`, launched as `sluice up`
 * launches them) on ports chosen up front, over a fresh PostgreSQL database, a temporary warehouse,
 * the real NATS server and an in-process Kafka-protocol dev broker.
 *
 * A test can SIGKILL any service and start it again on the same port with the same
 * environment, as an operator's supervisor would. Each process's output is kept (the tail
 * of it) and printed only when a test fails (see printLogsOnFailure). Whatever happens, stop()
 * leaves nothing behind: no process, no database, no warehouse. If the test process exits
 * without calling it, the children are killed on the way out, and if it is killed itself, the
 * services see their stdin close and stop (SLUICE_EXIT_WITH_PARENT).
 */
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { startDevBroker, type DevBroker } from '#kafka-broker/index.js';
import { CatalogServiceService } from '#shared/gen/sluice/v1/catalog.js';
import { CommitServiceService } from '#shared/gen/sluice/v1/commit.js';
import { IngestionServiceService } from '#shared/gen/sluice/v1/ingestion.js';
import { loadConfig } from '#shared/config.js';
import { CLIENT_SECURITY_KEYS, type ClientSecurity, clientSecurity, createClient, type ServiceClient } from '#shared/grpc/client.js';
import { SERVICES, type ServiceName, spawnProgram, startupTimeoutMs, waitUntilServing } from '#cli/launch.js';
import { killOnExit } from './exit-cleanup.js';
import { NATS_URL } from './nats.js';
import { freePort } from './ports.js';
import { createTestDatabase, type TestDatabase } from './postgres.js';

/** The order their output is printed in; all four are spawned at once. */
export const SERVICE_NAMES = SERVICES;
export type { ServiceName };

const PORT_VARIABLES: Record<ServiceName, string> = {
  catalog: 'CATALOG_PORT',
  ingestion: 'INGESTION_PORT',
  transformation: 'TRANSFORMATION_PORT',
  commit: 'COMMIT_PORT',
};
const ADDRESS_VARIABLES: Record<ServiceName, string> = {
  catalog: 'CATALOG_ADDRESS',
  ingestion: 'INGESTION_ADDRESS',
  transformation: 'TRANSFORMATION_ADDRESS',
  commit: 'COMMIT_ADDRESS',
};

/** Settings that make a test mesh quick to react; any of them can be overridden. */
const TEST_DEFAULTS: Record<string, string> = {
  SLUICE_BIND_HOST: '127.0.0.1',
  LOG_LEVEL: 'info',
  SLUICE_SHUTDOWN_TIMEOUT_MS: '5000',
  COMMIT_DEFAULT_INTERVAL_MS: '1000',
  COMMIT_FLUSH_TIMEOUT_MS: '3000',
  COMMIT_WORKER_TTL_MS: '3000',
  COMMIT_LEASE_TTL_MS: '10000',
  // Maintenance (expiry, compaction, orphan cleanup) runs only when a test asks for it.
  COMMIT_MAINTENANCE_INTERVAL_MS: '0',
  TRANSFORMATION_HEARTBEAT_MS: '500',
  SLUICE_EXIT_WITH_PARENT: '1',
};

/** Bytes of output kept per service; older output is dropped (the tail explains a failure). */
const LOG_TAIL_BYTES = 256 * 1024;

export type CatalogClient = ServiceClient<typeof CatalogServiceService>;
export type IngestionClient = ServiceClient<typeof IngestionServiceService>;
export type CommitClient = ServiceClient<typeof CommitServiceService>;

export interface MeshOptions {
  /** Partitions of topics the dev broker creates on its own (default 1). Ignored with kafkaBrokers. */
  partitions?: number;
  /**
   * Bootstrap servers of an external Kafka, comma-separated ("host:9092,host2:9092"). When set,
   * the mesh starts no dev broker: every service (and clientEnv) gets KAFKA_BROKERS set to this
   * value, and `mesh.broker` is undefined, so topics are created and records produced through
   * that Kafka's own clients. Unset (the default): an in-process dev broker is started.
   */
  kafkaBrokers?: string;
  /** Extra or overriding environment variables for every service. */
  env?: Record<string, string>;
  /**
   * Processes of each service (default 1), each on a port of its own; every peer address the
   * services and the mesh's clients get lists them all (IP:port,IP:port), as replicas behind one
   * Service would be reached. kill, restart and pid take the replica's index.
   */
  replicas?: number;
  /**
   * Variables of the mesh's own clients (catalog, ingestion, commit) and of clientEnv (the
   * CLI), over the services' own: TLS and token of a secured mesh (test/support/tls.ts).
   */
  clientEnv?: Record<string, string>;
}

/** B is undefined for a mesh started with MeshOptions.kafkaBrokers (no dev broker). */
export interface TestMesh<B extends DevBroker | undefined = DevBroker> {
  readonly db: TestDatabase;
  /** Temporary directory of this mesh; the warehouse is below it. */
  readonly dir: string;
  readonly warehouse: string;
  /** The in-process dev broker; undefined when the mesh uses an external Kafka (kafkaBrokers). */
  readonly broker: B;
  /** The KAFKA_BROKERS every service was given: the dev broker's address or options.kafkaBrokers. */
  readonly kafkaBrokers: string;
  readonly addresses: Readonly<Record<ServiceName, string>>;
  /** What a client process (the CLI) needs to find this mesh: the addresses, KAFKA_BROKERS and MeshOptions.clientEnv. */
  readonly clientEnv: Readonly<Record<string, string>>;
  readonly catalog: CatalogClient;
  readonly ingestion: IngestionClient;
  readonly commit: CommitClient;
  pid(name: ServiceName, replica?: number): number;
  /** SIGKILL (kill -9) one service (its replica `replica`, default 0) and wait until it is gone. */
  kill(name: ServiceName, replica?: number): Promise<void>;
  /** Starts a killed service again, same port and environment, and waits for SERVING. */
  restart(name: ServiceName, replica?: number): Promise<void>;
  /**
   * Starts one more process of a service beside the mesh's own (same environment, a port of its
   * own, e.g. a second ingestion process in a job's consumer group) and waits for SERVING. Its
   * output is kept and printed with the others', a crash of it fails assertNoCrash, and stop()
   * stops it with the rest.
   */
  addReplica(name: ServiceName): Promise<ServiceReplica>;
  /** Throws if a service exited without being told to (a crash), naming it and its exit. */
  assertNoCrash(): void;
  /** The kept output of every process, with a header per service. */
  logs(): string;
  /** Graceful stop (SIGTERM, then SIGKILL after a grace period), then removes everything. Idempotent. */
  stop(): Promise<void>;
}

/** An extra process of a service (TestMesh.addReplica). */
export interface ServiceReplica {
  /** How its output and crashes are labelled, e.g. "ingestion#2". */
  readonly label: string;
  readonly address: string;
  pid(): number;
  /** SIGKILL (kill -9) it and wait until it is gone. */
  kill(): Promise<void>;
}

/** startMesh failed (and cleaned up): which directory and database it had made, and why. */
export class MeshStartError extends Error {
  constructor(
    message: string,
    readonly dir: string,
    readonly database: string | undefined,
  ) {
    super(message);
    this.name = 'MeshStartError';
  }
}

/** One service: its process (while running), its kept output and its history. */
class ServiceProcess {
  child: ChildProcess | null = null;
  incarnation = 0;
  /** Exits nobody asked for, as "code 1" / "SIGSEGV". */
  readonly crashes: string[] = [];
  private readonly chunks: string[] = [];
  private bytes = 0;
  private expectingExit = false;
  /** stdout of this incarnation until it logs that it is serving; null after that. */
  private startOutput: string | null = null;
  private listening: Promise<void> = Promise.resolve();
  private markListening: () => void = () => {};

  constructor(
    readonly name: ServiceName,
    readonly address: string,
    private readonly env: Record<string, string>,
    /** The TLS the harness's health checks use (the services' own settings). */
    private readonly security: ClientSecurity | undefined,
    /** What its output and crashes are labelled with: the name, or "<name>#<n>" for a replica. */
    readonly label: string = name,
  ) {}

  /** The service logs "<name> serving" at info, once it holds its port. */
  private get announcesServing(): boolean {
    return ['trace', 'debug', 'info'].includes(this.env.LOG_LEVEL ?? 'info');
  }

  /** How many services this start shares the machine with (itself included). */
  private startingTogether = 1;

  start(startingTogether = 1): void {
    this.startingTogether = startingTogether;
    this.incarnation++;
    this.expectingExit = false;
    this.startOutput = this.announcesServing ? '' : null;
    this.listening = new Promise((resolve) => (this.markListening = resolve));
    this.note(`--- start #${this.incarnation} ---`);
    const child = spawnProgram(this.name, [], {
      env: this.env,
      // A stdin pipe with SLUICE_EXIT_WITH_PARENT: if this process dies, even by SIGKILL, the
      // pipe closes and the service stops instead of living on as an orphan.
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    child.stdout!.setEncoding('utf8').on('data', (text: string) => {
      this.keep(text);
      this.watchForServing(text);
    });
    child.stderr!.setEncoding('utf8').on('data', (text: string) => this.keep(text));
    child.once('exit', (code, signal) => {
      const how = signal ?? `code ${code}`;
      this.note(`--- exited (${how}) ---`);
      if (!this.expectingExit) this.crashes.push(how);
      if (this.child === child) this.child = null;
    });
    this.child = child;
    killOnExit(child);
  }

  /**
   * Resolves once the service answers SERVING; rejects at once if the process exits first
   * (a port taken meanwhile, a bad start), rather than after the whole timeout.
   */
  async serving(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) throw new Error(`${this.label} is not running`);
    const ac = new AbortController();
    const exited = once(child, 'exit', { signal: ac.signal }).then(([code, signal]) => {
      const said = this.output()
        .trim()
        .split('\n')
        .filter((line) => !line.startsWith('---'))
        .slice(-3)
        .join(' | ');
      throw new Error(`${this.label} exited (${signal ?? `code ${code}`}) before it was SERVING${said ? `: ${said}` : ''}`);
    });
    // SERVING on the address alone could be another process that took the port after
    // freePort() released it; our own "serving" line proves the port is this process's.
    const ours = this.announcesServing ? this.listening : Promise.resolve();
    const timeoutMs = startupTimeoutMs(this.startingTogether);
    const timeout = sleep(timeoutMs, undefined, { signal: ac.signal }).then(() => {
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for the ${this.label} service at ${this.address} (pid ${child.pid}) to log that it is serving`,
      );
    });
    try {
      await Promise.race([ours.then(() => waitUntilServing(this.name, this.address, timeoutMs, this.security)), exited, timeout]);
    } finally {
      timeout.catch(() => {});
      ac.abort();
      exited.catch(() => {});
    }
  }

  /** Sends a signal the harness means to send, and waits for the exit. */
  async signal(signal: NodeJS.Signals, graceMs = Infinity): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    this.expectingExit = true;
    const exited = once(child, 'exit');
    child.kill(signal);
    if (graceMs === Infinity) {
      await exited;
      return;
    }
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    await exited;
    clearTimeout(timer);
  }

  private watchForServing(text: string): void {
    if (this.startOutput === null) return;
    this.startOutput += text;
    if (this.startOutput.includes(`"msg":"${this.name} serving"`)) {
      this.startOutput = null;
      this.markListening();
    }
  }

  output(): string {
    return this.chunks.join('');
  }

  private note(line: string): void {
    this.keep(`${line}\n`);
  }

  private keep(text: string): void {
    this.chunks.push(text);
    this.bytes += text.length;
    while (this.bytes > LOG_TAIL_BYTES && this.chunks.length > 1) this.bytes -= this.chunks.shift()!.length;
  }
}

/**
 * Starts a mesh. Ports are picked free up front (each service must know the others'
 * addresses when it starts), so a process elsewhere can take one in between; such a start is
 * cleaned up and tried again with new ports.
 */
export function startMesh(options: MeshOptions & { kafkaBrokers: string }): Promise<TestMesh<undefined>>;
export function startMesh(options?: MeshOptions & { kafkaBrokers?: undefined }): Promise<TestMesh>;
export function startMesh(options?: MeshOptions): Promise<TestMesh<DevBroker | undefined>>;
export async function startMesh(options: MeshOptions = {}): Promise<TestMesh<DevBroker | undefined>> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startMeshOnce(options);
    } catch (err) {
      if (attempt >= 3 || !(err instanceof MeshStartError) || !/already in use/.test(err.message)) throw err;
    }
  }
}

async function startMeshOnce(options: MeshOptions): Promise<TestMesh<DevBroker | undefined>> {
  const dir = await mkdtemp(join(tmpdir(), 'sluice-e2e-'));
  const warehouse = join(dir, 'warehouse');
  let db: TestDatabase | undefined;
  let broker: DevBroker | undefined;
  const services = new Map<ServiceName, ServiceProcess[]>();
  /** Every process: the four services, then the replicas in the order they were added. */
  const processes: ServiceProcess[] = [];
  const clients: { close(): void }[] = [];
  let stopping: Promise<void> | undefined;

  const logs = () => processes.map((s) => `===== ${s.label} (${s.address}, pid ${s.child?.pid ?? '-'}) =====\n${s.output()}`).join('\n');

  const stop = () =>
    (stopping ??= (async () => {
      for (const c of clients) c.close();
      // All at once: each service stops gracefully on its own (and copes with its peers going
      // away); a service still up after the grace period is killed.
      await Promise.all(processes.map((s) => s.signal('SIGTERM', 10_000)));
      await broker?.stop();
      await db?.drop();
      await rm(dir, { recursive: true, force: true });
    })());

  try {
    db = await createTestDatabase('sluice_e2e');
    if (options.kafkaBrokers === undefined)
      broker = await startDevBroker({ defaultPartitions: options.partitions ?? 1, onError: () => {} });
    const kafkaBrokers = options.kafkaBrokers ?? broker!.address;
    const replicas = options.replicas ?? 1;
    const ports = Object.fromEntries(
      await Promise.all(
        SERVICE_NAMES.map(async (name) => [name, await Promise.all(Array.from({ length: replicas }, () => freePort()))] as const),
      ),
    ) as Record<ServiceName, number[]>;
    const addresses = Object.fromEntries(
      SERVICE_NAMES.map((name) => [name, ports[name].map((port) => `127.0.0.1:${port}`).join(',')]),
    ) as Record<ServiceName, string>;
    const located: Record<string, string> = {};
    for (const name of SERVICE_NAMES) {
      located[PORT_VARIABLES[name]] = String(ports[name][0]);
      located[ADDRESS_VARIABLES[name]] = addresses[name];
    }
    const clientEnv = { ...located, KAFKA_BROKERS: kafkaBrokers, ...options.clientEnv };
    // No exporter from the developer's environment; a test that collects spans names its own.
    const inherited: Record<string, string> = { ...(process.env as Record<string, string>) };
    delete inherited.OTEL_EXPORTER_OTLP_ENDPOINT;
    const env: Record<string, string> = {
      ...inherited,
      ...TEST_DEFAULTS,
      ...clientEnv,
      DATABASE_URL: db.url,
      NATS_URL,
      SLUICE_WAREHOUSE: warehouse,
      ...options.env,
    };
    const healthSecurity = securityOf(env);
    for (const name of SERVICE_NAMES)
      services.set(
        name,
        ports[name].map(
          (port, i) =>
            new ServiceProcess(
              name,
              `127.0.0.1:${port}`,
              { ...env, [PORT_VARIABLES[name]]: String(port) },
              healthSecurity,
              i === 0 ? name : `${name}#${i + 1}`,
            ),
        ),
      );
    processes.push(...[...services.values()].flat());
    for (const s of processes) s.start(processes.length);
    await Promise.all(processes.map((s) => s.serving()));

    const service = (name: ServiceName, replica = 0) => {
      const s = services.get(name)![replica];
      if (!s) throw new Error(`the mesh has no ${name} replica ${replica}`);
      return s;
    };
    const track = <T extends { close(): void }>(client: T) => (clients.push(client), client);
    const rpc = { deadlineMs: 15_000, retries: 20, security: securityOf({ ...env, ...options.clientEnv }) };
    const mesh: TestMesh<DevBroker | undefined> = {
      db,
      dir,
      warehouse,
      broker,
      kafkaBrokers,
      addresses,
      clientEnv,
      catalog: track(createClient(CatalogServiceService, addresses.catalog, rpc)),
      ingestion: track(createClient(IngestionServiceService, addresses.ingestion, rpc)),
      commit: track(createClient(CommitServiceService, addresses.commit, rpc)),
      pid: (name, replica) => service(name, replica).child?.pid ?? 0,
      kill: (name, replica) => service(name, replica).signal('SIGKILL'),
      async restart(name, replica) {
        const s = service(name, replica);
        if (s.child) throw new Error(`${name} is still running (pid ${s.child.pid}); kill it first`);
        s.start();
        await s.serving();
      },
      async addReplica(name) {
        if (stopping) throw new Error(`the mesh is stopping; no ${name} replica can start`);
        const port = await freePort();
        const address = `127.0.0.1:${port}`;
        const label = `${name}#${processes.filter((s) => s.name === name).length + 1}`;
        const replica = new ServiceProcess(name, address, { ...env, [PORT_VARIABLES[name]]: String(port) }, healthSecurity, label);
        processes.push(replica);
        replica.start();
        await replica.serving();
        return { label, address, pid: () => replica.child?.pid ?? 0, kill: () => replica.signal('SIGKILL') };
      },
      assertNoCrash() {
        const crashed = processes.filter((s) => s.crashes.length > 0);
        if (crashed.length > 0)
          throw new Error(`service crashed: ${crashed.map((s) => `${s.label} (${s.crashes.join(', ')})`).join('; ')}`);
      },
      logs,
      stop,
    };
    return mesh;
  } catch (err) {
    const message = (err as Error).message;
    process.stderr.write(`mesh failed to start: ${message}\n${logs()}\n`);
    await stop().catch(() => {});
    throw new MeshStartError(message, dir, db?.name);
  }
}

/**
 * TLS and token from a mesh's variables. A setting that does not load (a test of bad TLS
 * settings) leaves plaintext here: the service itself refuses to start and says why.
 */
function securityOf(env: Record<string, string>): ClientSecurity | undefined {
  try {
    return clientSecurity(loadConfig(CLIENT_SECURITY_KEYS, env));
  } catch {
    return undefined;
  }
}

/**
 * Prints the mesh's process output after each failed test of the calling file, where the
 * runner shows it beside the failure. The getter lets before() create the mesh later.
 */
export function printLogsOnFailure(mesh: () => TestMesh | undefined): void {
  afterEach((t) => {
    const m = mesh();
    // `passed` is on TestContext since Node 20.12; the bundled types do not know it yet.
    if (m && (t as { passed?: boolean }).passed === false)
      process.stderr.write(`\n##### service output for failed test "${t.name}" #####\n${m.logs()}\n`);
  });
}
