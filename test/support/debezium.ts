/**
 * Real Debezium for interop tests: a PostgreSQL cluster of the test's own with logical decoding
 * (startCdcPostgres) and Debezium's PostgreSQL connector in a Kafka Connect standalone worker
 * (startDebezium) that captures its tables into a Kafka broker (test/support/kafka.ts).
 *
 * - startCdcPostgres: `initdb` of a fresh cluster in a temporary directory, started on a free
 *   port on 127.0.0.1 with wal_level=logical and trust authentication (replication included).
 *   initdb and postgres refuse to run as root: initdb runs through `runuser -u postgres --` and
 *   the server is spawned with the postgres user's uid and gid, so the child this process holds
 *   is the postmaster itself (stop() and the exit cleanup signal it, not a wrapper). The shared
 *   server on 5432 is not touched.
 * - startDebezium: `java -cp <peers/debezium/target/classpath.txt>
 *   org.apache.kafka.connect.cli.ConnectStandalone worker.properties connector.properties`, with
 *   Kafka Connect's JsonConverter (schemas.enable=true: Debezium's default JSON with the
 *   schema/payload wrapper) for keys and values, offsets in a file of its own, and the REST API
 *   on a free port, which is polled until the connector and its task run. Its classes come from
 *   peers/debezium (`npm run peers` resolves them from Maven Central); nothing is committed.
 *
 * Both leave nothing behind: stop() ends the process and removes the directory; if the test
 * process exits first, the exit cleanup does, and if it is killed (kill -9), a detached watchdog.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { chownSync, existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { killOnExit, removeOnExit } from './exit-cleanup.js';
import { jvmArgs, quietLog4j2 } from './kafka.js';
import { freePort } from './ports.js';
import { tempDir } from './temp.js';
import { waitFor } from './wait.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
/** Written by `mvn package` in peers/debezium (run by `npm run peers`). */
export const DEBEZIUM_CLASSPATH_FILE = join(root, 'peers/debezium/target/classpath.txt');
const JAVA = process.env.DEBEZIUM_JAVA ?? 'java';
const LOG_TAIL_CHARS = 128 * 1024;

// ------------------------------------------------------------------ shared

function keepTail(): { keep(text: string): void; text(): string } {
  let output = '';
  return {
    keep(text) {
      output += text;
      if (output.length > LOG_TAIL_CHARS) output = output.slice(-LOG_TAIL_CHARS);
    },
    text: () => output,
  };
}

function tail(text: string, lines: number): string {
  return text.trim().split('\n').slice(-lines).join('\n');
}

/**
 * The exit cleanup cannot run when this process is killed (kill -9, a runner's timeout): a small
 * shell, detached, watches this process and the child, and if this process goes first it kills
 * the child (by its pid) and removes its directory. It ends by itself when the child does.
 */
function watchOrphan(childPid: number, dir: string): void {
  const alive = (pid: number) => `kill -0 ${pid} 2>/dev/null`;
  const script = `while ${alive(process.pid)} && ${alive(childPid)}; do sleep 1; done; if ${alive(childPid)}; then kill -9 ${childPid}; sleep 1; rm -rf '${dir}'; fi`;
  spawn('sh', ['-c', script], { detached: true, stdio: 'ignore' }).unref();
}

/** Sends `sig` and waits for the exit; SIGKILL after `graceMs`. */
async function signal(child: ChildProcess, sig: NodeJS.Signals, graceMs = 20_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill(sig);
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

// ------------------------------------------------------------------ PostgreSQL

export interface CdcPostgres {
  readonly port: number;
  /** postgres://postgres@127.0.0.1:<port>/postgres */
  readonly url: string;
  /** Runs SQL (one or more statements, no parameters) in database postgres. */
  sql(text: string): Promise<void>;
  /** Rows of one query, for checks. */
  query<R extends Record<string, unknown> = Record<string, unknown>>(text: string): Promise<R[]>;
  /** The tail of the server's output. */
  logs(): string;
  /** Fast shutdown (SIGINT; SIGKILL after 20 s), then removes the cluster's directory. Idempotent. */
  stop(): Promise<void>;
}

/** The newest PostgreSQL server binaries of the machine (Debian's /usr/lib/postgresql/<major>/bin). */
export function postgresBinDir(): string {
  const base = '/usr/lib/postgresql';
  const majors = existsSync(base)
    ? readdirSync(base)
        .filter((v) => existsSync(join(base, v, 'bin/initdb')))
        .sort((a, b) => Number(b) - Number(a))
    : [];
  if (majors.length === 0) throw new Error(`no PostgreSQL server binaries under ${base}/*/bin (apt-get install postgresql)`);
  return join(base, majors[0], 'bin');
}

/** uid and gid of an OS user (from /etc/passwd). */
function osUser(name: string): { uid: number; gid: number } {
  const line = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.startsWith(`${name}:`));
  if (!line) throw new Error(`there is no OS user ${name} to run PostgreSQL as`);
  const [, , uid, gid] = line.split(':');
  return { uid: Number(uid), gid: Number(gid) };
}

/** Server settings of the CDC cluster: logical decoding for Debezium, and quick rather than durable. Pure. */
export function cdcServerSettings(port: number, socketDir: string): Record<string, string | number> {
  return {
    port,
    listen_addresses: '127.0.0.1',
    unix_socket_directories: socketDir,
    wal_level: 'logical',
    max_replication_slots: 4,
    max_wal_senders: 4,
    max_connections: 20,
    shared_buffers: '32MB',
    // A throwaway cluster: durability buys nothing here.
    fsync: 'off',
    synchronous_commit: 'off',
    full_page_writes: 'off',
  };
}

/** Trust for every local and loopback connection, replication ones included. */
const PG_HBA = `local   all           all                 trust
local   replication   all                 trust
host    all           all   127.0.0.1/32  trust
host    replication   all   127.0.0.1/32  trust
`;

/** A fresh PostgreSQL cluster with wal_level=logical on a free port of 127.0.0.1, as superuser postgres with trust auth. */
export async function startCdcPostgres(options: { startTimeoutMs?: number } = {}): Promise<CdcPostgres> {
  const bin = postgresBinDir();
  const { uid, gid } = osUser('postgres');
  const dir = tempDir('cdc-postgres');
  const forgetDir = removeOnExit(dir.path);
  const dataDir = join(dir.path, 'data');
  const output = keepTail();
  let child: ChildProcess | null = null;
  let client: pg.Client | null = null;
  let stopped: Promise<void> | undefined;

  const stop = () => {
    stopped ??= (async () => {
      const c = client;
      client = null;
      await c?.end().catch(() => {});
      // SIGINT: fast shutdown, which disconnects clients (Debezium's replication connection too).
      if (child) await signal(child, 'SIGINT');
      forgetDir();
      dir.remove();
    })();
    return stopped;
  };

  try {
    chownSync(dir.path, uid, gid);
    const initdb = spawnSync(
      'runuser',
      ['-u', 'postgres', '--', join(bin, 'initdb'), '-D', dataDir, '-U', 'postgres', '--auth=trust', '--encoding=UTF8', '--no-sync'],
      { encoding: 'utf8', cwd: dir.path },
    );
    if (initdb.error || initdb.status !== 0)
      throw new Error(
        `initdb of ${dataDir} failed (${initdb.error?.message ?? `exit ${initdb.status}`}): ${tail(`${initdb.stdout}${initdb.stderr}`, 10)}`,
      );
    writeFileSync(join(dataDir, 'pg_hba.conf'), PG_HBA);

    for (let attempt = 1; ; attempt++) {
      const port = await freePort();
      const settings = cdcServerSettings(port, dir.path);
      const args = ['-D', dataDir, ...Object.entries(settings).flatMap(([k, v]) => ['-c', `${k}=${v}`])];
      output.keep(`--- postgres on port ${port} ---\n`);
      const server = spawn(join(bin, 'postgres'), args, { uid, gid, cwd: dir.path, stdio: ['ignore', 'pipe', 'pipe'] });
      child = server;
      killOnExit(server);
      if (server.pid) watchOrphan(server.pid, dir.path);
      let exited: string | null = null;
      server.stdout!.setEncoding('utf8').on('data', output.keep);
      server.stderr!.setEncoding('utf8').on('data', output.keep);
      server.once('exit', (code, sig) => {
        exited = sig ?? `code ${code}`;
        output.keep(`--- postgres exited (${exited}) ---\n`);
        if (child === server) child = null;
      });
      const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
      try {
        client = await waitFor(
          `the CDC PostgreSQL on port ${port} to accept connections`,
          async () => {
            if (exited) throw new Error(`postgres exited (${exited}) before it served:\n${tail(output.text(), 10)}`);
            const c = new pg.Client({ connectionString: url });
            c.on('error', () => {});
            try {
              await c.connect();
              await c.query('SELECT 1');
              return c;
            } catch {
              await c.end().catch(() => {});
              return undefined;
            }
          },
          { timeoutMs: options.startTimeoutMs ?? 60_000, intervalMs: 100 },
        );
      } catch (err) {
        if (child === server) await signal(server, 'SIGKILL');
        if (attempt < 3 && /could not bind|Address already in use/.test(output.text())) continue;
        throw err;
      }
      const c = client;
      return {
        port,
        url,
        async sql(text) {
          if (!client) throw new Error('the CDC PostgreSQL was stopped');
          await c.query(text);
        },
        async query(text) {
          if (!client) throw new Error('the CDC PostgreSQL was stopped');
          return (await c.query(text)).rows;
        },
        logs: output.text,
        stop,
      };
    }
  } catch (err) {
    await stop();
    throw err;
  }
}

// ------------------------------------------------------------------ Debezium on Kafka Connect

/** The peer was never fetched, or its build failed: tells the developer what to run. */
export class DebeziumPeerMissingError extends Error {
  constructor(detail: string) {
    super(`Debezium is not available (${detail}): run \`npm run peers\` (or \`mvn -q package\` in peers/debezium) first`);
    this.name = 'DebeziumPeerMissingError';
  }
}

function readClasspath(): string {
  if (!existsSync(DEBEZIUM_CLASSPATH_FILE)) throw new DebeziumPeerMissingError(`${DEBEZIUM_CLASSPATH_FILE} does not exist`);
  const classpath = readFileSync(DEBEZIUM_CLASSPATH_FILE, 'utf8').trim();
  const missing = classpath.split(':').find((jar) => !existsSync(jar));
  if (!classpath || missing) throw new DebeziumPeerMissingError(missing ? `${missing} is missing` : `${DEBEZIUM_CLASSPATH_FILE} is empty`);
  return classpath;
}

export interface DebeziumOptions {
  /** Bootstrap servers of the Kafka the changes go to. */
  kafkaBrokers: string;
  /** Port of the PostgreSQL to capture (on 127.0.0.1, user postgres, trust auth). */
  pgPort: number;
  /** Database to capture (default postgres). */
  database?: string;
  /** Debezium's topic.prefix: a table's changes go to <prefix>.<schema>.<table>. */
  topicPrefix: string;
  /** table.include.list entries, e.g. ["public.sales"]. */
  tables: string[];
  /** Extra or overriding connector properties. */
  connector?: Record<string, string | number | boolean>;
  /** How long to wait for the connector and its task to run (default 180 s: a JVM starts slowly on a loaded 2-core machine). */
  startTimeoutMs?: number;
  /** Maximum JVM heap in MiB (default 512). */
  heapMb?: number;
}

export interface RealDebezium {
  /** The connector's name (its REST resource). */
  readonly name: string;
  /** The Connect worker's REST API, http://127.0.0.1:<port>. */
  readonly restUrl: string;
  /** Milliseconds from spawning the JVM to the connector's task running. */
  readonly startMs: number;
  /** GET /connectors/<name>/status. */
  status(): Promise<ConnectorStatus>;
  /** The tail of the worker's output. */
  logs(): string;
  /** Graceful stop (SIGTERM; SIGKILL after 20 s), then removes its directory. Idempotent. */
  stop(): Promise<void>;
}

export interface ConnectorStatus {
  name: string;
  connector: { state: string; trace?: string };
  tasks: { id: number; state: string; trace?: string }[];
}

/** Connect logs at WARN (Debezium's and the worker's warnings), plus the lines that say it started and what it streams. */
const LOG4J2_YAML = quietLog4j2({
  'org.apache.kafka.connect.runtime.Connect': 'INFO',
  'io.debezium.connector.postgresql.PostgresConnectorTask': 'INFO',
  'io.debezium.pipeline.ChangeEventSourceCoordinator': 'INFO',
  'org.apache.kafka.clients': 'ERROR',
  'org.apache.kafka.common.utils.AppInfoParser': 'ERROR',
  'org.reflections': 'ERROR',
});

function properties(props: Record<string, string | number | boolean>): string {
  return `${Object.entries(props)
    .map(([k, v]) => `${k}=${v}`)
    .join('\n')}\n`;
}

/** worker.properties of a standalone Connect worker. Pure. */
export function workerProperties(p: { kafkaBrokers: string; restPort: number; offsetsFile: string }): string {
  return properties({
    'bootstrap.servers': p.kafkaBrokers,
    listeners: `http://127.0.0.1:${p.restPort}`,
    'rest.advertised.host.name': '127.0.0.1',
    // Debezium's default JSON: { schema, payload } for keys and values.
    'key.converter': 'org.apache.kafka.connect.json.JsonConverter',
    'key.converter.schemas.enable': true,
    'value.converter': 'org.apache.kafka.connect.json.JsonConverter',
    'value.converter.schemas.enable': true,
    'offset.storage.file.filename': p.offsetsFile,
    'offset.flush.interval.ms': 1000,
    // The connector is on the worker's classpath (no plugin.path): found through the
    // ServiceLoader manifests its jars and Kafka's carry, without scanning every class.
    'plugin.discovery': 'service_load',
    'task.shutdown.graceful.timeout.ms': 5000,
    // Send each change at once.
    'producer.linger.ms': 0,
  });
}

/** connector.properties of Debezium's PostgreSQL connector over pgoutput. Pure. */
export function connectorProperties(p: {
  name: string;
  pgPort: number;
  database: string;
  topicPrefix: string;
  tables: string[];
  slot: string;
  extra: Record<string, string | number | boolean>;
}): string {
  return properties({
    name: p.name,
    'connector.class': 'io.debezium.connector.postgresql.PostgresConnector',
    'tasks.max': 1,
    'plugin.name': 'pgoutput',
    'database.hostname': '127.0.0.1',
    'database.port': p.pgPort,
    'database.user': 'postgres',
    'database.password': '',
    'database.dbname': p.database,
    'topic.prefix': p.topicPrefix,
    'table.include.list': p.tables.join(','),
    'snapshot.mode': 'initial',
    'slot.name': p.slot,
    'publication.name': `${p.slot}_publication`,
    'publication.autocreate.mode': 'filtered',
    // decimal.handling.mode stays `precise`: decimals as base64 bytes with their scale in the schema.
    ...p.extra,
  });
}

/** Starts a standalone Connect worker running Debezium's PostgreSQL connector; resolves once its task runs. */
export async function startDebezium(options: DebeziumOptions): Promise<RealDebezium> {
  const classpath = readClasspath();
  for (let attempt = 1; ; attempt++) {
    try {
      return await startDebeziumOnce(classpath, options);
    } catch (err) {
      if (attempt >= 3 || !/Address already in use|BindException|Failed to bind/.test((err as Error).message)) throw err;
    }
  }
}

async function startDebeziumOnce(classpath: string, options: DebeziumOptions): Promise<RealDebezium> {
  const dir = tempDir('debezium');
  const forgetDir = removeOnExit(dir.path);
  const restPort = await freePort();
  const restUrl = `http://127.0.0.1:${restPort}`;
  const id = options.topicPrefix.replace(/[^a-zA-Z0-9]/g, '_').toLowerCase();
  const name = `debezium-${id}`;
  const workerFile = join(dir.path, 'worker.properties');
  const connectorFile = join(dir.path, 'connector.properties');
  writeFileSync(workerFile, workerProperties({ kafkaBrokers: options.kafkaBrokers, restPort, offsetsFile: join(dir.path, 'offsets.dat') }));
  writeFileSync(
    connectorFile,
    connectorProperties({
      name,
      pgPort: options.pgPort,
      database: options.database ?? 'postgres',
      topicPrefix: options.topicPrefix,
      tables: options.tables,
      slot: `debezium_${id}`.slice(0, 63),
      extra: options.connector ?? {},
    }),
  );
  writeFileSync(join(dir.path, 'log4j2.yaml'), LOG4J2_YAML);

  const output = keepTail();
  const t0 = Date.now();
  const heapMb = options.heapMb ?? 512;
  const jvm = spawn(
    JAVA,
    [...jvmArgs(heapMb, dir.path), '-cp', classpath, 'org.apache.kafka.connect.cli.ConnectStandalone', workerFile, connectorFile],
    { cwd: dir.path, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  killOnExit(jvm);
  if (jvm.pid) watchOrphan(jvm.pid, dir.path);
  let exited: string | null = null;
  jvm.stdout!.setEncoding('utf8').on('data', output.keep);
  jvm.stderr!.setEncoding('utf8').on('data', output.keep);
  jvm.on('error', (err) => {
    exited = `cannot run ${JAVA}: ${err.message}`;
  });
  jvm.once('exit', (code, sig) => {
    exited = sig ?? `code ${code}`;
    output.keep(`--- Connect exited (${exited}) ---\n`);
  });

  let stopped: Promise<void> | undefined;
  const stop = () => {
    stopped ??= (async () => {
      await signal(jvm, 'SIGTERM');
      forgetDir();
      dir.remove();
    })();
    return stopped;
  };

  const status = async (): Promise<ConnectorStatus> => {
    const res = await fetch(`${restUrl}/connectors/${name}/status`);
    if (!res.ok) throw new Error(`GET /connectors/${name}/status answered ${res.status}: ${await res.text()}`);
    return (await res.json()) as ConnectorStatus;
  };

  try {
    await waitFor(
      `Debezium connector ${name} and its task to be RUNNING (${restUrl})`,
      async () => {
        if (exited) throw new Error(`Kafka Connect exited (${exited}) before the connector ran:\n${tail(output.text(), 30)}`);
        let s: ConnectorStatus;
        try {
          s = await status();
        } catch {
          return false; // the REST server is not up yet, or the connector not yet created
        }
        const failed = [s.connector, ...s.tasks].find((x) => x.state === 'FAILED');
        if (failed) throw new Error(`Debezium connector ${name} FAILED: ${failed.trace ?? JSON.stringify(s)}`);
        return s.connector.state === 'RUNNING' && s.tasks.length > 0 && s.tasks.every((t) => t.state === 'RUNNING');
      },
      { timeoutMs: options.startTimeoutMs ?? 180_000, intervalMs: 250 },
    );
  } catch (err) {
    const logs = output.text();
    await stop();
    const message = (err as Error).message;
    throw new Error(message.includes('Kafka Connect exited') ? message : `${message}\n${tail(logs, 30)}`, { cause: err });
  }
  const startMs = Date.now() - t0;
  return { name, restUrl, startMs, status, logs: output.text, stop };
}
