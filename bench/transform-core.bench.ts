/**
 * Transformation core throughput, beside plain `JSON.parse` of the same messages in the same
 * run (the ratio is the cost of the core over the parse floor), for two shapes:
 * - narrow: 1M JSON messages of ~150 bytes through the pure core (UTF-8 check, JSON.parse,
 *   FLATTEN at level 1, coercion into a 13-column table with long/string/decimal/timestamptz/
 *   boolean columns, fixed columns, a record-time `pt` partition column and its tuple);
 * - wide: the pipeline bench's ~640-byte events (bench/pipeline/records.ts), JSON at flatten
 *   level 2 into 22 columns.
 * No I/O: Parquet writing is measured by the writer's own comparison (shared/src/parquet).
 *
 * Run alone: `npm run bench -- transform-core` (BENCH_CORE_MESSAGES to change N).
 */
import { performance } from 'node:perf_hooks';
import { Granularity, MessageFormat, MessageMode, TimeSource, type KafkaRecord } from '#shared/gen/sluice/v1/types.js';
import { compilePlan, partitionOf, RecordError, transformRecord } from '../services/transformation/src/core/index.js';
import { clickEvent } from './support/messages.js';
import { wideEventJson } from './pipeline/records.js';
import { jsonShapePlan } from './support/shape-plan.js';

const MESSAGES = Number(process.env.BENCH_CORE_MESSAGES ?? 1_000_000);
const prim = (id: number, name: string, type: string) => ({
  id,
  name,
  required: false,
  doc: '',
  type: { kind: { $case: 'primitive' as const, value: type } },
});

export default async function run(): Promise<Record<string, unknown>> {
  return { narrow: measure(...narrow()), wide: measure(...wide()) };
}

function recordsOf(message: (i: number) => string | Buffer): KafkaRecord[] {
  const records: KafkaRecord[] = new Array(MESSAGES);
  for (let i = 0; i < MESSAGES; i++) {
    const m = message(i);
    const value = typeof m === 'string' ? Buffer.from(m) : m;
    records[i] = {
      topic: 'events',
      partition: i % 4,
      offset: i,
      timestampMs: 1_689_282_787_000 + i * 10,
      value,
      key: undefined,
      headers: [],
    };
  }
  return records;
}

/** The wide shape: the pipeline bench's events and columns, JSON at flatten level 2. */
function wide(): [KafkaRecord[], ReturnType<typeof compilePlan>] {
  return [recordsOf(wideEventJson), jsonShapePlan('wide')];
}

function narrow(): [KafkaRecord[], ReturnType<typeof compilePlan>] {
  const plan = compilePlan({
    schema: {
      schemaId: 0,
      identifierFieldIds: [],
      fields: [
        prim(1, 'topic', 'string'),
        prim(2, 'partition', 'int'),
        prim(3, 'offset', 'long'),
        prim(4, 'id', 'long'),
        prim(5, 'user', 'string'),
        prim(6, 'event', 'string'),
        prim(7, 'amount', 'decimal(10,2)'),
        prim(8, 'ts', 'timestamptz'),
        prim(9, 'country', 'string'),
        prim(10, 'ok', 'boolean'),
        prim(11, 'session', 'string'),
        prim(12, 'page', 'string'),
        prim(13, 'pt', 'string'),
      ],
    },
    mapping: {
      format: MessageFormat.MESSAGE_FORMAT_FLATTEN,
      mode: MessageMode.MESSAGE_MODE_VALUE,
      flattenLevel: 1,
      fields: [],
      timeZone: 'Asia/Shanghai',
      includeFixedColumns: true,
      partitionBy: {
        column: 'pt',
        timeSource: TimeSource.TIME_SOURCE_RECORD_TIME,
        granularity: Granularity.GRANULARITY_HOUR,
        timeZone: '',
        field: '',
        expression: '',
        value: '',
      },
    },
    partitionSpec: { specId: 1, fields: [{ sourceId: 13, fieldId: 1000, name: 'pt', transform: 'identity', sourceName: '' }] },
  });
  return [recordsOf(clickEvent), plan];
}

function measure(records: KafkaRecord[], plan: ReturnType<typeof compilePlan>): Record<string, unknown> {
  let bytes = 0;
  for (const r of records) bytes += r.value!.length;
  const ctx = { nowMs: Date.now() };

  // Warm both paths so the JIT has seen them before timing.
  for (let i = 0; i < Math.min(50_000, MESSAGES); i++) {
    JSON.parse(records[i].value!.toString('utf8'));
    transformRecord(plan, records[i], ctx);
  }

  let t0 = performance.now();
  let sink = 0;
  for (let i = 0; i < MESSAGES; i++) sink += JSON.parse(records[i].value!.toString('utf8')).id & 1;
  const parseMs = performance.now() - t0;

  t0 = performance.now();
  let errors = 0;
  let partitions = 0;
  let last = '';
  for (let i = 0; i < MESSAGES; i++) {
    const row = transformRecord(plan, records[i], ctx);
    if (row instanceof RecordError) {
      errors++;
      continue;
    }
    const key = partitionOf(plan, row).key;
    if (key !== last) {
      partitions++;
      last = key;
    }
  }
  const coreMs = performance.now() - t0;
  if (errors > 0) throw new Error(`${errors} records refused; the benchmark input should be clean`);

  return {
    messages: MESSAGES,
    avg_message_bytes: Math.round(bytes / MESSAGES),
    json_parse_rows_per_s: Math.round(MESSAGES / (parseMs / 1000)),
    core_rows_per_s: Math.round(MESSAGES / (coreMs / 1000)),
    core_vs_json_parse_ratio: Number((coreMs / parseMs).toFixed(2)),
    core_mb_per_s: Number((bytes / 1e6 / (coreMs / 1000)).toFixed(1)),
    partition_changes: partitions,
    sink,
  };
}
