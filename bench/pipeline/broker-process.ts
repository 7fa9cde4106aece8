/**
 * The dev broker as its own process with in-memory storage on a free port. `sluice up`'s
 * embedded broker keeps its data in the repository's .sluice/kafka (shared with a running
 * `npm start`), so the benchmark starts its own and hands its address to the mesh as
 * KAFKA_BROKERS; the services cannot tell the difference.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { programArgs, startupTimeoutMs, waitForListeningAddress } from '#cli/launch.js';

const root = fileURLToPath(new URL('../..', import.meta.url));

export interface BrokerProcess {
  readonly address: string;
  readonly pid: number;
  stop(): Promise<void>;
}

export async function startBrokerProcess(partitions: number): Promise<BrokerProcess> {
  const child: ChildProcess = spawn(process.execPath, programArgs('dev-broker', ['--port', '0', '--partitions', String(partitions)]), {
    cwd: root,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const address = await waitForListeningAddress(child, "the benchmark's dev broker", startupTimeoutMs(1));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    address,
    pid: child.pid!,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}
