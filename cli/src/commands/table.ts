import type { CreateTableRequest } from '#shared/gen/sluice/v1/catalog.js';
import type { PartitionSpec, TableRef } from '#shared/gen/sluice/v1/types.js';
import type { CliContext } from '../context.js';
import { keyedSchema, keyNames, parseColumnList, schemaRows } from '../iceberg-types.js';
import { CliError, table, usageError } from '../output.js';
import { readJobSpecFile } from '../spec.js';

export function parseTableRef(text: string | undefined): TableRef {
  const match = /^([^.\s]+)\.([^.\s]+)$/.exec(text ?? '');
  if (!match) throw usageError(`expected <database>.<table>, got ${JSON.stringify(text ?? '')}`);
  return { database: match[1], table: match[2] };
}

function parsePartitionSpec(text: string): PartitionSpec {
  const fields = text.split(/,(?![^[]*\])/).map((part) => {
    const match = /^\s*([a-z_]+(?:\[\d+\])?)\(([^)]+)\)\s*$/.exec(part);
    if (!match) throw usageError(`partition field ${JSON.stringify(part.trim())} is not like day(ts) or bucket[16](id)`);
    return { sourceId: 0, sourceName: match[2].trim(), fieldId: 0, name: '', transform: match[1] };
  });
  return { specId: 0, fields };
}

export async function tableCommand(ctx: CliContext, args: string[], flags: Record<string, string | boolean | undefined>): Promise<void> {
  const [verb, refText] = args;
  switch (verb) {
    case 'create': {
      let request: CreateTableRequest;
      if (typeof flags.file === 'string') {
        const plan = await readJobSpecFile(flags.file);
        if (!plan.table.columns)
          throw new CliError(
            `${flags.file}: table.columns is needed to create a table on its own (or use sluice job create, which infers them)`,
          );
        request = {
          ref: plan.table.ref,
          schema: keyedSchema(plan.table.columns, plan.table.key),
          partitionSpec: plan.table.partitionSpec,
          location: plan.table.location,
          properties: plan.table.properties,
          ifNotExists: false,
        };
      } else {
        const ref = parseTableRef(refText);
        if (typeof flags.columns !== 'string') throw usageError('table create needs --columns or -f <spec>');
        let fields: ReturnType<typeof parseColumnList>;
        try {
          fields = parseColumnList(flags.columns);
        } catch (err) {
          throw usageError(`--columns: ${(err as Error).message}`);
        }
        const key =
          typeof flags.key === 'string'
            ? flags.key
                .split(',')
                .map((k) => k.trim())
                .filter((k) => k !== '')
            : [];
        let schema: ReturnType<typeof keyedSchema>;
        try {
          schema = keyedSchema(fields, key);
        } catch (err) {
          throw usageError(`--key: ${(err as Error).message}`);
        }
        request = {
          ref,
          schema,
          partitionSpec:
            typeof flags['partition-spec'] === 'string' ? parsePartitionSpec(flags['partition-spec']) : { specId: 0, fields: [] },
          location: typeof flags.location === 'string' ? flags.location : '',
          properties: {},
          ifNotExists: false,
        };
      }
      await ctx.catalog().createDatabase({ name: request.ref!.database, location: '', properties: {} });
      const { table: created } = await ctx.catalog().createTable(request);
      ctx.out.result(created, () => `table ${request.ref!.database}.${request.ref!.table} created at ${created?.location}`);
      return;
    }
    case 'describe': {
      const ref = parseTableRef(refText);
      const { table: t } = await ctx.catalog().getTable({ ref });
      const { snapshots } = await ctx.catalog().listSnapshots({ ref });
      const summary = snapshots.find((s) => s.snapshotId === t?.currentSnapshotId)?.summary ?? {};
      const key = keyNames(t?.schema);
      const deleteFiles = Number(summary['total-delete-files'] ?? 0);
      const positionDeletes = Number(summary['total-position-deletes'] ?? 0);
      ctx.out.result({ ...t, key, deleteFiles, positionDeletes }, () =>
        [
          `table      ${ref.database}.${ref.table}`,
          `location   ${t?.location}`,
          `metadata   ${t?.metadataLocation}`,
          `snapshot   ${t?.currentSnapshotId ?? '(none yet)'}`,
          `partition  ${(t?.partitionSpec?.fields ?? []).map((f) => `${f.transform}(${f.sourceName || f.sourceId}) as ${f.name}`).join(', ') || '(unpartitioned)'}`,
          `key        ${key.join(', ') || '(none)'}`,
          ...(key.length > 0 ? [`deletes    ${deleteFiles} position delete files (${positionDeletes} rows deleted)`] : []),
          '',
          table(['ID', 'COLUMN', 'TYPE', 'NULLS', 'DOC'], schemaRows(t?.schema)),
        ].join('\n'),
      );
      return;
    }
    case 'history': {
      const ref = parseTableRef(refText);
      const { snapshots, currentSnapshotId } = await ctx.catalog().listSnapshots({ ref });
      ctx.out.result({ currentSnapshotId, snapshots }, () =>
        snapshots.length === 0
          ? `${ref.database}.${ref.table} has no snapshot yet`
          : table(
              ['SNAPSHOT', 'COMMITTED', 'OPERATION', 'ADDED ROWS', 'TOTAL ROWS', 'FILES', 'JOB', ''],
              snapshots.map((s) => [
                s.snapshotId,
                new Date(s.timestampMs).toISOString(),
                s.operation,
                s.summary['added-records'] ?? '',
                s.summary['total-records'] ?? '',
                s.summary['total-data-files'] ?? '',
                s.summary['sluice.job'] ?? '',
                s.snapshotId === currentSnapshotId ? 'current' : '',
              ]),
            ),
      );
      return;
    }
    default:
      throw usageError(`unknown table command ${JSON.stringify(verb ?? '')}; use create, describe or history`);
  }
}
