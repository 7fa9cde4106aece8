/**
 * Builders for the catalog's and transformation's messages in tests: fields, schemas, mappings,
 * Kafka records, sources and jobs, with the defaults a test would otherwise spell out.
 */
import { Job, JobState, Source } from '#shared/gen/sluice/v1/catalog.js';
import { type Field, type KafkaRecord, type MappingSpec, MessageFormat, MessageMode, type Schema } from '#shared/gen/sluice/v1/types.js';

export const field = (id: number, name: string, type: string, required = false): Field => ({
  id,
  name,
  required,
  type: { kind: { $case: 'primitive', value: type } },
  doc: '',
});

export const schema = (...fields: Field[]): Schema => ({ schemaId: 0, fields, identifierFieldIds: [] });

export const mapping = (m: Partial<MappingSpec>): MappingSpec => ({
  format: MessageFormat.MESSAGE_FORMAT_JSON,
  mode: MessageMode.MESSAGE_MODE_UNSPECIFIED,
  flattenLevel: 0,
  fields: [],
  timeZone: '',
  includeFixedColumns: false,
  ...m,
});

export const record = (value: string | Buffer | undefined, opts: Partial<KafkaRecord> & { keyText?: string } = {}): KafkaRecord => ({
  topic: opts.topic ?? 'topic_test',
  partition: opts.partition ?? 0,
  offset: opts.offset ?? 0,
  timestampMs: opts.timestampMs ?? Date.UTC(2023, 6, 13, 21, 13, 7),
  key: opts.keyText !== undefined ? Buffer.from(opts.keyText) : opts.key,
  value: typeof value === 'string' ? Buffer.from(value) : value,
  headers: opts.headers ?? [],
});

/** The seed 002 fixed columns: topic STRING, partition BIGINT, offset BIGINT. */
export const fixed = [field(1, 'topic', 'string'), field(2, 'partition', 'long'), field(3, 'offset', 'long')];

/** A JSON source of message values on `topic` (the default brokers unless named). */
export const jsonSource = (name: string, topic: string, brokers: string[] = []): Source =>
  Source.fromPartial({ name, topic, brokers, format: MessageFormat.MESSAGE_FORMAT_JSON, mode: MessageMode.MESSAGE_MODE_VALUE });

/** A job from `source` into `database.table`, committing every second unless overridden. */
export const job = (name: string, source: string, table: { database: string; table: string }, overrides: Partial<Job> = {}): Job =>
  Job.fromPartial({ name, source, table, commitIntervalMs: 1000, parallelism: 1, state: JobState.JOB_STATE_CREATED, ...overrides });
