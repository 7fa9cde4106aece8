/**
 * Apache Iceberg's Java library and Spark as judges of the tables Sluice writes (issue 13).
 * Both run as child JVMs from peers/iceberg (`npm run peers` resolves them from Maven Central
 * and writes <module>/target/classpath.txt; nothing of them is committed):
 *
 * - readIcebergTable: peers/iceberg/reader's ReadTable opens the table through Iceberg's
 *   JdbcCatalog (catalog `sluice` on the mesh's PostgreSQL, as README.md tells users) and returns
 *   its schema, spec, snapshots, data files and rows (IcebergGenerics, row-level deletes
 *   applied), plus `problems`: what Iceberg's readers found wrong in the manifests or files.
 * - sparkSql: peers/iceberg/spark's SparkSql runs queries in a local SparkSession with the same
 *   catalog settings and returns the results.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));
export const ICEBERG_READER_DIR = join(root, 'peers/iceberg/reader');
export const ICEBERG_SPARK_DIR = join(root, 'peers/iceberg/spark');
const JAVA = process.env.ICEBERG_JAVA ?? 'java';

/** The peers were never fetched, or their build failed: tells the developer what to run. */
export class IcebergPeerMissingError extends Error {
  constructor(detail: string) {
    super(
      `Apache Iceberg's Java peers are not available (${detail}): run \`npm run peers\` (or \`mvn -q package\` in peers/iceberg) first`,
    );
    this.name = 'IcebergPeerMissingError';
  }
}

/** A peer JVM that exited non-zero: its exit code and what it said. */
export class IcebergPeerError extends Error {
  constructor(
    readonly program: string,
    readonly code: number | null,
    readonly stderr: string,
  ) {
    super(`${program} exited ${code}: ${stderr.trim().split('\n').slice(-8).join('\n')}`);
    this.name = 'IcebergPeerError';
  }
}

/** Where the catalog is: a postgres:// URL (as the mesh's db.url) and the warehouse. */
export interface CatalogLocation {
  databaseUrl: string;
  warehouse: string;
  /** The JDBC catalog's name (default `sluice`, as the catalog service writes it). */
  catalog?: string;
  /** An S3-compatible server the table's files are in (path-style, static keys). */
  s3?: { endpoint: string; accessKeyId: string; secretAccessKey: string; region: string };
}

/** JDBC URL, user and password of a postgres:// URL. Pure. */
export function jdbcOf(databaseUrl: string): { jdbcUrl: string; user: string; password?: string } {
  const url = new URL(databaseUrl);
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') throw new Error(`not a postgres:// URL: ${databaseUrl}`);
  const jdbcUrl = `jdbc:postgresql://${url.hostname}:${url.port || '5432'}${url.pathname}`;
  const user = decodeURIComponent(url.username) || 'postgres';
  return url.password ? { jdbcUrl, user, password: decodeURIComponent(url.password) } : { jdbcUrl, user };
}

/** The catalog flags both programs take. Pure. */
export function catalogArgs(location: CatalogLocation): string[] {
  const { jdbcUrl, user, password } = jdbcOf(location.databaseUrl);
  return [
    '--jdbc-url',
    jdbcUrl,
    '--user',
    user,
    ...(password ? ['--password', password] : []),
    '--warehouse',
    location.warehouse,
    '--catalog',
    location.catalog ?? 'sluice',
    ...(location.s3
      ? [
          '--s3-endpoint',
          location.s3.endpoint,
          '--s3-access-key-id',
          location.s3.accessKeyId,
          '--s3-secret-access-key',
          location.s3.secretAccessKey,
          '--s3-region',
          location.s3.region,
        ]
      : []),
  ];
}

/** `classes:<jars>` of a built peer module, or IcebergPeerMissingError. */
export function peerClasspath(moduleDir: string): string {
  const file = join(moduleDir, 'target/classpath.txt');
  if (!existsSync(file)) throw new IcebergPeerMissingError(`${file} does not exist`);
  const jars = readFileSync(file, 'utf8').trim().split(':').filter(Boolean);
  const missing = jars.find((jar) => !existsSync(jar));
  if (missing) throw new IcebergPeerMissingError(`${missing} is not in the local Maven repository`);
  return [join(moduleDir, 'target/classes'), ...jars].join(':');
}

interface JavaRun {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

async function runJava(jvmArgs: string[], env: Record<string, string> = {}): Promise<JavaRun> {
  const started = Date.now();
  const child = spawn(JAVA, jvmArgs, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (t: string) => (stdout += t));
  child.stderr.setEncoding('utf8').on('data', (t: string) => (stderr += t));
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on('error', (err) => reject(new IcebergPeerMissingError(`cannot run ${JAVA}: ${err.message}`)));
    child.on('close', (c) => resolve(c));
  });
  return { code, stdout, stderr, ms: Date.now() - started };
}

function parseOutput<T>(program: string, run: JavaRun): T {
  if (run.code !== 0) throw new IcebergPeerError(program, run.code, run.stderr);
  try {
    return JSON.parse(run.stdout) as T;
  } catch {
    throw new IcebergPeerError(program, run.code, `stdout is not JSON: ${run.stdout.slice(0, 500)}\n${run.stderr}`);
  }
}

/** A field of Iceberg's schema JSON (SchemaParser). */
export interface IcebergField {
  id: number;
  name: string;
  required: boolean;
  type: string | Record<string, unknown>;
}
export interface IcebergSchema {
  type: 'struct';
  'schema-id': number;
  fields: IcebergField[];
}
export interface IcebergSpec {
  'spec-id': number;
  fields: { name: string; transform: string; 'source-id': number; 'field-id': number }[];
}
export interface IcebergSnapshot {
  snapshotId: number;
  parentId: number | null;
  sequenceNumber: number;
  timestampMs: number;
  operation: string;
  schemaId: number | null;
  manifestList: string;
  summary: Record<string, string>;
}
export interface IcebergDataFile {
  path: string;
  format: string;
  specId: number;
  /** Partition values in Iceberg's internal representation (days since epoch, bucket numbers, ...). */
  partition: Record<string, unknown>;
  partitionPath: string;
  recordCount: number;
  fileSizeInBytes: number;
  deleteFiles: number;
}

/** What ReadTable prints (see peers/iceberg/reader). Rows: see JsonValues.java for each type's rendering. */
export interface IcebergTableJson {
  catalog: string;
  table: string;
  uuid: string;
  location: string;
  formatVersion: number;
  metadataLocation: string;
  properties: Record<string, string>;
  schema: IcebergSchema;
  spec: IcebergSpec;
  specs: IcebergSpec[];
  currentSnapshotId: number | null;
  snapshots: IcebergSnapshot[];
  /** The snapshot read (the current one unless asked), null for a table without snapshots. */
  snapshotId: number | null;
  /** The schema of the snapshot read (time travel reads with the snapshot's schema). */
  readSchema: IcebergSchema;
  files: IcebergDataFile[];
  rows: Record<string, unknown>[];
  checks: { metadataFilesParsed: number; manifestsRead: number; dataFilesChecked?: number };
  /** Every disagreement Iceberg's readers found between the metadata and the files; [] when sound. */
  problems: string[];
  /** Milliseconds the JVM took, start to exit. */
  ms: number;
}

export interface ReadOptions extends CatalogLocation {
  /** `<database>.<table>`. */
  table: string;
  /** A snapshot to read instead of the current one. */
  snapshotId?: number;
}

/** Reads a table with Iceberg's Java library; IcebergPeerError carries what Iceberg refused. */
export async function readIcebergTable(options: ReadOptions): Promise<IcebergTableJson> {
  const classpath = peerClasspath(ICEBERG_READER_DIR);
  const run = await runJava(
    [
      '-Xmx512m',
      '-XX:TieredStopAtLevel=1',
      '-XX:+UseSerialGC',
      '-cp',
      classpath,
      'dev.sluice.peers.iceberg.ReadTable',
      ...catalogArgs(options),
      '--table',
      options.table,
      ...(options.snapshotId === undefined ? [] : ['--snapshot', String(options.snapshotId)]),
    ],
    // The AWS SDK's flexible checksums (on by default since 2.30) are headers S3-compatible servers
    // such as S3Proxy answer 501 to: checksums only where the API requires them.
    options.s3 ? { AWS_REQUEST_CHECKSUM_CALCULATION: 'when_required', AWS_RESPONSE_CHECKSUM_VALIDATION: 'when_required' } : {},
  );
  return { ...parseOutput<IcebergTableJson>('ReadTable', run), ms: run.ms };
}

/** The JVM flags Spark's launcher adds on Java 17+ (Spark's JavaModuleOptions). */
export const SPARK_JVM_OPTIONS = [
  '-XX:+IgnoreUnrecognizedVMOptions',
  '--add-opens=java.base/java.lang=ALL-UNNAMED',
  '--add-opens=java.base/java.lang.invoke=ALL-UNNAMED',
  '--add-opens=java.base/java.lang.reflect=ALL-UNNAMED',
  '--add-opens=java.base/java.io=ALL-UNNAMED',
  '--add-opens=java.base/java.net=ALL-UNNAMED',
  '--add-opens=java.base/java.nio=ALL-UNNAMED',
  '--add-opens=java.base/java.util=ALL-UNNAMED',
  '--add-opens=java.base/java.util.concurrent=ALL-UNNAMED',
  '--add-opens=java.base/java.util.concurrent.atomic=ALL-UNNAMED',
  '--add-opens=java.base/jdk.internal.ref=ALL-UNNAMED',
  '--add-opens=java.base/sun.nio.ch=ALL-UNNAMED',
  '--add-opens=java.base/sun.nio.cs=ALL-UNNAMED',
  '--add-opens=java.base/sun.security.action=ALL-UNNAMED',
  '--add-opens=java.base/sun.util.calendar=ALL-UNNAMED',
  '-Djdk.reflect.useDirectMethodHandle=false',
  '-Dio.netty.tryReflectionSetAccessible=true',
];

export interface SparkResult {
  sql: string;
  columns: string[];
  /** Spark's JSON rendering of each row (nulls kept, timestamps in UTC). */
  rows: Record<string, unknown>[];
  ms: number;
}
export interface SparkRun {
  sparkVersion: string;
  /** Milliseconds to build the SparkSession inside the JVM. */
  startMs: number;
  results: SparkResult[];
  /** Milliseconds the JVM took, start to exit. */
  ms: number;
}

/** Runs the queries, in order, in one local SparkSession with the JDBC catalog (default `sluice`). */
export async function sparkSql(location: CatalogLocation, queries: string[]): Promise<SparkRun> {
  const classpath = peerClasspath(ICEBERG_SPARK_DIR);
  const run = await runJava(
    [
      ...SPARK_JVM_OPTIONS,
      '-Xmx1g',
      '-XX:+UseSerialGC',
      '-cp',
      classpath,
      'dev.sluice.peers.spark.SparkSql',
      ...catalogArgs(location),
      ...queries.flatMap((q) => ['--sql', q]),
    ],
    // Spark binds its driver here instead of the machine's outward address.
    { SPARK_LOCAL_IP: '127.0.0.1' },
  );
  return { ...parseOutput<SparkRun>('SparkSql', run), ms: run.ms };
}
