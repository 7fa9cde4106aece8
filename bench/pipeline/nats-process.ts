/**
 * A private nats-server on a free port for the benchmark's mesh. Subjects are not scoped per
 * catalog (`sluice.workers.>` is one namespace per NATS server), so on the shared server the
 * benchmark's commit service would react to the heartbeats of whatever tests or `npm start`
 * run beside it — and publish flush events on their subjects. Its own server keeps both sides
 * undisturbed. The services use core NATS only (no JetStream).
 */
import { spawn } from 'node:child_process';
import { connect } from 'nats';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort } from '#test-support/ports.js';

export interface NatsProcess {
  readonly url: string;
  readonly pid: number;
  stop(): Promise<void>;
}

export async function startNatsProcess(): Promise<NatsProcess> {
  const port = await freePort();
  const child = spawn('nats-server', ['-a', '127.0.0.1', '-p', String(port)], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-2000)));
  const failed = new Promise<never>((_, reject) => {
    child.once('error', (err) => reject(new Error(`cannot run nats-server (is it installed?): ${err.message}`)));
    child.once('exit', (code) => reject(new Error(`nats-server exited (code ${code}): ${stderr.trim().split('\n').pop() ?? ''}`)));
  });
  failed.catch(() => {});
  const url = `nats://127.0.0.1:${port}`;
  const ready = (async () => {
    for (let attempt = 0; attempt < 100; attempt++) {
      try {
        const nc = await connect({ servers: url, reconnect: false, timeout: 500 });
        await nc.close();
        return;
      } catch {
        await sleep(50);
      }
    }
    throw new Error(`nats-server on ${url} did not accept connections`);
  })();
  await Promise.race([ready, failed]);
  const exited = new Promise<void>((resolve) => (child.exitCode !== null ? resolve() : child.once('exit', () => resolve())));
  return {
    url,
    pid: child.pid!,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}
