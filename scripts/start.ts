/**
 * `npm start`: runs the four services as child processes and stops them all cleanly on
 * Ctrl-C/SIGTERM. If one dies, the others are stopped too and the exit code says so.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { ConfigError, loadConfig } from '../shared/src/config.js';
import { waitForServing } from '../shared/src/grpc/health.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const SERVICES = ['catalog', 'transformation', 'commit', 'ingestion'] as const;

function loadStartConfig() {
  try {
    return loadConfig(['catalogPort', 'ingestionPort', 'transformationPort', 'commitPort', 'shutdownTimeoutMs']);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`sluice: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
}
const config = loadStartConfig();
const ports: Record<(typeof SERVICES)[number], number> = {
  catalog: config.catalogPort,
  ingestion: config.ingestionPort,
  transformation: config.transformationPort,
  commit: config.commitPort,
};

const children = new Map<string, ChildProcess>();
let stopping = false;

function stopAll(exitCode: number, reason?: string): void {
  if (stopping) return;
  stopping = true;
  if (reason) process.stderr.write(`sluice: ${reason}; stopping all services\n`);
  for (const child of children.values()) child.kill('SIGTERM');
  const force = setTimeout(() => {
    for (const child of children.values()) child.kill('SIGKILL');
  }, config.shutdownTimeoutMs + 5000);
  force.unref();
  const waitAll = [...children.values()].map(
    (child) => new Promise<void>((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve() : child.once('exit', () => resolve()))),
  );
  void Promise.all(waitAll).then(() => process.exit(exitCode));
}

for (const name of SERVICES) {
  const child = spawn(process.execPath, ['--import', 'tsx', `services/${name}/src/main.ts`], {
    cwd: root,
    stdio: ['ignore', 'inherit', 'inherit'],
    env: process.env,
  });
  children.set(name, child);
  child.on('exit', (code, signal) => {
    children.delete(name);
    if (!stopping) stopAll(1, `${name} exited unexpectedly (${signal ?? `code ${code}`})`);
  });
}

process.on('SIGINT', () => stopAll(0));
process.on('SIGTERM', () => stopAll(0));

try {
  await Promise.all(SERVICES.map((name) => waitForServing(`127.0.0.1:${ports[name]}`, 30_000)));
  if (!stopping) {
    process.stderr.write(
      `sluice: all services SERVING — ${SERVICES.map((n) => `${n} 127.0.0.1:${ports[n]}`).join(', ')} (Ctrl-C stops them)\n`,
    );
  }
} catch (err) {
  stopAll(1, (err as Error).message);
}
