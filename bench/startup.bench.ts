// Start-up time: from spawn to SERVING (grpc.health.v1) for each of the four services, and
// until `sluice --help` has printed and exited, compiled (dist/, as sluice up, the Dockerfile and
// the tests run them) and through tsx (compiling TypeScript at each start, as before the build)
// in the same run. Targets (idle machine): each service SERVING within 1.5 s, a CLI command
// within 0.5 s. Each figure is the median of several starts after one warm-up start.
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { programArgs, REPO_DIR, SERVICES, type ServiceName } from '#cli/launch.js';
import { checkHealth } from '#shared/grpc/health.js';
import { freePort } from '#test-support/ports.js';
import { createTestDatabase } from '#test-support/postgres.js';

const REPETITIONS = Number(process.env.BENCH_STARTUP_REPETITIONS ?? 5);
const TARGET_SERVICE_MS = 1500;
const TARGET_CLI_MS = 500;

type Variant = 'compiled' | 'tsx';

function nodeArgs(variant: Variant, program: ServiceName | 'cli', args: string[] = []): string[] {
  if (variant === 'compiled') return programArgs(program, args);
  const source = program === 'cli' ? 'cli/src/main.ts' : `services/${program}/src/main.ts`;
  return ['--import', 'tsx', source, ...args];
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return Math.round(s[Math.floor(s.length / 2)]);
};

/** Milliseconds from spawn until the service answers SERVING; the process is stopped afterwards. */
async function timeToServing(variant: Variant, name: ServiceName, env: Record<string, string>): Promise<number> {
  const port = await freePort();
  const address = `127.0.0.1:${port}`;
  const started = performance.now();
  const child: ChildProcess = spawn(process.execPath, nodeArgs(variant, name), {
    cwd: REPO_DIR,
    env: { ...env, [`${name.toUpperCase()}_PORT`]: String(port) },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  try {
    const deadline = started + 60_000;
    while ((await checkHealth(address, '', 500)) !== 'SERVING') {
      if (child.exitCode !== null) throw new Error(`${name} (${variant}) exited with code ${child.exitCode} before it was SERVING`);
      if (performance.now() > deadline) throw new Error(`${name} (${variant}) was not SERVING on ${address} after 60 s`);
      await sleep(10);
    }
    return performance.now() - started;
  } finally {
    if (child.exitCode === null) {
      child.kill('SIGKILL');
      await once(child, 'exit');
    }
  }
}

async function timeCliHelp(variant: Variant): Promise<number> {
  const started = performance.now();
  const child = spawn(process.execPath, nodeArgs(variant, 'cli', ['--help']), { cwd: REPO_DIR, stdio: 'ignore' });
  const [code] = await once(child, 'exit');
  if (code !== 0) throw new Error(`sluice --help (${variant}) exited with code ${code}`);
  return performance.now() - started;
}

export default async function run(): Promise<Record<string, unknown>> {
  const db = await createTestDatabase('sluice_bench_startup');
  const warehouse = await mkdtemp(join(tmpdir(), 'sluice-bench-startup-'));
  // The services start without their peers reachable: SERVING means the process is up and its
  // own dependencies (PostgreSQL, NATS) are connected, which is what start-up costs.
  const env: Record<string, string> = {
    ...(process.env as Record<string, string>),
    DATABASE_URL: db.url,
    NATS_URL: process.env.NATS_URL ?? 'nats://127.0.0.1:4222',
    SLUICE_WAREHOUSE: warehouse,
    KAFKA_BROKERS: '127.0.0.1:9',
    LOG_LEVEL: 'warn',
  };
  delete env.OTEL_EXPORTER_OTLP_ENDPOINT;
  const results: Record<Variant, Record<string, number>> = { compiled: {}, tsx: {} };
  try {
    for (const variant of ['compiled', 'tsx'] as const) {
      for (const name of SERVICES) {
        await timeToServing(variant, name, env); // warm-up: the file cache, and the catalog's migrations
        const times: number[] = [];
        for (let i = 0; i < REPETITIONS; i++) times.push(await timeToServing(variant, name, env));
        results[variant][`${name}ServingMs`] = median(times);
      }
      await timeCliHelp(variant);
      const times: number[] = [];
      for (let i = 0; i < REPETITIONS; i++) times.push(await timeCliHelp(variant));
      results[variant].cliHelpMs = median(times);
    }
  } finally {
    await db.drop();
    await rm(warehouse, { recursive: true, force: true });
  }
  const compiled = results.compiled;
  const slowestService = Math.max(...SERVICES.map((name) => compiled[`${name}ServingMs`]));
  return {
    repetitions: REPETITIONS,
    ...results,
    targets: { serviceServingMs: TARGET_SERVICE_MS, cliMs: TARGET_CLI_MS },
    met: slowestService <= TARGET_SERVICE_MS && compiled.cliHelpMs <= TARGET_CLI_MS,
    speedupOverTsx: Number(
      (SERVICES.reduce((sum, n) => sum + results.tsx[`${n}ServingMs`] / compiled[`${n}ServingMs`], 0) / SERVICES.length).toFixed(2),
    ),
  };
}
