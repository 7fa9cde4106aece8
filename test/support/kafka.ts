/**
 * Real Apache Kafka for interop tests (issue 13): one single-node KRaft broker (process.roles
 * broker,controller, node 1) as a child JVM on free ports, with its own temporary data
 * directory, formatted here with a random cluster id. Its classes come from peers/kafka
 * (`npm run peers` resolves them from Maven Central and writes peers/kafka/target/classpath.txt);
 * nothing of Kafka is committed.
 *
 * Settings are the ones a one-node test cluster needs (replication factors and min ISR of 1,
 * no initial rebalance delay, a log cleaner that looks every 200 ms). The broker survives
 * stop()/kill() + restart() with its data; remove() (or the process exiting) removes it all.
 * A test file starts one broker and gives each test its own topics.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Admin, Kafka, type KafkaConfig, logLevel } from 'kafkajs';
import { killOnExit, removeOnExit } from './exit-cleanup.js';
import { freePort } from './ports.js';
import { waitFor } from './wait.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
/** Written by `mvn package` in peers/kafka (run by `npm run peers`). */
export const KAFKA_CLASSPATH_FILE = join(root, 'peers/kafka/target/classpath.txt');

export interface KafkaOptions {
  /** Kafka's auto.create.topics.enable (default true, as Kafka). */
  autoCreateTopics?: boolean;
  /** num.partitions: partitions of auto-created topics (default 1). */
  partitions?: number;
  /** Maximum JVM heap in MiB (default 384). */
  heapMb?: number;
  /** Extra or overriding server.properties entries. */
  properties?: Record<string, string | number | boolean>;
  /** How long to wait for the broker to serve (default 90 s: a loaded CI machine starts a JVM slowly). */
  startTimeoutMs?: number;
}

export interface TopicOptions {
  partitions?: number;
  /** Topic configs, e.g. { 'cleanup.policy': 'compact' }. */
  config?: Record<string, string | number>;
}

export interface RealKafka {
  /** Bootstrap servers, "127.0.0.1:<port>". */
  readonly brokers: string;
  readonly port: number;
  /** The broker's data directory (KRaft metadata and logs). */
  readonly dataDir: string;
  /** Milliseconds from spawning the JVM to serving requests, for the last start. */
  readonly startMs: number;
  /** Resident memory of the JVM now, in bytes (0 when it is not running). */
  rssBytes(): number;
  /**
   * Runs one of Kafka's command-line tools (a main class of kafka-tools, e.g.
   * org.apache.kafka.tools.consumer.group.ConsumerGroupCommand) to completion and returns its
   * stdout; the caller passes --bootstrap-server (see `brokers`). Its logging goes to stderr.
   */
  tool(mainClass: string, args: string[]): Promise<string>;
  /** A kafkajs client for this broker (quiet, quick retries). */
  client(clientId?: string, config?: Partial<KafkaConfig>): Kafka;
  /** An admin client shared by the helpers below (connected on first use). */
  admin(): Promise<Admin>;
  /** Creates a topic and waits until every partition has a leader. */
  createTopic(name: string, options?: TopicOptions): Promise<void>;
  /** Graceful stop (SIGTERM; SIGKILL after 20 s); data is kept for restart(). */
  stop(): Promise<void>;
  /** SIGKILL, as a crash; data is kept for restart(). */
  kill(): Promise<void>;
  /** Starts the stopped or killed broker again on the same ports and data, and waits until it serves. */
  restart(): Promise<void>;
  /** The tail of the JVM's output (Kafka logs at WARN, plus its start and stop lines). */
  logs(): string;
  /** Stops the broker and removes its directory. Idempotent. */
  remove(): Promise<void>;
}

/** The peers were never fetched, or their build failed: tells the developer what to run. */
export class KafkaPeerMissingError extends Error {
  constructor(detail: string) {
    super(`real Apache Kafka is not available (${detail}): run \`npm run peers\` (or \`mvn -q package\` in peers/kafka) first`);
    this.name = 'KafkaPeerMissingError';
  }
}

const LOG_TAIL_CHARS = 128 * 1024;
/** Command-line tools log only errors, to stderr, so their stdout is their answer. */
const TOOLS_LOG4J2_YAML = `Configuration:
  Appenders:
    Console:
      name: STDERR
      target: SYSTEM_ERR
      PatternLayout:
        Pattern: "%p %m%n"
  Loggers:
    Root:
      level: ERROR
      AppenderRef:
        - ref: STDERR
`;
/**
 * A Log4j 2 configuration for a JVM peer: WARN and above to stdout, with some loggers raised
 * or lowered (name → level), e.g. the lines that say a server started.
 */
export function quietLog4j2(levels: Record<string, 'INFO' | 'WARN' | 'ERROR'>): string {
  const loggers = Object.entries(levels).map(([name, level]) => `      - name: ${name}\n        level: ${level}\n`);
  return `Configuration:
  Appenders:
    Console:
      name: STDOUT
      PatternLayout:
        Pattern: "[%d] %p %m (%c)%n"
  Loggers:
    Root:
      level: WARN
      AppenderRef:
        - ref: STDOUT
    Logger:
${loggers.join('')}`;
}

/** Kafka logs at WARN; these lines say when it started and stopped. */
const LOG4J2_YAML = quietLog4j2({ 'kafka.server.KafkaRaftServer': 'INFO', 'org.apache.kafka.clients': 'ERROR' });

/** server.properties of a one-node KRaft test cluster. Pure, for a table-driven check. */
export function serverProperties(p: {
  port: number;
  controllerPort: number;
  dataDir: string;
  autoCreateTopics: boolean;
  partitions: number;
  extra: Record<string, string | number | boolean>;
}): string {
  const props: Record<string, string | number | boolean> = {
    'process.roles': 'broker,controller',
    'node.id': 1,
    'controller.quorum.voters': `1@127.0.0.1:${p.controllerPort}`,
    listeners: `PLAINTEXT://127.0.0.1:${p.port},CONTROLLER://127.0.0.1:${p.controllerPort}`,
    'advertised.listeners': `PLAINTEXT://127.0.0.1:${p.port}`,
    'controller.listener.names': 'CONTROLLER',
    'listener.security.protocol.map': 'PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT',
    'inter.broker.listener.name': 'PLAINTEXT',
    'log.dirs': p.dataDir,
    'num.partitions': p.partitions,
    'auto.create.topics.enable': p.autoCreateTopics,
    // One node: every internal topic with one replica and one partition (quick to create).
    'offsets.topic.replication.factor': 1,
    'offsets.topic.num.partitions': 1,
    'transaction.state.log.replication.factor': 1,
    'transaction.state.log.min.isr': 1,
    'transaction.state.log.num.partitions': 1,
    'share.coordinator.state.topic.replication.factor': 1,
    'share.coordinator.state.topic.min.isr': 1,
    'min.insync.replicas': 1,
    'default.replication.factor': 1,
    // Tests want groups to form at once and compaction to run soon after a segment rolls.
    'group.initial.rebalance.delay.ms': 0,
    'log.cleaner.backoff.ms': 200,
    // Few threads: the machine is small and shared.
    'num.network.threads': 2,
    'num.io.threads': 2,
    'background.threads': 2,
    'log.cleaner.threads': 1,
    'num.recovery.threads.per.data.dir': 1,
    ...p.extra,
  };
  return `${Object.entries(props)
    .map(([k, v]) => `${k}=${v}`)
    .join('\n')}\n`;
}

/** The JVM flags: a small heap and a quick start (C1 only, serial GC) matter more here than throughput. */
export function jvmArgs(heapMb: number, dir: string): string[] {
  return [
    `-Xmx${heapMb}m`,
    '-Xms64m',
    '-XX:+UseSerialGC',
    '-XX:TieredStopAtLevel=1',
    '-XX:-UsePerfData',
    '-XX:+ExitOnOutOfMemoryError',
    '-Djava.awt.headless=true',
    `-Dlog4j2.configurationFile=${join(dir, 'log4j2.yaml')}`,
    // Kafka's scripts set this; without it the broker logs where it was started from.
    `-Dkafka.logs.dir=${join(dir, 'logs')}`,
  ];
}

function readClasspath(): string {
  if (!existsSync(KAFKA_CLASSPATH_FILE)) throw new KafkaPeerMissingError(`${KAFKA_CLASSPATH_FILE} does not exist`);
  const classpath = readFileSync(KAFKA_CLASSPATH_FILE, 'utf8').trim();
  const missing = classpath.split(':').find((jar) => !existsSync(jar));
  if (!classpath || missing) throw new KafkaPeerMissingError(missing ? `${missing} is missing` : `${KAFKA_CLASSPATH_FILE} is empty`);
  return classpath;
}

const JAVA = process.env.KAFKA_JAVA ?? 'java';

/** Runs a Java main class to completion; its stdout, or a rejection with the tail of its output. */
async function runJava(classpath: string, args: string[], jvm: string[] = []): Promise<string> {
  const child = spawn(JAVA, ['-Xmx128m', '-XX:TieredStopAtLevel=1', '-XX:+UseSerialGC', ...jvm, '-cp', classpath, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (t: string) => (stdout += t));
  child.stderr!.setEncoding('utf8').on('data', (t: string) => (stderr += t));
  const [code] = (await once(child, 'exit')) as [number | null];
  if (code !== 0) throw new Error(`java ${args[0]} exited ${code}: ${`${stdout}${stderr}`.trim().split('\n').slice(-5).join(' | ')}`);
  return stdout;
}

/**
 * The exit cleanup (exit-cleanup.ts) cannot run when this process is killed (kill -9, a test runner's
 * timeout): a small shell, detached, watches this process and the JVM, and if this process
 * goes first it kills that JVM (by its pid) and removes the broker's directory. It ends by
 * itself when the JVM does.
 */
function watchOrphan(jvmPid: number, dir: string): void {
  const alive = (pid: number) => `kill -0 ${pid} 2>/dev/null`;
  const script = `while ${alive(process.pid)} && ${alive(jvmPid)}; do sleep 1; done; if ${alive(jvmPid)}; then kill -9 ${jvmPid}; rm -rf '${dir}'; fi`;
  spawn('sh', ['-c', script], { detached: true, stdio: 'ignore' }).unref();
}

/** Formats storage and starts a one-node KRaft broker; retries with new ports if one was taken meanwhile. */
export async function startKafka(options: KafkaOptions = {}): Promise<RealKafka> {
  const classpath = readClasspath();
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(classpath, options);
    } catch (err) {
      if (attempt >= 3 || !/Address already in use|BindException/.test((err as Error).message)) throw err;
    }
  }
}

async function startOnce(classpath: string, options: KafkaOptions): Promise<RealKafka> {
  const dir = await mkdtemp(join(tmpdir(), 'sluice-kafka-'));
  const forgetDir = removeOnExit(dir);
  const dataDir = join(dir, 'data');
  const [port, controllerPort] = [await freePort(), await freePort()];
  const propertiesFile = join(dir, 'server.properties');
  await writeFile(
    propertiesFile,
    serverProperties({
      port,
      controllerPort,
      dataDir,
      autoCreateTopics: options.autoCreateTopics ?? true,
      partitions: options.partitions ?? 1,
      extra: options.properties ?? {},
    }),
  );
  await writeFile(join(dir, 'log4j2.yaml'), LOG4J2_YAML);
  await writeFile(join(dir, 'tools-log4j2.yaml'), TOOLS_LOG4J2_YAML);
  // A KRaft cluster id is 16 random bytes in URL-safe base64 (22 characters). It may start with
  // "-", so it goes as --cluster-id=<id>: as a separate argument it would read as an option.
  const clusterId = randomBytes(16).toString('base64url');
  await runJava(classpath, [
    'kafka.tools.StorageTool',
    'format',
    `--cluster-id=${clusterId}`,
    '--config',
    propertiesFile,
    '--ignore-formatted',
  ]);

  const brokers = `127.0.0.1:${port}`;
  const heapMb = options.heapMb ?? 384;
  const startTimeoutMs = options.startTimeoutMs ?? 90_000;
  let child: ChildProcess | null = null;
  let output = '';
  let startMs = 0;
  let admin: Admin | null = null;
  let removed: Promise<void> | undefined;
  const keep = (text: string) => {
    output += text;
    if (output.length > LOG_TAIL_CHARS) output = output.slice(-LOG_TAIL_CHARS);
  };

  const client = (clientId = 'sluice-interop', config: Partial<KafkaConfig> = {}) =>
    new Kafka({
      clientId,
      brokers: [brokers],
      logLevel: logLevel.NOTHING,
      retry: { retries: 8, initialRetryTime: 100, maxRetryTime: 2000 },
      ...config,
    });

  const start = async () => {
    const t0 = Date.now();
    keep(`--- start (heap ${heapMb} MiB) ---\n`);
    const jvm = spawn(JAVA, [...jvmArgs(heapMb, dir), '-cp', classpath, 'kafka.Kafka', propertiesFile], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child = jvm;
    killOnExit(jvm);
    if (jvm.pid) watchOrphan(jvm.pid, dir);
    let started = false;
    let exited: string | null = null;
    jvm.stdout!.setEncoding('utf8').on('data', (t: string) => {
      keep(t);
      if (t.includes('Kafka Server started')) started = true;
    });
    jvm.stderr!.setEncoding('utf8').on('data', keep);
    jvm.once('exit', (code, signal) => {
      exited = signal ?? `code ${code}`;
      keep(`--- exited (${exited}) ---\n`);
      if (child === jvm) child = null;
    });
    try {
      // Our own "started" line first (the port could be someone else's), then a real request.
      await waitFor(
        `Kafka at ${brokers} to log "Kafka Server started" and answer metadata requests`,
        async () => {
          if (exited) throw new Error(`Kafka exited (${exited}) before it served: ${tail(output, 5)}`);
          if (!started) return false;
          const probe = client('sluice-interop-probe', { retry: { retries: 0 } }).admin();
          await probe.connect();
          try {
            const cluster = await probe.describeCluster();
            return cluster.brokers.length > 0;
          } finally {
            await probe.disconnect();
          }
        },
        { timeoutMs: startTimeoutMs, intervalMs: 100 },
      );
    } catch (err) {
      if (child === jvm) await signal(jvm, 'SIGKILL');
      const message = (err as Error).message;
      throw new Error(exited ? message : `${message}\n${tail(output, 20)}`, { cause: err });
    }
    startMs = Date.now() - t0;
  };

  const signal = async (jvm: ChildProcess, sig: NodeJS.Signals, graceMs = 20_000) => {
    if (jvm.exitCode !== null || jvm.signalCode !== null) return;
    const exited = once(jvm, 'exit');
    jvm.kill(sig);
    const timer = setTimeout(() => jvm.kill('SIGKILL'), graceMs);
    await exited;
    clearTimeout(timer);
  };

  const dropAdmin = async () => {
    const a = admin;
    admin = null;
    await a?.disconnect().catch(() => {});
  };

  try {
    await start();
  } catch (err) {
    forgetDir();
    await rm(dir, { recursive: true, force: true });
    throw err;
  }

  const kafka: RealKafka = {
    brokers,
    port,
    dataDir,
    get startMs() {
      return startMs;
    },
    rssBytes() {
      const pid = child?.pid;
      if (!pid) return 0;
      try {
        const kb = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
        return kb ? Number(kb) * 1024 : 0;
      } catch {
        return 0;
      }
    },
    tool: (mainClass, args) => runJava(classpath, [mainClass, ...args], [`-Dlog4j2.configurationFile=${join(dir, 'tools-log4j2.yaml')}`]),
    client,
    async admin() {
      if (!admin) {
        const a = client('sluice-interop-admin').admin();
        await a.connect();
        admin = a;
      }
      return admin;
    },
    async createTopic(name, topicOptions = {}) {
      const a = await kafka.admin();
      const partitions = topicOptions.partitions ?? 1;
      const configEntries = Object.entries(topicOptions.config ?? {}).map(([configName, value]) => ({
        name: configName,
        value: String(value),
      }));
      await a.createTopics({
        topics: [{ topic: name, numPartitions: partitions, replicationFactor: 1, configEntries }],
        waitForLeaders: true,
      });
      await waitFor(
        `every partition of topic ${name} on ${brokers} to have a leader`,
        async () => {
          const meta = await a.fetchTopicMetadata({ topics: [name] });
          const ps = meta.topics[0]?.partitions ?? [];
          return ps.length === partitions && ps.every((p) => p.leader >= 0);
        },
        { timeoutMs: 30_000, intervalMs: 50 },
      );
    },
    async stop() {
      await dropAdmin();
      if (child) await signal(child, 'SIGTERM');
    },
    async kill() {
      await dropAdmin();
      if (child) await signal(child, 'SIGKILL');
    },
    async restart() {
      if (child) throw new Error(`Kafka at ${brokers} is still running (pid ${(child as ChildProcess).pid}); stop or kill it first`);
      await start();
    },
    logs: () => output,
    remove() {
      removed ??= (async () => {
        await kafka.stop();
        forgetDir();
        await rm(dir, { recursive: true, force: true });
      })();
      return removed;
    },
  };
  return kafka;
}

function tail(text: string, lines: number): string {
  return text.trim().split('\n').slice(-lines).join(' | ');
}
