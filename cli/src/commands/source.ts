import type { Source } from '#shared/gen/sluice/v1/catalog.js';
import type { CliContext } from '../context.js';
import { table, usageError } from '../output.js';
import { planSource } from '../spec.js';

const describeSource = (s: Source) => [
  s.name,
  s.topic,
  s.brokers.join(',') || '(default)',
  s.format.replace('MESSAGE_FORMAT_', ''),
  s.mode.replace('MESSAGE_MODE_', ''),
];

export async function sourceCommand(ctx: CliContext, args: string[], flags: Record<string, string | boolean | undefined>): Promise<void> {
  const [verb, name] = args;
  switch (verb) {
    case 'add': {
      if (!name) throw usageError('source add needs a name');
      const source = planSource(
        {
          name,
          topic: flags.topic,
          brokers: typeof flags.brokers === 'string' ? flags.brokers.split(',') : undefined,
          format: flags.format,
          mode: flags.mode,
          csv:
            flags['csv-columns'] || flags['csv-delimiter']
              ? {
                  columns: typeof flags['csv-columns'] === 'string' ? flags['csv-columns'].split(',') : undefined,
                  delimiter: flags['csv-delimiter'],
                }
              : undefined,
        },
        { warehouse: '', brokers: ctx.settings.kafkaBrokers },
      );
      const created = await ctx.catalog().createSource({ source });
      ctx.out.result(created.source, () => `source ${source.name} added (topic ${source.topic})`);
      return;
    }
    case 'list': {
      const { sources } = await ctx.catalog().listSources({});
      ctx.out.result(sources, () => table(['NAME', 'TOPIC', 'BROKERS', 'FORMAT', 'MODE'], sources.map(describeSource)));
      return;
    }
    case 'rm': {
      if (!name) throw usageError('source rm needs a name');
      await ctx.catalog().deleteSource({ name });
      ctx.out.result({ deleted: name }, () => `source ${name} removed`);
      return;
    }
    default:
      throw usageError(`unknown source command ${JSON.stringify(verb ?? '')}; use add, list or rm`);
  }
}
