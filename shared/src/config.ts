import { readFileSync } from 'node:fs';
import { TokenFileError, TokenTable } from './grpc/auth.js';

/**
 * Configuration from environment variables. Every setting Sluice reads is declared once in
 * SETTINGS (name, default, meaning), so validation, defaults and the README table agree.
 * A bad value is a ConfigError whose message names the variable and says what was expected;
 * service entry points print that one line and exit, never a stack trace.
 */

export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    message: string,
  ) {
    super(message);
    this.name = 'ConfigError';
  }
}

type Env = Record<string, string | undefined>;

interface Setting<T> {
  readonly name: string;
  readonly defaultText: string;
  readonly description: string;
  parse(raw: string | undefined, env: Env): T;
}

function setting<T>(
  name: string,
  defaultText: string,
  description: string,
  parse: (raw: string, env: Env) => T,
  fallback: (env: Env) => T,
): Setting<T> {
  return {
    name,
    defaultText,
    description,
    parse(raw, env) {
      if (raw === undefined || raw.trim() === '') return fallback(env);
      return parse(raw.trim(), env);
    },
  };
}

function invalid(name: string, raw: string, expected: string): ConfigError {
  return new ConfigError(name, `invalid configuration: ${name}=${JSON.stringify(raw)} is not ${expected}`);
}

export function integerSetting(name: string, def: number, min: number, max: number, description: string): Setting<number> {
  return setting(
    name,
    String(def),
    description,
    (raw) => {
      if (!/^-?\d+$/.test(raw)) throw invalid(name, raw, `an integer between ${min} and ${max}`);
      const value = Number(raw);
      if (value < min || value > max) throw invalid(name, raw, `an integer between ${min} and ${max}`);
      return value;
    },
    () => def,
  );
}

export function portSetting(name: string, def: number, description: string): Setting<number> {
  // 0 lets the OS choose, which tests rely on.
  return integerSetting(name, def, 0, 65535, description);
}

export function urlSetting(name: string, def: string, protocols: readonly string[], description: string): Setting<string> {
  const check = (raw: string): string => {
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      throw invalid(name, raw, `a URL (${protocols.map((p) => `${p}//…`).join(' or ')})`);
    }
    if (!protocols.includes(url.protocol)) {
      throw invalid(name, raw, `a URL with scheme ${protocols.map((p) => p.slice(0, -1)).join(' or ')}`);
    }
    return raw;
  };
  return setting(name, def, description, check, () => def);
}

export function enumSetting<T extends string>(name: string, def: T, values: readonly T[], description: string): Setting<T> {
  return setting(
    name,
    def,
    description,
    (raw) => {
      const lower = raw.toLowerCase() as T;
      if (!values.includes(lower)) throw invalid(name, raw, `one of ${values.join(', ')}`);
      return lower;
    },
    () => def,
  );
}

export function stringSetting(name: string, def: string, description: string): Setting<string> {
  return setting(
    name,
    def === '' ? '(unset)' : def,
    description,
    (raw) => raw,
    () => def,
  );
}

/**
 * A peer service's address: one host:port (a single name, e.g. a load-balanced Kubernetes
 * Service), or a comma-separated list of IP:port of its replicas, which the client spreads its
 * calls over and fails over between (peerTarget). A list of host names is refused: gRPC
 * resolves one name per channel, and a list resolved once at start would go stale.
 */
export function addressSetting(name: string, description: string, fallback: (env: Env) => string, defaultText: string): Setting<string> {
  return setting(
    name,
    defaultText,
    description,
    (raw) => {
      const entries = raw.split(',').map((a) => a.trim());
      for (const entry of entries) {
        const match = /^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(entry);
        if (!match || Number(match[2]) > 65535)
          throw invalid(name, raw, 'an address of the form host:port, or a comma-separated list of IP:port');
        if (entries.length > 1 && !isIpLiteral(match[1]))
          throw invalid(name, raw, `a list of IP:port (${clip(match[1])} is a host name; give one load-balanced name instead of a list)`);
      }
      return entries.join(',');
    },
    fallback,
  );
}

const isIpLiteral = (host: string) => /^\d{1,3}(\.\d{1,3}){3}$/.test(host) || host.startsWith('[');
const clip = (s: string) => (s.length > 64 ? `${s.slice(0, 64)}…` : s);

/** A comma-separated list of host:port Kafka bootstrap brokers; empty means the embedded dev broker. */
export function brokersSetting(name: string, description: string): Setting<string[]> {
  return setting(
    name,
    '(unset: embedded dev broker)',
    description,
    (raw) => {
      const brokers = raw
        .split(',')
        .map((b) => b.trim())
        .filter((b) => b !== '');
      for (const broker of brokers) {
        if (!/^[A-Za-z0-9.\-[\]:]+:\d{1,5}$/.test(broker))
          throw invalid(name, raw, `a comma-separated list of host:port (bad entry ${JSON.stringify(broker)})`);
      }
      return brokers;
    },
    () => [],
  );
}

/** A file a setting names, read when the configuration is loaded. */
export interface SettingFile<T> {
  readonly path: string;
  readonly value: T;
}

/**
 * A setting naming a file, read and checked at load: `read` turns the bytes into the value or
 * throws an Error whose message says what is wrong with the file (it follows the variable and
 * the path in the ConfigError). Unset means undefined.
 */
export function fileSetting<T>(name: string, description: string, read: (contents: Buffer) => T): Setting<SettingFile<T> | undefined> {
  return setting(
    name,
    '(unset)',
    description,
    (path) => {
      let contents: Buffer;
      try {
        contents = readFileSync(path);
      } catch (err) {
        throw invalid(name, path, `a readable file (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
      }
      try {
        return { path, value: read(contents) };
      } catch (err) {
        throw new ConfigError(name, `invalid configuration: ${name}=${JSON.stringify(path)}: ${(err as Error).message}`);
      }
    },
    () => undefined,
  );
}

function pemFile(what: string): (contents: Buffer) => Buffer {
  return (contents) => {
    if (!contents.includes('-----BEGIN ')) throw new Error(`the file is not PEM (expected ${what})`);
    return contents;
  };
}

export const TLS_MODES = ['off', 'on', 'mutual'] as const;
export type TlsMode = (typeof TLS_MODES)[number];

/** SLUICE_TLS; unset, TLS is on as soon as a certificate or a CA is given. */
function tlsModeSetting(): Setting<TlsMode> {
  const name = 'SLUICE_TLS';
  return setting(
    name,
    'off (on when SLUICE_TLS_CERT or SLUICE_TLS_CA is set)',
    'TLS of every gRPC server and client: off, on (servers present SLUICE_TLS_CERT) or mutual (clients present theirs too, checked against SLUICE_TLS_CA).',
    (raw) => {
      const lower = raw.toLowerCase() as TlsMode;
      if (!TLS_MODES.includes(lower)) throw invalid(name, raw, `one of ${TLS_MODES.join(', ')}`);
      return lower;
    },
    (env) => (env.SLUICE_TLS_CERT?.trim() || env.SLUICE_TLS_CA?.trim() ? 'on' : 'off'),
  );
}

/** SLUICE_TOKEN: a secret, so an error about it never repeats its value. */
function tokenSetting(): Setting<string | undefined> {
  const name = 'SLUICE_TOKEN';
  return setting(
    name,
    '(unset)',
    'Bearer token this process presents on every call (services: a service token; the CLI: yours, or --token).',
    (raw) => {
      if (!/^[\x21-\x7e]+$/.test(raw))
        throw new ConfigError(name, `invalid configuration: ${name} is not a token (printable ASCII characters without spaces)`);
      return raw;
    },
    () => undefined,
  );
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

function peerAddress(portVar: string, port: number) {
  return (env: Env) => {
    const raw = env[portVar];
    const chosen = raw && /^\d+$/.test(raw.trim()) ? Number(raw.trim()) : port;
    return `127.0.0.1:${chosen}`;
  };
}

/** Every setting Sluice reads, in the order the README lists them. */
export const SETTINGS = {
  bindHost: stringSetting('SLUICE_BIND_HOST', '127.0.0.1', 'Interface every gRPC server listens on (0.0.0.0 in containers).'),
  catalogPort: portSetting('CATALOG_PORT', 50051, 'gRPC port of the catalog service.'),
  ingestionPort: portSetting('INGESTION_PORT', 50052, 'gRPC port of the ingestion service.'),
  transformationPort: portSetting('TRANSFORMATION_PORT', 50053, 'gRPC port of the transformation service.'),
  commitPort: portSetting('COMMIT_PORT', 50054, 'gRPC port of the commit service.'),
  catalogAddress: addressSetting(
    'CATALOG_ADDRESS',
    'Where the other services reach the catalog.',
    peerAddress('CATALOG_PORT', 50051),
    '127.0.0.1:$CATALOG_PORT',
  ),
  ingestionAddress: addressSetting(
    'INGESTION_ADDRESS',
    'Where clients reach the ingestion service.',
    peerAddress('INGESTION_PORT', 50052),
    '127.0.0.1:$INGESTION_PORT',
  ),
  transformationAddress: addressSetting(
    'TRANSFORMATION_ADDRESS',
    'Where ingestion reaches transformation.',
    peerAddress('TRANSFORMATION_PORT', 50053),
    '127.0.0.1:$TRANSFORMATION_PORT',
  ),
  commitAddress: addressSetting(
    'COMMIT_ADDRESS',
    'Where transformation reaches the commit service.',
    peerAddress('COMMIT_PORT', 50054),
    '127.0.0.1:$COMMIT_PORT',
  ),
  tlsMode: tlsModeSetting(),
  tlsCert: fileSetting(
    'SLUICE_TLS_CERT',
    "PEM certificate (chain) this process presents: a service's server certificate, also its client certificate under mutual TLS.",
    pemFile('a certificate'),
  ),
  tlsKey: fileSetting('SLUICE_TLS_KEY', 'PEM private key of SLUICE_TLS_CERT.', pemFile('a private key')),
  tlsCa: fileSetting(
    'SLUICE_TLS_CA',
    "PEM CA certificates that verify the services' certificates (and clients' under mutual TLS); unset, the system's CAs.",
    pemFile('CA certificates'),
  ),
  tokensFile: fileSetting(
    'SLUICE_TOKENS_FILE',
    'Servers: the bearer tokens they accept, one `<role> <token>` (or `<role> sha256:<hex>`) per line; unset, no authentication.',
    (contents) => {
      try {
        return TokenTable.parse(contents.toString('utf8'));
      } catch (err) {
        if (err instanceof TokenFileError) throw new Error(`line ${err.line}: ${err.message}`);
        throw err;
      }
    },
  ),
  token: tokenSetting(),
  databaseUrl: urlSetting(
    'DATABASE_URL',
    'postgres://postgres@127.0.0.1:5432/sluice',
    ['postgres:', 'postgresql:'],
    'PostgreSQL catalog database (created on first start if missing).',
  ),
  natsUrl: urlSetting('NATS_URL', 'nats://127.0.0.1:4222', ['nats:', 'tls:'], 'NATS server for flush and committed events.'),
  kafkaBrokers: brokersSetting('KAFKA_BROKERS', 'Default Kafka bootstrap brokers, comma-separated, for sources that name none.'),
  devBrokerPort: portSetting(
    'SLUICE_DEV_BROKER_PORT',
    9092,
    'Port of the embedded dev broker that `sluice up` starts when KAFKA_BROKERS is unset.',
  ),
  devBrokerDataDir: stringSetting(
    'SLUICE_DEV_BROKER_DATA_DIR',
    '.sluice/kafka',
    'Where the embedded dev broker keeps topics and group offsets across restarts.',
  ),
  warehouse: stringSetting('SLUICE_WAREHOUSE', '.sluice/warehouse', 'Root location of new databases: a directory or a file:// URI.'),
  warehouseRoots: setting(
    'SLUICE_WAREHOUSE_ROOTS',
    '(unset: the warehouse only)',
    'Comma-separated locations under which databases and tables may be placed (besides the warehouse); anything else is refused.',
    (raw) =>
      raw
        .split(',')
        .map((r) => r.trim())
        .filter((r) => r !== ''),
    () => [],
  ),
  maxMessageBytes: integerSetting(
    'SLUICE_MAX_MESSAGE_BYTES',
    67108864,
    1048576,
    1073741824,
    'Largest gRPC request a server takes (a Transform batch holds one partition fetch, so above the largest Kafka record the brokers allow); a larger one ends its call RESOURCE_EXHAUSTED.',
  ),
  rpcDeadlineMs: integerSetting('SLUICE_RPC_DEADLINE_MS', 10000, 100, 600000, 'Default deadline of service-to-service gRPC calls.'),
  shutdownTimeoutMs: integerSetting(
    'SLUICE_SHUTDOWN_TIMEOUT_MS',
    15000,
    0,
    600000,
    'How long a service waits for in-flight work on SIGTERM before it exits anyway.',
  ),
  commitDefaultIntervalMs: integerSetting(
    'COMMIT_DEFAULT_INTERVAL_MS',
    300000,
    1000,
    86400000,
    "Commit interval of a job whose commit_interval_ms is 0 (the seeds' 5 minutes).",
  ),
  commitFlushTimeoutMs: integerSetting(
    'COMMIT_FLUSH_TIMEOUT_MS',
    30000,
    100,
    3600000,
    "How long a flush round waits for the live workers' reports; a late worker is committed in the next round.",
  ),
  commitWorkerTtlMs: integerSetting(
    'COMMIT_WORKER_TTL_MS',
    15000,
    100,
    3600000,
    'A worker whose heartbeats stopped this long is no longer waited for.',
  ),
  commitLeaseTtlMs: integerSetting(
    'COMMIT_LEASE_TTL_MS',
    30000,
    500,
    3600000,
    "TTL of a table's commit lease (renewed every third of it); a stale coordinator is fenced after it.",
  ),
  commitMaintenanceIntervalMs: integerSetting(
    'COMMIT_MAINTENANCE_INTERVAL_MS',
    600000,
    0,
    86400000,
    'How often each table gets snapshot expiry, compaction and orphan cleanup; 0 turns the timer off.',
  ),
  commitOrphanMinAgeMs: integerSetting(
    'COMMIT_ORPHAN_MIN_AGE_MS',
    3600000,
    0,
    2592000000,
    'Orphan cleanup only deletes unreferenced files older than this safety margin.',
  ),
  commitAdvertisedAddress: stringSetting(
    'COMMIT_ADVERTISED_ADDRESS',
    '',
    "Where other commit replicas reach this one (host:port), recorded with the tables' leases it holds so they forward reports to it; unset: the bind host (or the host name when binding all interfaces) and the port.",
  ),
  logLevel: enumSetting<LogLevel>('LOG_LEVEL', 'info', LOG_LEVELS, 'pino log level.'),
  otlpEndpoint: stringSetting('OTEL_EXPORTER_OTLP_ENDPOINT', '', 'When set, traces are exported over OTLP/HTTP to this endpoint.'),
  metricsPort: portSetting(
    'SLUICE_METRICS_PORT',
    0,
    'When set, this process serves its metrics in the Prometheus text format at http://<host>:<port>/metrics; 0: none.',
  ),
  ingestionInFlightBytes: integerSetting(
    'INGESTION_IN_FLIGHT_BYTES',
    33554432,
    65536,
    4294967296,
    "Per job, bytes ingestion sends to transformation before acknowledgements; above it the job's partitions pause.",
  ),
  ingestionJobSyncMs: integerSetting(
    'INGESTION_JOB_SYNC_MS',
    5000,
    100,
    3600000,
    'How often each ingestion process brings its jobs in line with their state in the catalog (a start, pause or stop made through another replica); announcements on NATS make it sooner.',
  ),
  ingestionSchedulerTickMs: integerSetting(
    'INGESTION_SCHEDULER_TICK_MS',
    1000,
    100,
    60000,
    'How often the ingestion process holding the scheduler lease fires due instances of scheduled jobs, starts queued ones and acts on late records.',
  ),
  ingestionLateCheckMs: integerSetting(
    'INGESTION_LATE_CHECK_MS',
    60000,
    100,
    86400000,
    "How often the scheduler reads past each finished instance's end for records stamped inside its window (late records).",
  ),
  ingestionSchedulerClock: stringSetting(
    'INGESTION_SCHEDULER_CLOCK',
    '',
    "Testing: the scheduler's clock as <scheduler ms>@<wall-clock ms>*<speed> (at that wall-clock instant the scheduler reads that time, and runs speed times faster); empty uses the wall clock.",
  ),
  transformationTargetFileBytes: integerSetting(
    'TRANSFORMATION_TARGET_FILE_BYTES',
    134217728,
    1024,
    4294967296,
    'Target size of a Parquet data file; a worker rolls to a new file when the open one reaches it.',
  ),
  transformationOpenFileBytes: integerSetting(
    'TRANSFORMATION_OPEN_FILE_BYTES',
    8388608,
    1024,
    17179869184,
    'Per process, the bytes the rows in open data files may take in DuckDB over all streams (in memory until written); above it, the appending stream writes its largest open file out early, one at a time while rows go on (the rows held are this plus the file being written).',
  ),
  transformationSpoolDir: stringSetting(
    'TRANSFORMATION_SPOOL_DIR',
    '',
    'Local directory for the data files of tables in object storage until they are uploaded; empty: <tmpdir>/sluice-spool.',
  ),
  transformationReportRetryMs: integerSetting(
    'TRANSFORMATION_REPORT_RETRY_MS',
    60000,
    0,
    3600000,
    'How long a flush report is retried while the commit service is unavailable before the stream fails (and ingestion re-reads).',
  ),
  transformationHeartbeatMs: integerSetting(
    'TRANSFORMATION_HEARTBEAT_MS',
    1000,
    50,
    60000,
    'Interval of the WorkerHeartbeat each open Transform stream publishes.',
  ),
} as const;

export type SettingKey = keyof typeof SETTINGS;
export type SettingValue<K extends SettingKey> = ReturnType<(typeof SETTINGS)[K]['parse']>;
export type Config<K extends SettingKey> = { [P in K]: SettingValue<P> };

/** Reads the chosen settings; throws ConfigError naming the first bad variable. */
export function loadConfig<K extends SettingKey>(keys: readonly K[], env: Env = process.env): Config<K> {
  const config = {} as Config<K>;
  for (const key of keys) {
    const spec = SETTINGS[key] as Setting<SettingValue<K>>;
    config[key] = spec.parse(env[spec.name], env) as Config<K>[K];
  }
  return config;
}

/** Rows for the README configuration table. */
export function describeSettings(): { name: string; default: string; description: string }[] {
  return Object.values(SETTINGS).map((s) => ({ name: s.name, default: s.defaultText, description: s.description }));
}
