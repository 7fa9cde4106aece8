import { parseArgs } from 'node:util';
import { startDevBroker, DevBrokerError } from './index.js';

class UsageError extends Error {}

function integerFlag(name: string, raw: string | undefined, fallback: number, min: number, max: number): number {
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!/^\d+$/.test(raw) || n < min || n > max) throw new UsageError(`--${name} must be an integer from ${min} to ${max}, got "${raw}"`);
  return n;
}

function parse(argv: string[]) {
  const options = {
    port: { type: 'string' },
    host: { type: 'string' },
    'data-dir': { type: 'string' },
    partitions: { type: 'string' },
  } as const;
  let values: ReturnType<typeof parseArgs<{ args: string[]; strict: true; allowPositionals: false; options: typeof options }>>['values'];
  try {
    ({ values } = parseArgs({ args: argv, strict: true, allowPositionals: false, options }));
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  return {
    port: integerFlag('port', values.port, 9092, 0, 65535),
    host: values.host ?? '127.0.0.1',
    dataDir: values['data-dir'],
    defaultPartitions: integerFlag('partitions', values.partitions, 1, 1, 10_000),
  };
}

async function main(): Promise<void> {
  const options = parse(process.argv.slice(2));
  const broker = await startDevBroker(options);
  process.stdout.write(`listening on ${broker.address}\n`);
  const shutdown = () => {
    broker.stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once('SIGTERM', shutdown);
  process.once('SIGINT', shutdown);
  // Under `sluice up`, stdin is a pipe from the launcher: it closes when the launcher dies.
  if (process.env.SLUICE_EXIT_WITH_PARENT === '1') {
    process.stdin.once('close', shutdown);
    process.stdin.resume();
  }
}

main().catch((err: unknown) => {
  const known = err instanceof UsageError || err instanceof DevBrokerError;
  const code = (err as NodeJS.ErrnoException).code;
  const message = known
    ? (err as Error).message
    : code === 'EADDRINUSE' || code === 'EACCES' || code === 'EADDRNOTAVAIL'
      ? `cannot listen: ${(err as Error).message}`
      : String((err as Error).message ?? err);
  process.stderr.write(`dev-broker: ${message}\n`);
  process.exit(2);
});
