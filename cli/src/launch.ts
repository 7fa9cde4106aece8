/**
 * How Sluice's programs are started as processes, in one place: `sluice up`, the tests'
 * process mesh and the benchmarks all launch the compiled JavaScript under dist/ (`npm run
 * build`), so a start costs Node's start-up and the program's own, not a TypeScript compile.
 *
 * This module runs from source (tests, through tsx) and compiled (`sluice up`, from dist/);
 * either way it finds the same dist/ directory.
 */
import { type ChildProcess, type SpawnOptions, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ClientSecurity } from '#shared/grpc/client.js';
import { waitForServing } from '#shared/grpc/health.js';

/** cli/src/ is two levels below the tree root, in the sources and in dist/ alike. */
const treeRoot = fileURLToPath(new URL('../..', import.meta.url));

/** The compiled tree: this module's own tree when it runs compiled, else <repo>/dist. */
export const DIST_DIR = basename(resolve(treeRoot)) === 'dist' ? resolve(treeRoot) : join(treeRoot, 'dist');
/** The repository (the working directory of every launched program). */
export const REPO_DIR = resolve(DIST_DIR, '..');

export const SERVICES = ['catalog', 'transformation', 'commit', 'ingestion'] as const;
export type ServiceName = (typeof SERVICES)[number];
export type Program = ServiceName | 'dev-broker' | 'cli';

const ENTRY_POINTS: Record<Program, string> = {
  catalog: 'services/catalog/src/main.js',
  transformation: 'services/transformation/src/main.js',
  commit: 'services/commit/src/main.js',
  ingestion: 'services/ingestion/src/main.js',
  'dev-broker': 'devtools/kafka-broker/src/main.js',
  cli: 'cli/src/main.js',
};

/** A program's compiled entry point did not exist: the build has not run. */
export class NotBuiltError extends Error {
  constructor(
    readonly program: Program,
    readonly path: string,
  ) {
    super(`${program} is not built (${path} is missing): run npm run build`);
    this.name = 'NotBuiltError';
  }
}

/**
 * V8's heap flags for the services that move records: limits in MiB, and switches (true).
 *
 * Old space: left alone, V8 grows the heap lazily towards a quarter of the machine's memory
 * while records stream through, so the process's peak RSS followed the backlog, not the
 * configuration.
 *
 * Young generation (transformation): V8's default semi-space of 16 MiB let the young
 * generation hold 20-35 MB more than a 4 MiB one, and transformation's garbage is short lived
 * (its rows are tokens in reused buffers), so the smaller one cost no measured CPU. 2 MiB took
 * 9-15 MB more off its wide peak (pipeline bench, three runs a side twice: 280-281 MB against
 * 289-295; backlog phase 239-247 against 252-260) with its CPU inside the runs' noise.
 *
 * One collector thread (`--single-threaded-gc`): V8 collects in parallel with helper threads
 * by default, and on two cores their coordination cost more CPU than the parallel work saved.
 * The pipeline bench, same code, parallel → single-threaded, CPU seconds for 1M records:
 * narrow ingestion 1.52 → 1.01 and transformation 3.69 → 3.26; wide 3.79 → 2.38 and
 * 10.13 → 9.46, with throughput no lower (narrow 234k → 306k rows/s, wide 102k → 116k).
 *
 * With these limits every service stays under 300 MB in the pipeline bench, also with a
 * 1M-record backlog (DESIGN.md, "What bounds each service's memory"). A flag of the same name
 * in NODE_OPTIONS wins. The deploy files pass the same flags (test/foundation/deploy.test.ts).
 */
export const HEAP_FLAGS: Partial<Record<Program, Record<string, number | true>>> = {
  ingestion: { 'max-old-space-size': 256, 'single-threaded-gc': true },
  transformation: { 'max-old-space-size': 256, 'max-semi-space-size': 2, 'single-threaded-gc': true },
};

/** A program's heap flags for `node`, less those NODE_OPTIONS already sets. */
export function heapFlags(program: Program, env: NodeJS.ProcessEnv = process.env): string[] {
  const options = env.NODE_OPTIONS ?? '';
  return Object.entries(HEAP_FLAGS[program] ?? {})
    .filter(([name]) => !options.includes(`--${name}`))
    .map(([name, value]) => (value === true ? `--${name}` : `--${name}=${value}`));
}

/** The arguments to give `node` to run a program. */
export function programArgs(program: Program, args: readonly string[] = [], env: NodeJS.ProcessEnv = process.env): string[] {
  const entry = join(DIST_DIR, ENTRY_POINTS[program]);
  if (!existsSync(entry)) throw new NotBuiltError(program, entry);
  return [...heapFlags(program, env), entry, ...args];
}

/**
 * The allocator's settings every program starts with. DuckDB's library carries its own
 * jemalloc, which keeps the pages a dropped table freed for 5 s: transformation's RSS was a
 * sawtooth whose teeth stood on those pages (DESIGN.md, "Transformation under 300 MB").
 * jemalloc reads its settings once, when the library loads, from the environment the process
 * started with (set from inside the process they come too late), hence here and in the image
 * (deploy/Dockerfile). Purging dirty pages after 1 s, the wide shape of the pipeline bench, 1M
 * records, three alternating pairs: transformation's peak 288-290 MB → 270-273, its CPU 8.9-13.0 s
 * against 9.2-10.9 (within the noise); a decay of 0 had doubled its CPU. What the environment
 * sets wins.
 */
export const ALLOCATOR_ENV: Readonly<Record<string, string>> = { DUCKDB_JE_MALLOC_CONF: 'dirty_decay_ms:1000,muzzy_decay_ms:0' };

/** The environment a program starts with: `env` over ALLOCATOR_ENV. */
export function programEnv(env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  return { ...ALLOCATOR_ENV, ...env };
}

/** Spawns a program with this Node, from the repository directory unless options say otherwise. */
export function spawnProgram(program: Program, args: readonly string[], options: SpawnOptions = {}): ChildProcess {
  return spawn(process.execPath, programArgs(program, args), { cwd: REPO_DIR, ...options, env: programEnv(options.env ?? process.env) });
}

/**
 * How long to wait for `starting` processes launched together to answer SERVING. A compiled
 * service is SERVING in about a second on an idle machine; processes starting together share
 * the cores, and a CI machine may be running other work, so the allowance grows with both
 * rather than being one fixed number that a loaded machine exceeds.
 */
export function startupTimeoutMs(starting: number, env: Record<string, string | undefined> = process.env): number {
  const perProcessMs = 10_000;
  const allowance = 20_000 + perProcessMs * Math.max(1, starting);
  return env.CI ? 2 * allowance : allowance;
}

/**
 * Waits until a service answers SERVING; the timeout message names it, its address and the
 * wait. `security` is the TLS to reach it with (health needs no token); plaintext by default.
 */
export function waitUntilServing(name: string, address: string, timeoutMs: number, security?: ClientSecurity): Promise<void> {
  return waitForServing(address, timeoutMs, `the ${name} service at ${address}`, security?.credentials);
}

/**
 * Waits for a program that announces its address on stdout ("listening on host:port", as the
 * dev broker does) and resolves with that address. Rejects as soon as the program exits, or
 * after timeoutMs; both messages name `what` (e.g. "the dev broker on port 9092").
 */
export function waitForListeningAddress(child: ChildProcess, what: string, timeoutMs: number): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    let buffered = '';
    const onData = (chunk: Buffer | string) => {
      buffered += chunk.toString();
      const match = /listening on (\S+)/.exec(buffered);
      if (match) settle(() => resolve(match[1]));
    };
    const onExit = (code: number | null, signal: NodeJS.Signals | null) =>
      settle(() => reject(new Error(`${what} exited (${signal ?? `code ${code}`}) before it was listening`)));
    const timer = setTimeout(
      () => settle(() => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what} to be listening`))),
      timeoutMs,
    );
    const settle = (finish: () => void) => {
      clearTimeout(timer);
      child.stdout?.off('data', onData);
      child.off('exit', onExit);
      finish();
    };
    if (!child.stdout) throw new Error(`${what} was started without a stdout pipe to read its address from`);
    child.stdout.on('data', onData);
    child.once('exit', onExit);
  });
}
