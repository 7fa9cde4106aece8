/**
 * The `sluice` command line: a gRPC client of the mesh for data engineers and scripts. Every
 * command takes --json; failures are one line on stderr and a non-zero exit code
 * (2: usage or invalid input, 3: the mesh is unreachable, 1: anything else).
 */
import { parseArgs } from 'node:util';
import { CliContext } from './context.js';
import { INFER_HELP, inferCommand } from './commands/infer.js';
import { JOB_HELP, jobCommand } from './commands/job.js';
import { SOURCE_HELP, sourceCommand } from './commands/source.js';
import { TABLE_HELP, tableCommand } from './commands/table.js';
import { upCommand } from './commands/demo.js';
import { createOutput, describeError, table, usageError } from './output.js';
import { parseAsOf, runQuery } from './query.js';

const HELP = `sluice — Kafka to Apache Iceberg, exactly once

sluice up [--demo]                 start the mesh (with the embedded dev broker when KAFKA_BROKERS is unset)
${SOURCE_HELP}
${INFER_HELP}
${TABLE_HELP}
${JOB_HELP}
sluice query "<SQL>" [--snapshot <id> | --as-of <time>]

Every command takes --json. Services are found at CATALOG_ADDRESS, INGESTION_ADDRESS and
TRANSFORMATION_ADDRESS (defaults 127.0.0.1:50051, :50052, :50053).`;

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
} as const;

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
    if (command === 'up') return await upCommand(out, flags.demo ?? false);
    ctx = new CliContext(out);
    switch (command) {
      case 'source':
        await sourceCommand(ctx, args, flags);
        break;
      case 'infer':
        await inferCommand(ctx, args, flags);
        break;
      case 'table':
        await tableCommand(ctx, args, flags);
        break;
      case 'job':
        await jobCommand(ctx, args, flags);
        break;
      case 'query': {
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
process.exit(code);
