/**
 * Job spec files (YAML or JSON): one file describing a source, a table and a job, validated
 * with errors that name the path of the bad key, and turned into the catalog's requests.
 *
 *   name: orders-to-lake
 *   source: { brokers: [localhost:9092], topic: orders, format: JSON, mode: VALUE, startFrom: earliest }
 *   table: { database: shop, name: orders, partitionBy: { field: __timestamp__, granularity: HOUR, timeZone: Asia/Shanghai } }
 *   mapping: { flattenLevel: 1 }
 *   commit: { intervalMs: 5000 }
 *   errors: { policy: errorTopic, topic: orders-errors }
 *
 * Every key is documented in README.md ("Job spec reference").
 */
import { parse as parseYaml, YAMLParseError } from 'yaml';
import {
  CatchUp,
  CompletionPolicy,
  CycleUnit,
  LateDataPolicy,
  OffsetResetPolicy,
  type Schedule,
  StartFrom,
  type Job,
  type Source,
  type StartPosition,
  type TimeWindow,
} from '#shared/gen/sluice/v1/catalog.js';
import {
  ErrorPolicyKind,
  Granularity,
  MessageFormat,
  MessageMode,
  SchemaEvolution,
  ChangeFormat,
  TimeSource,
  type ErrorPolicy,
  type Field,
  type FieldMapping,
  type MappingSpec,
  type PartitionBy,
  type PartitionSpec,
  type TableRef,
} from '#shared/gen/sluice/v1/types.js';

import { type JobProblem, jobProblems, sourceProblems } from '#shared/job-rules.js';
import { IDENTIFIER, RESOURCE_NAME as JOB_NAME, TOPIC } from '#shared/names.js';
import { readFile, stat } from 'node:fs/promises';
import { MAX_SPEC_BYTES, MAX_SPEC_DEPTH, tooDeepAt } from './spec-limits.js';
import { unwritableFixed } from '#shared/parquet/unwritable.js';
import { keyedSchema, PRIMITIVE_TYPE } from './iceberg-types.js';
import { CliError } from './output.js';
import { LocalTimeError, localToEpochMs } from '#shared/local-time.js';
import { JobSpecError, SpecReader } from './spec-reader.js';

export { JobSpecError };

export interface TableSpec {
  ref: TableRef;
  location: string;
  /** Explicit columns; undefined means "infer from sampled messages". */
  columns?: Field[];
  partitionSpec: PartitionSpec;
  /** The partition column the job fills (e.g. `pt`), added to the table when missing. */
  partitionColumn?: string;
  properties: Record<string, string>;
  /** What `job create` does when the table exists: `fail` (default, as seed 000) or `use` it, if compatible. */
  ifExists: 'fail' | 'use';
  /** The table's key (Iceberg identifier fields), by column name; empty when it has none. */
  key: string[];
}

export interface JobPlan {
  source: Source;
  table: TableSpec;
  job: Job;
}

const IDENTIFIER_HINT = 'must be lower-case letters, digits and _, starting with a letter or _ (at most 128)';

const FORMATS = {
  JSON: MessageFormat.MESSAGE_FORMAT_JSON,
  TEXT: MessageFormat.MESSAGE_FORMAT_TEXT,
  CSV: MessageFormat.MESSAGE_FORMAT_CSV,
  FLATTEN: MessageFormat.MESSAGE_FORMAT_FLATTEN,
  BINARY: MessageFormat.MESSAGE_FORMAT_BINARY,
};
const MODES = { VALUE: MessageMode.MESSAGE_MODE_VALUE, KEY: MessageMode.MESSAGE_MODE_KEY, DEFAULT: MessageMode.MESSAGE_MODE_DEFAULT };
const GRANULARITIES = { DAY: Granularity.GRANULARITY_DAY, HOUR: Granularity.GRANULARITY_HOUR, MINUTE: Granularity.GRANULARITY_MINUTE };
const POLICIES = {
  fail: ErrorPolicyKind.ERROR_POLICY_KIND_FAIL,
  skip: ErrorPolicyKind.ERROR_POLICY_KIND_SKIP,
  skipUpTo: ErrorPolicyKind.ERROR_POLICY_KIND_SKIP_UP_TO,
  errorTopic: ErrorPolicyKind.ERROR_POLICY_KIND_ERROR_TOPIC,
  errorTable: ErrorPolicyKind.ERROR_POLICY_KIND_ERROR_TABLE,
};
const CHANGE_FORMATS = {
  debezium: ChangeFormat.CHANGE_FORMAT_DEBEZIUM,
  dts: ChangeFormat.CHANGE_FORMAT_DTS,
  canal: ChangeFormat.CHANGE_FORMAT_CANAL,
  maxwell: ChangeFormat.CHANGE_FORMAT_MAXWELL,
  keyed: ChangeFormat.CHANGE_FORMAT_KEYED,
};
const SCHEMA_EVOLUTIONS = { auto: SchemaEvolution.SCHEMA_EVOLUTION_AUTO, none: SchemaEvolution.SCHEMA_EVOLUTION_NONE };
const COMPLETIONS = { endPosition: CompletionPolicy.COMPLETION_POLICY_END_POSITION, idle: CompletionPolicy.COMPLETION_POLICY_IDLE };
const OFFSET_RESETS = { fail: OffsetResetPolicy.OFFSET_RESET_POLICY_FAIL, earliest: OffsetResetPolicy.OFFSET_RESET_POLICY_EARLIEST };
const TRANSFORM = /^(identity|year|month|day|hour|void|bucket\[\d+\]|truncate\[\d+\])$/;

export const DEFAULT_COMMIT_INTERVAL_MS = 300_000;
export const DEFAULT_BUFFER_BYTES = 64 * 1024 * 1024;

/** Parses YAML or JSON text; syntax errors carry the line and column. */
export function parseJobSpecText(text: string, fileName = 'spec'): JobPlan {
  const bytes = Buffer.byteLength(text);
  if (bytes > MAX_SPEC_BYTES) throw new JobSpecError('', `spec file ${fileName}: ${tooLarge(bytes)}`);
  const deepAt = tooDeepAt(text);
  if (deepAt !== undefined)
    throw new JobSpecError('', `spec file ${fileName}: nested deeper than ${MAX_SPEC_DEPTH} levels (at line ${deepAt})`);
  let document: unknown;
  try {
    document = parseYaml(text, { prettyErrors: true, uniqueKeys: true });
  } catch (err) {
    if (err instanceof YAMLParseError) {
      const where = err.linePos?.[0] ? ` at line ${err.linePos[0].line}, column ${err.linePos[0].col}` : '';
      const reason = err.message.split('\n')[0].replace(/ at line \d+, column \d+:?$/, '');
      throw new JobSpecError('', `${fileName} is not valid YAML or JSON${where}: ${reason}`);
    }
    throw err;
  }
  return planJob(document, { warehouse: '' });
}

/** A spec file from disk; a file that cannot be read is one line naming it (exit 2). */
export async function readJobSpecFile(path: string): Promise<JobPlan> {
  let text: string;
  try {
    // Refused before it is read: a 50 MB spec must not be loaded to be refused.
    const { size } = await stat(path);
    if (size > MAX_SPEC_BYTES) throw new CliError(`spec file ${path}: ${tooLarge(size)}`, 2);
    text = await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'it is a directory' : (err as Error).message;
    if (err instanceof CliError) throw err;
    throw new CliError(`cannot read the spec file ${path}: ${why}`, 2);
  }
  return parseJobSpecText(text, path);
}

const tooLarge = (bytes: number) => `${bytes} bytes is more than the ${MAX_SPEC_BYTES} (1 MiB) a spec file may hold`;

export interface PlanDefaults {
  /** Root of new table locations when the spec gives none: `<warehouse>/<database>/<table>`. */
  warehouse: string;
  /** Bootstrap brokers when the spec gives none. */
  brokers?: string[];
}

/** Validates a parsed spec document and builds the source, table and job it describes. */
export function planJob(document: unknown, defaults: PlanDefaults): JobPlan {
  const root = SpecReader.root(document);
  const name = root.string('name', {
    required: true,
    pattern: JOB_NAME,
    hint: 'must be lower-case letters, digits, - and _ (at most 128)',
  });
  const sourceReader = root.object('source', { required: true });
  const tableReader = root.object('table', { required: true });
  const source = readSource(sourceReader, name, defaults);
  refuseProblems(sourceProblems(source, 'source'));
  const start = readStart(sourceReader);
  const offsetReset = sourceReader.choice('offsetReset', OFFSET_RESETS, OffsetResetPolicy.OFFSET_RESET_POLICY_FAIL);
  sourceReader.finish();

  const schedule = readSchedule(root.object('schedule'));
  const mappingReader = root.object('mapping');
  const mapping = readMapping(mappingReader, source);
  const { table, partitionBy } = readTable(tableReader, defaults, schedule);
  mapping.partitionBy = partitionBy;
  mappingReader?.finish();

  const window = readWindow(root.object('window'));
  const commit = root.object('commit');
  const commitIntervalMs = commit?.integer('intervalMs') ?? DEFAULT_COMMIT_INTERVAL_MS;
  const bufferBytes = commit?.integer('bufferBytes') ?? DEFAULT_BUFFER_BYTES;
  commit?.finish();
  const parallelism = root.integer('parallelism') ?? 1;
  mapping.errorPolicy = readErrors(root.object('errors'));
  root.finish();

  if (window && start.from !== StartFrom.START_FROM_UNSPECIFIED && start.from !== StartFrom.START_FROM_EARLIEST) {
    throw new JobSpecError('source.startFrom', 'a bounded job (with a window) starts at its window start; leave startFrom out');
  }

  const job: Job = {
    name,
    source: source.name,
    table: table.ref,
    mapping,
    start: window ? { from: StartFrom.START_FROM_TIMESTAMP, timestampMs: window.startTimeMs, offsets: [] } : start,
    window,
    commitIntervalMs,
    bufferBytes,
    parallelism,
    offsetReset,
    schedule,
    instance: undefined,
    state: 'JOB_STATE_UNSPECIFIED' as Job['state'],
    stateReason: '',
    createdAtMs: 0,
    updatedAtMs: 0,
  };
  // Ranges and the rules between fields: the ones the catalog's CreateJob applies, in its words.
  refuseProblems(jobProblems(job));
  return { source, table, job };
}

function refuseProblems([problem]: JobProblem[]): void {
  if (problem) throw new JobSpecError(problem.specPath, problem.problem);
}

/** A source on its own (`sluice source add`), validated like a job spec's `source`. */
export function planSource(document: unknown, defaults: PlanDefaults): Source {
  const r = SpecReader.root(document);
  const source = readSource(r, '', defaults);
  r.finish();
  if (!source.name) throw new JobSpecError('name', 'is required');
  refuseProblems(sourceProblems(source, ''));
  return source;
}

function readSource(r: SpecReader, jobName: string, defaults: PlanDefaults): Source {
  const topic = r.string('topic', { required: true, pattern: TOPIC, hint: 'is not a valid Kafka topic name' });
  const brokers = r.list('brokers').map(({ value, path }) => {
    if (typeof value !== 'string') throw new JobSpecError(path, `${JSON.stringify(value)} is not host:port`);
    return value;
  });
  const csvReader = r.object('csv');
  const csv = csvReader
    ? {
        delimiter: csvReader.string('delimiter') ?? ',',
        quote: csvReader.string('quote') ?? '"',
        columns: csvReader.list('columns').map(({ value, path }) => {
          if (typeof value !== 'string' || value === '') throw new JobSpecError(path, 'must be a column name');
          return value;
        }),
      }
    : undefined;
  csvReader?.finish();
  return {
    name: r.string('name', { pattern: JOB_NAME, hint: 'must be lower-case letters, digits, - and _' }) ?? jobName,
    brokers: brokers.length > 0 ? brokers : (defaults.brokers ?? []),
    topic,
    format: r.choice('format', FORMATS, MessageFormat.MESSAGE_FORMAT_JSON),
    mode: r.choice('mode', MODES, MessageMode.MESSAGE_MODE_VALUE),
    csv,
    properties: {},
    createdAtMs: 0,
  };
}

function readStart(r: SpecReader): StartPosition {
  const value = r.raw('startFrom');
  const path = r.at('startFrom');
  if (value === undefined || value === null) return { from: StartFrom.START_FROM_UNSPECIFIED, timestampMs: 0, offsets: [] };
  if (typeof value === 'string') {
    if (value.toLowerCase() === 'earliest') return { from: StartFrom.START_FROM_EARLIEST, timestampMs: 0, offsets: [] };
    if (value.toLowerCase() === 'latest') return { from: StartFrom.START_FROM_LATEST, timestampMs: 0, offsets: [] };
  }
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    const start = new SpecReader(value as Record<string, unknown>, path);
    if (start.has('timestamp')) {
      const timestampMs = instant(start, 'timestamp', start.string('timeZone') ?? 'UTC');
      start.finish();
      return { from: StartFrom.START_FROM_TIMESTAMP, timestampMs, offsets: [] };
    }
    if (start.has('offsets')) {
      const offsets = start.entries('offsets').map(([partition, offset, at]) => {
        if (!/^\d+$/.test(partition)) throw new JobSpecError(at, 'partition numbers must be whole numbers');
        if (typeof offset !== 'number' || !Number.isSafeInteger(offset) || offset < 0)
          throw new JobSpecError(at, `offset must be a whole number ≥ 0, not ${JSON.stringify(offset)}`);
        return { partition: Number(partition), offset };
      });
      if (offsets.length === 0) throw new JobSpecError(`${path}.offsets`, 'names no partition');
      start.finish();
      return { from: StartFrom.START_FROM_OFFSETS, timestampMs: 0, offsets };
    }
  }
  throw new JobSpecError(
    path,
    `must be earliest, latest, { timestamp: <time> } or { offsets: { <partition>: <offset> } }, not ${JSON.stringify(value)}`,
  );
}

const ABSOLUTE_TIME = /(?:[zZ]|[+-]\d{2}:?\d{2})$/;

/**
 * An instant from a spec value: epoch milliseconds, an ISO-8601 time with an offset or Z, or
 * a wall-clock time (`2024-05-01 08:00`, `20240501080000`) read in the given zone, DST-correct.
 */
function instant(r: SpecReader, key: string, timeZone: string): number {
  const value = r.raw(key);
  if (typeof value === 'number' && Number.isSafeInteger(value)) return value;
  if (typeof value !== 'string')
    r.fail(key, `must be a time (epoch ms, ISO-8601, or "YYYY-MM-DD HH:MM[:SS]" in timeZone), not ${JSON.stringify(value)}`);
  const text = value.trim();
  if (ABSOLUTE_TIME.test(text)) {
    const parsed = Date.parse(text);
    if (Number.isNaN(parsed)) r.fail(key, `${JSON.stringify(value)} is not an ISO-8601 time`);
    return parsed;
  }
  try {
    return localToEpochMs(text, timeZone);
  } catch (err) {
    if (err instanceof LocalTimeError) r.fail(err.input === timeZone ? 'timeZone' : key, err.message);
    throw err;
  }
}

function readMapping(r: SpecReader | undefined, source: Source): MappingSpec {
  const fields: FieldMapping[] = (r?.list('fields') ?? []).map(({ reader, path }) => {
    if (!reader) throw new JobSpecError(path, 'must be a mapping like { column: c, path: a.b }');
    const field = {
      column: reader.string('column', { required: true, pattern: IDENTIFIER, hint: IDENTIFIER_HINT }),
      path: reader.string('path', { required: true }),
      type: reader.string('type', { pattern: PRIMITIVE_TYPE, hint: 'is not an Iceberg primitive type' }) ?? '',
      format: reader.string('format') ?? '',
    };
    reader.finish();
    return field;
  });
  const timeZone = r?.string('timeZone') ?? 'UTC';
  return {
    format: source.format,
    mode: source.mode,
    flattenLevel: r?.integer('flattenLevel') ?? 1,
    csv: source.csv,
    fields,
    partitionBy: undefined,
    errorPolicy: undefined,
    timeZone,
    includeFixedColumns: r?.boolean('includeFixedColumns') ?? false,
    schemaEvolution:
      r?.choice('schemaEvolution', SCHEMA_EVOLUTIONS, SchemaEvolution.SCHEMA_EVOLUTION_AUTO) ?? SchemaEvolution.SCHEMA_EVOLUTION_AUTO,
    changes: r?.choice('changes', CHANGE_FORMATS, ChangeFormat.CHANGE_FORMAT_UNSPECIFIED) ?? ChangeFormat.CHANGE_FORMAT_UNSPECIFIED,
  };
}

function readTable(r: SpecReader, defaults: PlanDefaults, schedule?: Schedule): { table: TableSpec; partitionBy?: PartitionBy } {
  const database = r.string('database', { required: true, pattern: IDENTIFIER, hint: IDENTIFIER_HINT });
  const name = r.string('name', { required: true, pattern: IDENTIFIER, hint: IDENTIFIER_HINT });
  const columnsList = r.list('columns');
  const columns = r.has('columns')
    ? columnsList.map(({ reader, path }): Field => {
        if (!reader) throw new JobSpecError(path, 'must be a mapping like { name: id, type: long }');
        const field: Field = {
          id: 0,
          name: reader.string('name', { required: true, pattern: IDENTIFIER, hint: IDENTIFIER_HINT }),
          required: reader.boolean('required') ?? false,
          type: {
            kind: {
              $case: 'primitive',
              value: reader.string('type', { required: true, pattern: PRIMITIVE_TYPE, hint: 'is not an Iceberg primitive type' }),
            },
          },
          doc: reader.string('doc') ?? '',
        };
        reader.finish();
        const type = field.type!.kind!.$case === 'primitive' ? field.type!.kind!.value : '';
        if (type.startsWith('fixed[')) throw new JobSpecError(`${path}.type`, unwritableFixed(field.name, type));
        return field;
      })
    : undefined;
  const seen = new Set<string>();
  columns?.forEach((c, i) => {
    if (seen.has(c.name)) throw new JobSpecError(`table.columns.${i}.name`, `column "${c.name}" is listed twice`);
    seen.add(c.name);
  });

  // A scheduled job's instances each fill their partition column with the schedule's value: `pt` unless named.
  const partitionBy =
    readPartitionBy(r.object('partitionBy')) ??
    (schedule
      ? {
          column: 'pt',
          timeSource: TimeSource.TIME_SOURCE_UNSPECIFIED,
          granularity: Granularity.GRANULARITY_UNSPECIFIED,
          timeZone: schedule.timeZone,
          field: '',
          expression: schedule.partition,
          value: '',
        }
      : undefined);
  const specFields = r.list('partitionSpec').map(({ reader, path }, index) => {
    if (!reader) throw new JobSpecError(path, 'must be a mapping like { column: ts, transform: day }');
    const column = reader.string('column', { required: true });
    const transform =
      reader.string('transform', { pattern: TRANSFORM, hint: 'is not identity, year, month, day, hour, bucket[N], truncate[W] or void' }) ??
      'identity';
    reader.finish();
    return { sourceId: 0, sourceName: column, fieldId: 0, name: '', transform, index };
  });
  if (partitionBy && specFields.length > 0) {
    throw new JobSpecError('table.partitionSpec', 'use either partitionBy (a pt column) or partitionSpec (Iceberg transforms), not both');
  }
  const partitionColumn = partitionBy ? partitionBy.column : undefined;
  if (partitionColumn && columns && !columns.some((c) => c.name === partitionColumn)) {
    columns.push({
      id: 0,
      name: partitionColumn,
      required: false,
      type: { kind: { $case: 'primitive', value: 'string' } },
      doc: 'partition value filled by Sluice',
    });
  }
  const partitionSpec: PartitionSpec = {
    specId: 0,
    fields: partitionColumn
      ? [{ sourceId: 0, sourceName: partitionColumn, fieldId: 0, name: partitionColumn, transform: 'identity' }]
      : specFields.map(({ index: _index, ...f }) => f),
  };
  const properties: Record<string, string> = {};
  for (const [key, value, at] of r.entries('properties')) {
    if (typeof value !== 'string' && typeof value !== 'number' && typeof value !== 'boolean')
      throw new JobSpecError(at, 'must be a string');
    properties[key] = String(value);
  }
  const location = r.string('location') ?? (defaults.warehouse ? `${defaults.warehouse.replace(/\/$/, '')}/${database}/${name}` : '');
  const ifExists = r.choice('ifExists', { fail: 'fail', use: 'use' } as const, 'fail');
  const key = r.list('key').map(({ value, path }) => {
    if (typeof value !== 'string' || !IDENTIFIER.test(value)) throw new JobSpecError(path, `${JSON.stringify(value)} is not a column name`);
    return value;
  });
  // With explicit columns the key is checked now; inferred columns are checked once inferred.
  if (columns && key.length > 0) {
    try {
      keyedSchema(columns, key);
    } catch (err) {
      throw new JobSpecError('table.key', (err as Error).message);
    }
  }
  r.finish();
  return {
    table: { ref: { database, table: name }, location, columns, partitionSpec, partitionColumn, properties, ifExists, key },
    partitionBy,
  };
}

function readPartitionBy(r: SpecReader | undefined): PartitionBy | undefined {
  if (!r) return undefined;
  const field = r.string('field') ?? '__timestamp__';
  const expression = r.string('expression') ?? '';
  const granularity = r.choice(
    'granularity',
    GRANULARITIES,
    expression ? Granularity.GRANULARITY_UNSPECIFIED : Granularity.GRANULARITY_HOUR,
  );
  const timeZone = r.string('timeZone') ?? 'UTC';
  const column = r.string('column', { pattern: IDENTIFIER, hint: IDENTIFIER_HINT }) ?? 'pt';
  if (expression && !/^\$\[.+\]$/.test(expression))
    r.fail('expression', `${JSON.stringify(expression)} is not a scheduling expression like $[yyyymmddhh24]`);
  r.finish();
  const timeSource =
    field === '__timestamp__'
      ? TimeSource.TIME_SOURCE_RECORD_TIME
      : field === '__processing_time__'
        ? TimeSource.TIME_SOURCE_PROCESSING_TIME
        : TimeSource.TIME_SOURCE_UNSPECIFIED;
  return {
    column,
    timeSource,
    granularity,
    timeZone,
    field: timeSource === TimeSource.TIME_SOURCE_UNSPECIFIED ? field : '',
    expression,
    value: '',
  };
}

function readWindow(r: SpecReader | undefined): TimeWindow | undefined {
  if (!r) return undefined;
  const timeZone = r.string('timeZone') ?? 'UTC';
  const startTimeMs = instant(r, 'start', timeZone);
  const endTimeMs = instant(r, 'end', timeZone);
  const completion = r.choice('completion', COMPLETIONS, CompletionPolicy.COMPLETION_POLICY_END_POSITION);
  const idleTimeoutMs = r.integer('idleTimeoutMs') ?? 0;
  const allowedLatenessMs = r.integer('allowedLatenessMs') ?? 0;
  r.finish();
  return { startTimeMs, endTimeMs, timeZone, completion, idleTimeoutMs, allowedLatenessMs, endOffsets: [] };
}

const CYCLE_UNITS = {
  minute: CycleUnit.CYCLE_UNIT_MINUTE,
  hour: CycleUnit.CYCLE_UNIT_HOUR,
  day: CycleUnit.CYCLE_UNIT_DAY,
  week: CycleUnit.CYCLE_UNIT_WEEK,
  month: CycleUnit.CYCLE_UNIT_MONTH,
};
const WEEKDAYS = ['monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday', 'sunday'];
const CATCH_UPS = { all: CatchUp.CATCH_UP_ALL, latest: CatchUp.CATCH_UP_LATEST };
const LATE_DATA = {
  count: LateDataPolicy.LATE_DATA_POLICY_COUNT,
  rerun: LateDataPolicy.LATE_DATA_POLICY_RERUN,
  append: LateDataPolicy.LATE_DATA_POLICY_APPEND,
};

/** `schedule:` (seed 001): a recurring bounded job; its rules are checked with the job's (job-rules.ts). */
function readSchedule(r: SpecReader | undefined): Schedule | undefined {
  if (!r) return undefined;
  const cycleReader = r.object('cycle', { required: true });
  const unit = cycleReader.choice('unit', CYCLE_UNITS, CycleUnit.CYCLE_UNIT_UNSPECIFIED);
  const every = cycleReader.integer('every') ?? 0;
  const weekdayRaw = cycleReader.string('weekday');
  let weekday = 0;
  if (weekdayRaw !== undefined) {
    weekday = /^[1-7]$/.test(weekdayRaw) ? Number(weekdayRaw) : WEEKDAYS.indexOf(weekdayRaw.toLowerCase()) + 1;
    if (weekday === 0) cycleReader.fail('weekday', `${JSON.stringify(weekdayRaw)} is not a day of the week (monday ... sunday, or 1-7)`);
  }
  const dayOfMonth = cycleReader.integer('dayOfMonth') ?? 0;
  cycleReader.finish();
  const windowReader = r.object('window', { required: true });
  const windowStart = windowReader.string('start', { required: true });
  const windowEnd = windowReader.string('end', { required: true });
  windowReader.finish();
  const schedule: Schedule = {
    cycle: { unit, every, weekday, dayOfMonth },
    startAt: r.string('startAt') ?? '00:00',
    endAt: r.string('endAt') ?? '',
    timeZone: r.string('timeZone') ?? 'UTC',
    windowStart,
    windowEnd,
    partition: r.string('partition') ?? '',
    completion: r.choice('completion', COMPLETIONS, CompletionPolicy.COMPLETION_POLICY_END_POSITION),
    idleTimeoutMs: r.integer('idleTimeoutMs') ?? 0,
    allowedLatenessMs: r.integer('allowedLatenessMs') ?? 0,
    catchUp: r.choice('catchUp', CATCH_UPS, CatchUp.CATCH_UP_ALL),
    lateData: r.choice('lateData', LATE_DATA, LateDataPolicy.LATE_DATA_POLICY_COUNT),
    concurrency: r.integer('concurrency') ?? 0,
    notBeforeMs: 0,
  };
  // The schedule's first instance is the first one after this time (default: when the job is created).
  const notBefore = r.raw('notBefore');
  if (notBefore !== undefined && notBefore !== null) schedule.notBeforeMs = instant(r, 'notBefore', schedule.timeZone);
  r.finish();
  return schedule;
}

function readErrors(r: SpecReader | undefined): ErrorPolicy {
  if (!r) return { kind: ErrorPolicyKind.ERROR_POLICY_KIND_FAIL, maxErrors: 0, errorTopic: '', errorTable: undefined };
  const kind = r.choice('policy', POLICIES, ErrorPolicyKind.ERROR_POLICY_KIND_FAIL);
  const maxErrors = r.integer('maxErrors') ?? 0;
  const errorTopic = r.string('topic', { pattern: TOPIC, hint: 'is not a valid Kafka topic name' }) ?? '';
  const tableReader = r.object('table');
  const errorTable = tableReader
    ? {
        database: tableReader.string('database', { required: true, pattern: IDENTIFIER, hint: IDENTIFIER_HINT }),
        table: tableReader.string('name', { required: true, pattern: IDENTIFIER, hint: IDENTIFIER_HINT }),
      }
    : undefined;
  tableReader?.finish();
  r.finish();
  return { kind, maxErrors, errorTopic, errorTable };
}
