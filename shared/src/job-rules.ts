/**
 * The one validation of a job definition, on the proto message: the CLI runs it on the job a
 * spec file describes (after reading the file's keys and types), the catalog's CreateJob on
 * the job it is sent, so a job the CLI refuses is never stored by a direct gRPC call either.
 *
 * A problem names the field twice, once per vocabulary: `field` is the request's field path
 * (`job.mapping.flatten_level`, what the server's INVALID_ARGUMENT names) and `specPath` the
 * job spec's key (`mapping.flattenLevel`, what the CLI names); the `problem` text is the same.
 *
 * Zero means "unset" where proto3 cannot tell unset from 0: the default commit interval, no
 * buffer-size flush, no error budget; parallelism has no such reading, since 0 members would
 * read nothing.
 */
import {
  CompletionPolicy,
  type Job,
  type Source,
  OffsetResetPolicy,
  StartFrom,
  type StartPosition,
  type TimeWindow,
} from './gen/sluice/v1/catalog.js';
import {
  ChangeFormat,
  ErrorPolicyKind,
  Granularity,
  type MappingSpec,
  MessageFormat,
  MessageMode,
  SchemaEvolution,
  type TableRef,
  TimeSource,
} from './gen/sluice/v1/types.js';
import { IDENTIFIER, nameProblem, quotedPrefix, resourceNameProblem, topicProblem } from './names.js';
import { zone } from './time.js';
import { compileSchedule, instanceProblem, ScheduleError } from './schedule/cycle.js';

export const MIN_COMMIT_INTERVAL_MS = 1000;
export const MAX_COMMIT_INTERVAL_MS = 24 * 3_600_000;
export const MAX_PARALLELISM = 1024;
export const MAX_FLATTEN_LEVEL = 4;
export const MIN_IDLE_TIMEOUT_MS = 1000;

export interface JobProblem {
  /** The request field, e.g. `job.commit_interval_ms`. */
  readonly field: string;
  /** The job spec key, e.g. `commit.intervalMs`. */
  readonly specPath: string;
  /** What is wrong, the same words in the CLI and the server: `must be at least 1000, not 10`. */
  readonly problem: string;
}

/** Every problem of a job definition, in the order of the job spec's sections; empty when valid. */
export function jobProblems(job: Job): JobProblem[] {
  const found: JobProblem[] = [];
  const add = (field: string, specPath: string, problem: string | undefined) => {
    if (problem) found.push({ field: `job.${field}`, specPath, problem });
  };
  add('name', 'name', quotedProblem(job.name, resourceNameProblem));
  add('source', 'source.name', quotedProblem(job.source, resourceNameProblem));
  tableRefProblems(job.table, 'table', 'table', 'table.name', add);
  add('offset_reset', 'source.offsetReset', enumProblem(job.offsetReset, OffsetResetPolicy));
  startProblems(job.start, job.window, add);
  if (job.mapping) mappingProblems(job.mapping, add);
  if (job.window) windowProblems(job.window, add);
  add('commit_interval_ms', 'commit.intervalMs', zeroOrRange(job.commitIntervalMs, MIN_COMMIT_INTERVAL_MS, MAX_COMMIT_INTERVAL_MS));
  add('buffer_bytes', 'commit.bufferBytes', zeroOrRange(job.bufferBytes, 1, Number.MAX_SAFE_INTEGER));
  add('parallelism', 'parallelism', range(job.parallelism, 1, MAX_PARALLELISM));
  if (job.schedule) scheduleProblems(job, add);
  return found;
}

/** Whether a mapping reads a change stream into a keyed table (mapping.changes set). */
export function isChangeStream(mapping: MappingSpec | undefined): boolean {
  return mapping?.changes !== undefined && mapping.changes !== ChangeFormat.CHANGE_FORMAT_UNSPECIFIED;
}

/** A scheduled job's instances get names `<name>--<yyyymmddhhmm>[-<attempt>]`, within 128 characters. */
export const MAX_SCHEDULED_JOB_NAME = 100;

/** Spec keys of the schedule's request fields, for problems named in the CLI's words. */
const SCHEDULE_SPEC_KEYS: Record<string, string> = {
  time_zone: 'timeZone',
  'cycle.unit': 'cycle.unit',
  'cycle.every': 'cycle.every',
  'cycle.weekday': 'cycle.weekday',
  'cycle.day_of_month': 'cycle.dayOfMonth',
  start_at: 'startAt',
  end_at: 'endAt',
  window_start: 'window.start',
  window_end: 'window.end',
  partition: 'partition',
};

/**
 * A scheduled job (seed 001): its cycle and expressions compile, its first instances own
 * distinct partitions, and it is not also a one-off bounded job.
 */
function scheduleProblems(job: Job, add: Add): void {
  const s = job.schedule!;
  if (job.name.length > MAX_SCHEDULED_JOB_NAME)
    add('name', 'name', `a scheduled job's name must be at most ${MAX_SCHEDULED_JOB_NAME} characters (its instances' names add a time)`);
  if (job.window) add('window', 'window', 'a scheduled job takes its window from schedule.window; give one or the other');
  if (isChangeStream(job.mapping))
    add(
      'mapping.changes',
      'mapping.changes',
      'a scheduled job replaces partitions; change streams keep a keyed table up to date continuously',
    );
  if (job.instance) add('instance', 'instance', 'an instance of a scheduled job cannot have a schedule of its own');
  if (!s.partition)
    add('schedule.partition', 'schedule.partition', 'is required: each instance writes its own partition, e.g. $[yyyymmddhh24]');
  if (!job.mapping?.partitionBy?.column)
    add(
      'mapping.partition_by.column',
      'table.partitionBy.column',
      "is required for a scheduled job: the column that holds each instance's partition value",
    );
  add('schedule.concurrency', 'schedule.concurrency', zeroOrRange(s.concurrency, 1, 64));
  add('schedule.idle_timeout_ms', 'schedule.idleTimeoutMs', zeroOrRange(s.idleTimeoutMs, MIN_IDLE_TIMEOUT_MS, Number.MAX_SAFE_INTEGER));
  add('schedule.allowed_lateness_ms', 'schedule.allowedLatenessMs', range(s.allowedLatenessMs, 0, Number.MAX_SAFE_INTEGER));
  try {
    const compiled = compileSchedule(s);
    const problem = s.partition ? instanceProblem(compiled, s.notBeforeMs || Date.now()) : undefined;
    if (problem) throw problem;
  } catch (err) {
    if (!(err instanceof ScheduleError)) throw err;
    const spec = SCHEDULE_SPEC_KEYS[err.field] ?? err.field;
    add(`schedule.${err.field}`, `schedule.${spec}`, err.message);
  }
}

type Add = (field: string, specPath: string, problem: string | undefined) => void;

/** Kafka bootstrap brokers: host:port, the host a name, an IPv4 address or an IPv6 one in brackets. */
export const BROKER = /^[A-Za-z0-9.\-[\]:]+:\d{1,5}$/;

/**
 * Every problem of a source (CreateSource; a job spec's `source`, `sluice source add`), fields
 * as in jobProblems; `specPrefix` is where the source sits in the spec (`source`, or `` for
 * `sluice source add`).
 */
export function sourceProblems(source: Source, specPrefix: string): JobProblem[] {
  const found: JobProblem[] = [];
  const at = (key: string) => (specPrefix ? `${specPrefix}.${key}` : key);
  const add = (field: string, key: string, problem: string | undefined) => {
    if (problem) found.push({ field: `source.${field}`, specPath: at(key), problem });
  };
  add('name', 'name', quotedProblem(source.name, resourceNameProblem));
  add('topic', 'topic', quotedProblem(source.topic, topicProblem));
  source.brokers.forEach((b, i) => {
    add(`brokers.${i}`, `brokers.${i}`, BROKER.test(b) ? undefined : `${quotedPrefix(b)} is not host:port`);
  });
  add('format', 'format', enumProblem(source.format, MessageFormat));
  add('mode', 'mode', enumProblem(source.mode, MessageMode));
  if (source.csv) {
    if (source.csv.delimiter.length !== 1) add('csv.delimiter', 'csv.delimiter', 'must be exactly one character');
    if (source.csv.quote.length > 1) add('csv.quote', 'csv.quote', 'must be one character (or empty)');
    source.csv.columns.forEach((c, i) => {
      add(`csv.columns.${i}`, `csv.columns.${i}`, c === '' ? 'must be a column name' : undefined);
    });
  }
  return found;
}

function tableRefProblems(ref: TableRef | undefined, field: string, specDatabase: string, specTable: string, add: Add): void {
  if (!ref) {
    add(field, specDatabase, 'is required');
    return;
  }
  add(`${field}.database`, `${specDatabase}.database`, quotedProblem(ref.database, nameProblem));
  add(`${field}.table`, specTable, quotedProblem(ref.table, nameProblem));
}

function startProblems(start: StartPosition | undefined, window: TimeWindow | undefined, add: Add): void {
  if (!start) return;
  add('start.from', 'source.startFrom', enumProblem(start.from, StartFrom));
  if (start.from === StartFrom.START_FROM_TIMESTAMP && start.timestampMs <= 0 && !window)
    add('start.timestamp_ms', 'source.startFrom.timestamp', 'is required when starting from a timestamp');
  if (start.from === StartFrom.START_FROM_OFFSETS) {
    if (start.offsets.length === 0) add('start.offsets', 'source.startFrom.offsets', 'names no partition');
    for (const o of start.offsets) {
      if (o.partition < 0)
        add('start.offsets', 'source.startFrom.offsets', `partition numbers must be whole numbers ≥ 0, not ${o.partition}`);
      else if (o.offset < 0)
        add('start.offsets', `source.startFrom.offsets.${o.partition}`, `offset must be a whole number ≥ 0, not ${o.offset}`);
    }
  }
  const startsAtWindow =
    start.from === StartFrom.START_FROM_UNSPECIFIED ||
    start.from === StartFrom.START_FROM_EARLIEST ||
    (start.from === StartFrom.START_FROM_TIMESTAMP && start.timestampMs === window?.startTimeMs);
  if (window && !startsAtWindow)
    add('start', 'source.startFrom', 'a bounded job (with a window) starts at its window start; leave startFrom out');
}

function mappingProblems(m: MappingSpec, add: Add): void {
  add('mapping.format', 'source.format', enumProblem(m.format, MessageFormat));
  add('mapping.mode', 'source.mode', enumProblem(m.mode, MessageMode));
  if (m.flattenLevel !== undefined) add('mapping.flatten_level', 'mapping.flattenLevel', range(m.flattenLevel, 0, MAX_FLATTEN_LEVEL));
  m.fields.forEach((f, i) => {
    add(
      `mapping.fields.${i}.column`,
      `mapping.fields.${i}.column`,
      IDENTIFIER.test(f.column) ? undefined : quotedProblem(f.column, nameProblem),
    );
  });
  add('mapping.time_zone', 'mapping.timeZone', timeZoneProblem(m.timeZone));
  if (m.changes !== undefined) add('mapping.changes', 'mapping.changes', enumProblem(m.changes, ChangeFormat));
  if (m.schemaEvolution !== undefined)
    add('mapping.schema_evolution', 'mapping.schemaEvolution', enumProblem(m.schemaEvolution, SchemaEvolution));
  const p = m.partitionBy;
  if (p) {
    add('mapping.partition_by.column', 'table.partitionBy.column', p.column === '' ? undefined : quotedProblem(p.column, nameProblem));
    add('mapping.partition_by.time_source', 'table.partitionBy.field', enumProblem(p.timeSource, TimeSource));
    add('mapping.partition_by.granularity', 'table.partitionBy.granularity', enumProblem(p.granularity, Granularity));
    add('mapping.partition_by.time_zone', 'table.partitionBy.timeZone', timeZoneProblem(p.timeZone));
  }
  const e = m.errorPolicy;
  if (e) {
    add('mapping.error_policy.kind', 'errors.policy', enumProblem(e.kind, ErrorPolicyKind));
    if (e.maxErrors !== 0) add('mapping.error_policy.max_errors', 'errors.maxErrors', range(e.maxErrors, 1, Number.MAX_SAFE_INTEGER));
    if (e.errorTopic !== '') add('mapping.error_policy.error_topic', 'errors.topic', quotedProblem(e.errorTopic, topicProblem));
    if (e.errorTable) tableRefProblems(e.errorTable, 'mapping.error_policy.error_table', 'errors.table', 'errors.table.name', add);
    if (e.kind === ErrorPolicyKind.ERROR_POLICY_KIND_SKIP_UP_TO && e.maxErrors === 0)
      add('mapping.error_policy.max_errors', 'errors.maxErrors', 'is required with policy skipUpTo');
    if (e.kind === ErrorPolicyKind.ERROR_POLICY_KIND_ERROR_TOPIC && e.errorTopic === '')
      add('mapping.error_policy.error_topic', 'errors.topic', 'is required with policy errorTopic');
    if (e.kind === ErrorPolicyKind.ERROR_POLICY_KIND_ERROR_TABLE && !e.errorTable)
      add('mapping.error_policy.error_table', 'errors.table', 'is required with policy errorTable');
  }
}

function windowProblems(w: TimeWindow, add: Add): void {
  add('window.time_zone', 'window.timeZone', timeZoneProblem(w.timeZone));
  if (w.endTimeMs <= w.startTimeMs) add('window.end_time_ms', 'window.end', 'must be after window.start');
  add('window.completion', 'window.completion', enumProblem(w.completion, CompletionPolicy));
  const idle = w.completion === CompletionPolicy.COMPLETION_POLICY_IDLE;
  if (w.idleTimeoutMs !== 0)
    add('window.idle_timeout_ms', 'window.idleTimeoutMs', range(w.idleTimeoutMs, MIN_IDLE_TIMEOUT_MS, Number.MAX_SAFE_INTEGER));
  if (idle && w.idleTimeoutMs === 0) add('window.idle_timeout_ms', 'window.idleTimeoutMs', 'is required when completion is idle');
  if (!idle && w.idleTimeoutMs !== 0) add('window.idle_timeout_ms', 'window.idleTimeoutMs', 'applies only when completion is idle');
  add('window.allowed_lateness_ms', 'window.allowedLatenessMs', range(w.allowedLatenessMs, 0, Number.MAX_SAFE_INTEGER));
  if (idle && w.allowedLatenessMs > 0)
    add(
      'window.allowed_lateness_ms',
      'window.allowedLatenessMs',
      'applies only when completion is endPosition (idle reads every record until the topic is idle)',
    );
}

/** `must be at least MIN, not N` / `must be at most MAX, not N`, the spec reader's words. */
export function range(value: number, min: number, max: number): string | undefined {
  if (value < min) return `must be at least ${min}, not ${value}`;
  if (value > max) return `must be at most ${max}, not ${value}`;
  return undefined;
}

function zeroOrRange(value: number, min: number, max: number): string | undefined {
  return value === 0 ? undefined : range(value, min, max);
}

/** An enum field decoded from a number no value of the enum has (ts-proto: UNRECOGNIZED). */
function enumProblem(value: string, values: Record<string, string>): string | undefined {
  if (value in values && value !== 'UNRECOGNIZED') return undefined;
  const known = Object.keys(values).filter((k) => k !== 'UNRECOGNIZED' && !k.endsWith('_UNSPECIFIED'));
  return `is not a known value (one of ${known.join(', ')})`;
}

function timeZoneProblem(name: string): string | undefined {
  if (name === '') return undefined;
  try {
    zone(name);
    return undefined;
  } catch {
    return `${quotedPrefix(name)} is not an IANA time zone (e.g. "Asia/Shanghai", "UTC")`;
  }
}

function quotedProblem(text: string, problemOf: (text: string) => string | undefined): string | undefined {
  const problem = problemOf(text);
  return problem && `${quotedPrefix(text)} ${problem}`;
}
