import type { Source } from '#shared/gen/sluice/v1/catalog.js';
import type { InferSchemaResponse } from '#shared/gen/sluice/v1/transformation.js';
import type { MappingSpec } from '#shared/gen/sluice/v1/types.js';
import type { CliContext } from '../context.js';
import { typeText } from '../iceberg-types.js';
import { recordedDevBroker } from '../dev-broker.js';
import { describeSampleFailure, sampleTopic } from '../kafka-sample.js';
import { CliError, table, usageError } from '../output.js';

/** The brokers the CLI samples from, and where they come from (for messages). */
export function samplingBrokers(ctx: CliContext, source: Source): { brokers: string[]; from: string } {
  if (source.brokers.length > 0) return { brokers: source.brokers, from: `the brokers of source ${source.name}` };
  if (ctx.settings.kafkaBrokers.length > 0) return { brokers: ctx.settings.kafkaBrokers, from: 'KAFKA_BROKERS' };
  const dev = recordedDevBroker(ctx.settings.devBrokerDataDir);
  if (dev) return { brokers: [dev], from: 'the dev broker sluice up started' };
  throw new CliError(
    `source ${source.name} names no brokers, KAFKA_BROKERS is unset and no sluice up dev broker is running; set KAFKA_BROKERS or give the source its brokers`,
    2,
  );
}

/** Samples the source's topic and asks transformation for the schema those messages imply. */
export async function inferFromSource(
  ctx: CliContext,
  source: Source,
  mapping: MappingSpec,
  samples: number,
): Promise<InferSchemaResponse> {
  const { brokers, from } = samplingBrokers(ctx, source);
  let records: Awaited<ReturnType<typeof sampleTopic>>;
  try {
    records = await sampleTopic(brokers, source.topic, samples, (n) => {
      if (process.stderr.isTTY && !ctx.out.json) process.stderr.write(`\rsampling ${source.topic}: ${n}/${samples} messages`);
    });
  } catch (err) {
    throw describeSampleFailure(err, brokers, source.topic, from);
  }
  if (process.stderr.isTTY && !ctx.out.json) process.stderr.write('\n');
  if (records.length === 0)
    throw new CliError(`topic ${source.topic} has no messages to sample yet; produce some, or give the columns explicitly`);
  const inferred = await ctx.transformation().inferSchema({ samples: records, mapping });
  if (inferred.fields.length === 0) {
    const why = inferred.warnings.length > 0 ? ` (${inferred.warnings[0]})` : '';
    throw new CliError(`no column could be inferred from ${records.length} messages of topic ${source.topic}${why}`);
  }
  return inferred;
}

export function mappingForSource(source: Source, flattenLevel: number): MappingSpec {
  return {
    format: source.format,
    mode: source.mode,
    flattenLevel,
    csv: source.csv,
    fields: [],
    partitionBy: undefined,
    errorPolicy: undefined,
    timeZone: 'UTC',
    includeFixedColumns: false,
  };
}

export async function inferCommand(ctx: CliContext, args: string[], flags: Record<string, string | boolean | undefined>): Promise<void> {
  const [name] = args;
  if (!name) throw usageError('infer needs a source name');
  const samples = Number(flags.samples ?? 200);
  // Seed 000's default: the top-level fields become columns.
  const flattenLevel = Number(flags['flatten-level'] ?? 1);
  if (!Number.isInteger(samples) || samples < 1 || samples > 100_000) throw usageError('--samples must be a whole number from 1 to 100000');
  if (!Number.isInteger(flattenLevel) || flattenLevel < 0 || flattenLevel > 4) throw usageError('--flatten-level must be 0, 1, 2, 3 or 4');
  const { source } = await ctx.catalog().getSource({ name });
  const result = await inferFromSource(ctx, source!, mappingForSource(source!, flattenLevel), samples);
  ctx.out.result(result, () =>
    [
      table(
        ['COLUMN', 'TYPE', 'NULLS', 'PATH', 'SAMPLE'],
        result.fields.map((f) => [
          f.name,
          typeText(f.type),
          f.required ? 'required' : 'optional',
          f.path,
          f.sample.length > 40 ? `${f.sample.slice(0, 37)}...` : f.sample,
        ]),
      ),
      ...result.warnings.map((w) => `warning: ${w}`),
    ].join('\n'),
  );
}
