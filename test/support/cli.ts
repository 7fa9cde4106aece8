/**
 * The `sluice` command line as a user runs it: one process of the bin (compiled CLI), with the
 * environment that points it at a mesh (TestMesh.clientEnv). TZ is UTC unless given, because
 * DuckDB prints timestamptz values in the session's zone and tests write expected rows in UTC.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `sluice <args>` with `env` over this process's environment; its exit code and output. */
export async function runSluice(env: Readonly<Record<string, string>>, ...args: string[]): Promise<CliRun> {
  const child = spawn(process.execPath, ['cli/bin/sluice.mjs', ...args], {
    cwd: root,
    env: { ...process.env, TZ: 'UTC', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (t: string) => (stdout += t));
  child.stderr!.setEncoding('utf8').on('data', (t: string) => (stderr += t));
  const [code] = (await once(child, 'exit')) as [number];
  return { code, stdout, stderr };
}

/** `sluice <args> --json`, which must succeed; its parsed output. */
export async function runSluiceJson<T = unknown>(env: Readonly<Record<string, string>>, ...args: string[]): Promise<T> {
  const run = await runSluice(env, ...args, '--json');
  assert.equal(run.code, 0, `sluice ${args.join(' ')} exited ${run.code}: ${run.stderr}`);
  return JSON.parse(run.stdout) as T;
}
