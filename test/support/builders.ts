/**
 * Builders for the catalog's and transformation's messages in tests: fields, schemas, mappings,
 * Kafka records, tables, sources and jobs. Each fills what a test would otherwise spell out
 * and leaves the rest to the generated type's fromPartial (the proto defaults), so a test names
 * only what it is about.
 */
import { CreateTableRequest, type DeepPartial, Job, Source } from '#shared/gen/sluice/v1/catalog.js';
import type { CatalogClient } from './services.js';
import {
  type Field,
  type IcebergType,
  type KafkaRecord,
  MappingSpec,
  MessageFormat,
  MessageMode,
  type Schema,
  type TableRef,
} from '#shared/gen/sluice/v1/types.js';

/** An Iceberg primitive type by name (long, string, decimal(12,3), timestamptz, ...). */
export const primitive = (value: string): IcebergType => ({ kind: { $case: 'primitive', value } });

/** A column: a primitive type by name, or any Iceberg type (struct, list, map); id 0 lets the catalog assign ids. */
export const field = (id: number, name: string, type: string | IcebergType, required = false): Field => ({
  id,
  name,
  required,
  type: typeof type === 'string' ? primitive(type) : type,
  doc: '',
});

export const schema = (...fields: Field[]): Schema => ({ schemaId: 0, fields, identifierFieldIds: [] });

/** A mapping of JSON messages with nothing else set, for the core's plan and record tests. */
export const mapping = (overrides: Partial<MappingSpec> = {}): MappingSpec =>
  MappingSpec.fromPartial({ format: MessageFormat.MESSAGE_FORMAT_JSON, ...overrides });

/** The pipeline tests' mapping: the message value's top-level keys onto the columns of their names (FLATTEN, level 1), in UTC. */
export const flattenMapping = (overrides: Partial<MappingSpec> = {}): MappingSpec =>
  MappingSpec.fromPartial({
    format: MessageFormat.MESSAGE_FORMAT_FLATTEN,
    mode: MessageMode.MESSAGE_MODE_VALUE,
    flattenLevel: 1,
    timeZone: 'UTC',
    ...overrides,
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

/** A CreateTable request for `ref` with these columns (its location the catalog's choice). */
export const tableRequest = (ref: TableRef, fields: Field[], overrides: Partial<CreateTableRequest> = {}): CreateTableRequest =>
  CreateTableRequest.fromPartial({ ref, schema: schema(...fields), ...overrides });

/** A source of JSON message values on `topic` (the default brokers unless named). */
export const source = (name: string, topic: string, overrides: Partial<Source> = {}): Source =>
  Source.fromPartial({ name, topic, format: MessageFormat.MESSAGE_FORMAT_JSON, mode: MessageMode.MESSAGE_MODE_VALUE, ...overrides });

/** A job from `source` into `table` at parallelism 1; everything else not overridden is the catalog's default. */
export const job = (name: string, sourceName: string, into: TableRef, overrides: DeepPartial<Job> = {}): Job =>
  Job.fromPartial({ name, source: sourceName, table: into, parallelism: 1, ...overrides });

/**
 * Records where job `jobName` starts on partitions of `topic` (partition → offset), as ingestion
 * does when it starts the job: the catalog refuses a job's first commit on a partition that
 * does not begin at its recorded start. For tests that commit or report offsets without ingestion.
 */
export async function recordStarts(
  catalog: Pick<CatalogClient, 'recordJobStart'>,
  jobName: string,
  topic: string,
  offsets: Readonly<Record<number, number>>,
): Promise<void> {
  const starts = Object.entries(offsets).map(([partition, offset]) => ({ topic, partition: Number(partition), offset }));
  await catalog.recordJobStart({ job: jobName, starts });
}
