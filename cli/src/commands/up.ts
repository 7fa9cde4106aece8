/**
 * `sluice up` (and `npm start`): the four services as child processes, plus the embedded
 * Kafka-protocol dev broker when KAFKA_BROKERS is unset. Ctrl-C or SIGTERM stops everything
 * cleanly; if one process dies, the rest are stopped and the exit code says so.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { loadConfig } from '#shared/config.js';
import { CLIENT_SECURITY_KEYS, clientSecurity } from '#shared/grpc/client.js';
import { type Program, REPO_DIR, SERVICES, spawnProgram, startupTimeoutMs, waitForListeningAddress, waitUntilServing } from '../launch.js';
import { forgetDevBroker, recordDevBroker } from '../dev-broker.js';
import { humanLogWriter } from '../log-lines.js';
import { CliError, type Output } from '../output.js';

/** Who stops first: the reverse of the data's path, the broker last. */
const STOP_ORDER: readonly Program[] = ['ingestion', 'transformation', 'commit', 'catalog', 'dev-broker'];

export interface Mesh {
  /** Bootstrap brokers the services use (the dev broker's address when embedded). */
  readonly brokers: string[];
  readonly embeddedBroker: boolean;
  /** Resolves with the exit code once everything has stopped. */
  readonly stopped: Promise<number>;
  stop(exitCode?: number, reason?: string): void;
  /** Process ids by name (catalog, ingestion, transformation, commit, dev-broker), for monitoring. */
  pids(): Record<string, number>;
}

export interface MeshOptions {
  /** Stop on SIGINT/SIGTERM of this process (the CLI); embedding callers may handle signals themselves. */
  handleSignals?: boolean;
  /** The services' JSON log lines as they are (`sluice up --json`), not rewritten for a person (log-lines.ts). */
  jsonLogs?: boolean;
}

export async function startMesh(
  out: Output,
  env: Record<string, string | undefined> = process.env,
  options: MeshOptions = {},
): Promise<Mesh> {
  const config = loadConfig(
    [
      'catalogPort',
      'ingestionPort',
      'transformationPort',
      'commitPort',
      'shutdownTimeoutMs',
      'kafkaBrokers',
      'devBrokerPort',
      'devBrokerDataDir',
    ],
    env,
  );
  // Plaintext on loopback unless the environment configures TLS, which the services then serve.
  const security = clientSecurity(loadConfig(CLIENT_SECURITY_KEYS, env));
  const children = new Map<string, ChildProcess>();
  let stopping = false;
  /** Whether this process recorded the dev broker's address (and so removes it). */
  let recordedBroker = false;
  let resolveStopped!: (code: number) => void;
  const stopped = new Promise<number>((resolve) => (resolveStopped = resolve));

  const stop = (exitCode = 0, reason?: string) => {
    if (stopping) return;
    stopping = true;
    if (reason) process.stderr.write(`sluice: ${reason}; stopping everything\n`);
    // In the reverse of the data's path, each once the one before it has exited: ingestion
    // stops reading and flushes through transformation and commit, which are still up; the
    // catalog outlives them all, and the broker goes last, so no client sees it vanish.
    const exited = (child: ChildProcess) =>
      new Promise<void>((resolve) =>
        child.exitCode !== null || child.signalCode !== null ? resolve() : child.once('exit', () => resolve()),
      );
    const force = setTimeout(
      () => {
        for (const child of children.values()) child.kill('SIGKILL');
      },
      STOP_ORDER.length * (config.shutdownTimeoutMs + 5000),
    );
    force.unref();
    void (async () => {
      for (const name of STOP_ORDER) {
        const child = children.get(name);
        if (!child) continue;
        if (name === 'dev-broker' && recordedBroker) forgetDevBroker(config.devBrokerDataDir);
        child.kill('SIGTERM');
        await exited(child);
      }
    })().then(() => resolveStopped(exitCode));
  };

  const launch = (name: Program, args: string[], childEnv: Record<string, string | undefined>, stdout: 'inherit' | 'pipe') => {
    // The stdin pipe closes when this process dies, however it dies, and the child then stops.
    const child = spawnProgram(name, args, {
      stdio: ['pipe', stdout, 'inherit'],
      env: { ...childEnv, SLUICE_EXIT_WITH_PARENT: '1' },
      // A process group of its own: Ctrl-C signals the terminal's whole foreground group, which
      // would stop every piece at once; this process stops them in order instead (STOP_ORDER).
      detached: true,
    });
    children.set(name, child);
    child.on('exit', (code, signal) => {
      children.delete(name);
      if (!stopping) stop(1, `${name} exited unexpectedly (${signal ?? `code ${code}`})`);
    });
    return child;
  };

  const serviceEnv = { ...env };
  let brokers = config.kafkaBrokers;
  const embeddedBroker = brokers.length === 0;
  if (embeddedBroker) {
    const dataDir = resolve(REPO_DIR, config.devBrokerDataDir);
    mkdirSync(dataDir, { recursive: true });
    const broker = launch('dev-broker', ['--port', String(config.devBrokerPort), '--data-dir', dataDir, '--partitions', '3'], env, 'pipe');
    const what = `the dev broker on port ${config.devBrokerPort}`;
    const address = await waitForListeningAddress(broker, what, startupTimeoutMs(1, env)).catch((err: Error) => {
      const exited = broker.exitCode !== null || broker.signalCode !== null;
      stop(1);
      throw new CliError(exited ? `${err.message} (is the port taken? set SLUICE_DEV_BROKER_PORT)` : err.message);
    });
    brokers = [address];
    serviceEnv.KAFKA_BROKERS = address;
    recordDevBroker(dataDir, address);
    recordedBroker = true;
    out.note(`sluice: no KAFKA_BROKERS set, so the embedded dev broker serves Kafka on ${address}`);
  }

  for (const name of SERVICES) {
    const child = launch(name, [], serviceEnv, options.jsonLogs ? 'inherit' : 'pipe');
    if (!options.jsonLogs)
      child.stdout!.setEncoding('utf8').on(
        'data',
        humanLogWriter((text) => process.stdout.write(text)),
      );
  }

  if (options.handleSignals !== false) {
    process.on('SIGINT', () => stop(0));
    process.on('SIGTERM', () => stop(0));
  }

  const ports: Record<(typeof SERVICES)[number], number> = {
    catalog: config.catalogPort,
    ingestion: config.ingestionPort,
    transformation: config.transformationPort,
    commit: config.commitPort,
  };
  try {
    const timeoutMs = startupTimeoutMs(SERVICES.length, env);
    await Promise.all(SERVICES.map((name) => waitUntilServing(name, `127.0.0.1:${ports[name]}`, timeoutMs, security)));
  } catch (err) {
    // A service that exited has already stopped everything and said why.
    if (stopping) throw new CliError('the mesh did not start', 1);
    stop(1, (err as Error).message);
    throw new CliError((err as Error).message);
  }
  out.note(`sluice: all services SERVING — ${SERVICES.map((n) => `${n} 127.0.0.1:${ports[n]}`).join(', ')} (Ctrl-C stops them)`);
  const pids = () => Object.fromEntries([...children.entries()].map(([name, child]) => [name, child.pid ?? 0]));
  return { brokers, embeddedBroker, stopped, stop, pids };
}
