/**
 * A real S3-compatible server for tests: S3Proxy (peers/s3, fetched by `npm run peers`) with
 * its filesystem backend over a temporary directory, on a free port, one process per call.
 * Objects are plain files below `dir/<bucket>/`, so a test can look at what was written.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { S3Storage, type S3Options } from '#shared/storage/s3.js';
import { killOnExit, removeOnExit } from './exit-cleanup.js';
import { freePort } from './ports.js';
import { waitFor } from './wait.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
export const S3_CLASSPATH_FILE = join(root, 'peers/s3/target/classpath.txt');

export interface TestS3 {
  /** The S3 API's base URL. */
  endpoint: string;
  /** The directory the objects live in (a directory per bucket). */
  dir: string;
  /** Options for an S3Storage of this server (path-style, its credentials). */
  options: S3Options;
  /** The AWS variables a service needs to reach it. */
  env: Record<string, string>;
  /** Creates a bucket. */
  createBucket(name: string): Promise<void>;
  stop(): Promise<void>;
}

export async function startS3(): Promise<TestS3> {
  if (!existsSync(S3_CLASSPATH_FILE)) throw new Error(`${S3_CLASSPATH_FILE} is missing: run \`npm run peers\` first`);
  const dir = await mkdtemp(join(tmpdir(), 'sluice-s3-'));
  const forget = removeOnExit(dir);
  const port = await freePort();
  const endpoint = `http://127.0.0.1:${port}`;
  const accessKeyId = 'sluice-test';
  const secretAccessKey = 'sluice-test-secret';
  const config = join(dir, 's3proxy.properties');
  const data = join(dir, 'data');
  await mkdir(data, { recursive: true });
  await writeFile(
    config,
    [
      `s3proxy.endpoint=${endpoint}`,
      's3proxy.authorization=aws-v4',
      `s3proxy.identity=${accessKeyId}`,
      `s3proxy.credential=${secretAccessKey}`,
      'jclouds.provider=filesystem',
      `jclouds.filesystem.basedir=${data}`,
      '',
    ].join('\n'),
  );
  const child: ChildProcess = spawn(
    'java',
    [
      '-cp',
      readFileSync(S3_CLASSPATH_FILE, 'utf8').trim(),
      '-Dorg.slf4j.simpleLogger.defaultLogLevel=warn',
      'org.gaul.s3proxy.Main',
      '--properties',
      config,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  killOnExit(child);
  let stderr = '';
  const keep = (c: Buffer) => (stderr = (stderr + c.toString()).slice(-4000));
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const options: S3Options = { endpoint, region: 'us-east-1', accessKeyId, secretAccessKey, pathStyle: true, retries: 1 };
  const admin = new S3Storage(options);
  await waitFor(
    'S3Proxy to answer',
    async () => {
      if (child.exitCode !== null)
        throw new Error(`S3Proxy exited (${child.exitCode}): ${stderr.trim().split('\n').slice(-3).join(' | ')}`);
      return fetch(endpoint).then(
        () => true,
        () => false,
      );
    },
    { timeoutMs: 60_000, intervalMs: 100 },
  );
  return {
    endpoint,
    dir: data,
    options,
    env: {
      AWS_ENDPOINT_URL: endpoint,
      AWS_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: accessKeyId,
      AWS_SECRET_ACCESS_KEY: secretAccessKey,
      SLUICE_S3_PATH_STYLE: 'true',
    },
    createBucket: (name) => admin.createBucket(name),
    async stop() {
      if (child.exitCode === null) {
        child.kill('SIGKILL');
        await new Promise((resolve) => child.once('exit', resolve));
      }
      await rm(dir, { recursive: true, force: true });
      forget();
    },
  };
}
