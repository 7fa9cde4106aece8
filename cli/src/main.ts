/**
 * The `sluice` command line: a gRPC client of the mesh for data engineers and scripts. Every
 * command takes --json; failures are one line on stderr and a non-zero exit code
 * (2: usage or invalid input, 3: the mesh is unreachable, 1: anything else).
 */
import { parseArgs } from 'node:util';
import type { CliContext } from './context.js';
import { HELP } from './help.js';
import { createOutput, describeError, table, usageError } from './output.js';

const OPTIONS = {
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  file: { type: 'string', short: 'f' },
  start: { type: 'boolean' },
  watch: { type: 'boolean' },
  demo: { type: 'boolean' },
  topic: { type: 'string' },
  brokers: { type: 'string' },
  format: { type: 'string' },
  mode: { type: 'string' },
  'csv-columns': { type: 'string' },
  'csv-delimiter': { type: 'string' },
  samples: { type: 'string' },
  'flatten-level': { type: 'string' },
  columns: { type: 'string' },
  'partition-spec': { type: 'string' },
  location: { type: 'string' },
  snapshot: { type: 'string' },
  'as-of': { type: 'string' },
  from: { type: 'string' },
  to: { type: 'string' },
  instance: { type: 'string' },
  key: { type: 'string' },
  all: { type: 'boolean' },
  token: { type: 'string' },
  'tls-ca': { type: 'string' },
  'tls-cert': { type: 'string' },
  'tls-key': { type: 'string' },
} as const;

/** Connection flags and the variables they stand for; a flag wins over the variable. */
const CONNECTION_FLAGS = {
  token: 'SLUICE_TOKEN',
  'tls-ca': 'SLUICE_TLS_CA',
  'tls-cert': 'SLUICE_TLS_CERT',
  'tls-key': 'SLUICE_TLS_KEY',
} as const;

/** The environment the commands read, with the connection flags given in place of their variables. */
function connectionEnv(
  flags: Partial<Record<keyof typeof CONNECTION_FLAGS, string>>,
  env: Record<string, string | undefined>,
): Record<string, string | undefined> {
  const merged = { ...env };
  for (const [flag, variable] of Object.entries(CONNECTION_FLAGS)) {
    const value = flags[flag as keyof typeof CONNECTION_FLAGS];
    if (value !== undefined) merged[variable] = value;
  }
  return merged;
}

export async function main(argv: string[]): Promise<number> {
  let parsed: ReturnType<typeof parseArgs<{ args: string[]; options: typeof OPTIONS; allowPositionals: true; strict: true }>>;
  try {
    parsed = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
  } catch (err) {
    process.stderr.write(`sluice: ${(err as Error).message} (see sluice --help)\n`);
    return 2;
  }
  const { values: flags, positionals } = parsed;
  const [command, ...args] = positionals;
  if (flags.help || !command) {
    process.stdout.write(`${HELP}\n`);
    return command || flags.help ? 0 : 2;
  }
  const out = createOutput(flags.json ?? false);
  let ctx: CliContext | undefined;
  try {
    // Each command is loaded when it runs: a command pays only for its own dependencies
    // (the query engine, the Kafka client), and --help for none.
    if (command === 'up') return await (await import('./commands/demo.js')).upCommand(out, flags.demo ?? false);
    ctx = new (await import('./context.js')).CliContext(out, connectionEnv(flags, process.env));
    switch (command) {
      case 'source':
        await (await import('./commands/source.js')).sourceCommand(ctx, args, flags);
        break;
      case 'infer':
        await (await import('./commands/infer.js')).inferCommand(ctx, args, flags);
        break;
      case 'table':
        await (await import('./commands/table.js')).tableCommand(ctx, args, flags);
        break;
      case 'job':
        await (await import('./commands/job.js')).jobCommand(ctx, args, flags);
        break;
      case 'health': {
        // A probe's command (deploy/k8s): under mutual TLS the kubelet's own gRPC probe cannot connect.
        const [address] = args;
        if (!address || !/^[^\s,]+:\d{1,5}$/.test(address)) throw usageError('health needs one address, host:port');
        const status = await ctx.health(address);
        out.result({ address, status }, () => `${address} ${status}`);
        if (status !== 'SERVING') return 1;
        break;
      }
      case 'query': {
        const { parseAsOf, runQuery } = await import('./query.js');
        const [sql] = args;
        if (!sql) throw usageError('query needs the SQL text, quoted');
        if (flags.snapshot && flags['as-of']) throw usageError('give --snapshot or --as-of, not both');
        if (flags.snapshot !== undefined && !/^\d+$/.test(flags.snapshot))
          throw usageError('--snapshot must be a snapshot id (see sluice table history)');
        const result = await runQuery(ctx.catalog(), sql, {
          snapshotId: flags.snapshot !== undefined ? Number(flags.snapshot) : undefined,
          asOfMs: flags['as-of'] !== undefined ? parseAsOf(flags['as-of']) : undefined,
        });
        out.result(
          result,
          () =>
            `${table(
              result.columns,
              result.rows.map((r) => result.columns.map((c) => r[c])),
            )}\n(${result.rows.length} row${result.rows.length === 1 ? '' : 's'})`,
        );
        break;
      }
      default:
        throw usageError(`unknown command ${JSON.stringify(command)}`);
    }
    return 0;
  } catch (err) {
    const { line, exitCode } = describeError(err);
    process.stderr.write(`sluice: ${line}\n`);
    return exitCode;
  } finally {
    ctx?.close();
  }
}

const code = await main(process.argv.slice(2));
// `up` returns once its processes have stopped; exit now so no idle client handle keeps us alive.
// Writes to a pipe are asynchronous: exit once stdout has taken everything written before, or a
// large result (a query's thousands of rows) is cut short for whoever reads it.
process.stdout.write('', () => process.exit(code));
