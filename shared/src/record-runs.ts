/**
 * Record runs: the Transform stream's columnar form of a batch (proto RecordRun). A run holds
 * the records of one Kafka partition as columns, so neither ingestion nor transformation
 * builds a message per record on the wire.
 *
 * This module is the simple reference: `recordRuns` builds runs from record objects and
 * `runRecords` turns a run back into them. Ingestion's encoder (`toRecordRun`, straight from
 * kafkajs messages) and transformation's reader (`RunCursor`, one reused record per run) are the
 * fast paths; their tests require them to agree with these.
 */
import type { RecordRun } from './gen/sluice/v1/transformation.js';
import type { KafkaHeader, KafkaRecord } from './gen/sluice/v1/types.js';

/**
 * A run as its readers need it: the numeric columns indexed, with a length. The generated
 * RecordRun (arrays) is one; transformation's request decoder gives typed arrays
 * (services/transformation/src/request-decoder.ts), which the collector does not copy.
 */
export type RunView = Omit<RecordRun, 'offsetDeltas' | 'timestampsMs' | 'valueLengths' | 'keyLengths'> & {
  readonly offsetDeltas: ArrayLike<number>;
  readonly timestampsMs: ArrayLike<number>;
  readonly valueLengths: ArrayLike<number>;
  readonly keyLengths: ArrayLike<number>;
};

/** A run's length in records. */
export function runLength(run: RunView): number {
  return run.offsetDeltas.length;
}

/** The records as runs: consecutive records of one topic and partition share a run, in order. */
export function recordRuns(records: readonly KafkaRecord[]): RecordRun[] {
  const runs: RecordRun[] = [];
  let start = 0;
  for (let i = 1; i <= records.length; i++) {
    const prev = records[i - 1];
    if (i < records.length && records[i].topic === prev.topic && records[i].partition === prev.partition) continue;
    if (i > start) runs.push(runOf(records.slice(start, i)));
    start = i;
  }
  return runs;
}

function runOf(records: readonly KafkaRecord[]): RecordRun {
  const base = Math.min(...records.map((r) => r.offset));
  const hasKeys = records.some((r) => r.key !== undefined);
  const headers = records.flatMap((r, index) => (r.headers.length > 0 ? [{ index, headers: r.headers }] : []));
  return {
    topic: records[0].topic,
    partition: records[0].partition,
    baseOffset: base,
    offsetDeltas: records.map((r) => r.offset - base),
    timestampsMs: records.map((r) => r.timestampMs),
    values: Buffer.concat(records.flatMap((r) => (r.value ? [r.value] : []))),
    valueLengths: records.map((r) => r.value?.length ?? -1),
    keys: Buffer.concat(records.flatMap((r) => (r.key ? [r.key] : []))),
    keyLengths: hasKeys ? records.map((r) => r.key?.length ?? -1) : [],
    headers,
  };
}

/** The run's records as objects (their keys and values are views of the run's buffers). */
export function runRecords(run: RunView): KafkaRecord[] {
  const headers = new Map<number, KafkaHeader[]>(run.headers.map((h) => [h.index, h.headers]));
  const out: KafkaRecord[] = [];
  let valueAt = 0;
  let keyAt = 0;
  for (let i = 0; i < runLength(run); i++) {
    const valueLength = run.valueLengths[i];
    const keyLength = run.keyLengths.length > 0 ? run.keyLengths[i] : -1;
    out.push({
      topic: run.topic,
      partition: run.partition,
      offset: run.baseOffset + run.offsetDeltas[i],
      timestampMs: run.timestampsMs[i],
      key: keyLength < 0 ? undefined : run.keys.subarray(keyAt, keyAt + keyLength),
      value: valueLength < 0 ? undefined : run.values.subarray(valueAt, valueAt + valueLength),
      headers: headers.get(i) ?? [],
    });
    if (valueLength > 0) valueAt += valueLength;
    if (keyLength > 0) keyAt += keyLength;
  }
  return out;
}

/**
 * Why a run's columns do not fit together (lengths of different counts, lengths beyond the
 * bytes, a header index out of range), or null. Transformation checks every run it is sent
 * before reading it, so a malformed batch is refused by name instead of read out of bounds.
 */
export function runProblem(run: RunView): string | null {
  const n = run.offsetDeltas.length;
  const where = `run of ${run.topic}/${run.partition}`;
  if (run.timestampsMs.length !== n) return `${where}: ${run.timestampsMs.length} timestamps for ${n} records`;
  if (run.valueLengths.length !== n) return `${where}: ${run.valueLengths.length} value lengths for ${n} records`;
  if (run.keyLengths.length !== 0 && run.keyLengths.length !== n) return `${where}: ${run.keyLengths.length} key lengths for ${n} records`;
  const badValue = firstBelowNull(run.valueLengths);
  if (badValue >= 0) return `${where}: record ${badValue} has value length ${run.valueLengths[badValue]}`;
  const badKey = firstBelowNull(run.keyLengths);
  if (badKey >= 0) return `${where}: record ${badKey} has key length ${run.keyLengths[badKey]}`;
  const values = columnBytes(run.valueLengths);
  if (values !== run.values.length) return `${where}: value lengths add up to ${values} bytes, the values hold ${run.values.length}`;
  const keys = columnBytes(run.keyLengths);
  if (keys !== run.keys.length) return `${where}: key lengths add up to ${keys} bytes, the keys hold ${run.keys.length}`;
  let lastIndex = -1;
  for (const h of run.headers) {
    if (h.index >= n || h.index <= lastIndex) return `${where}: header index ${h.index} is out of order or beyond its ${n} records`;
    lastIndex = h.index;
  }
  return null;
}

// Indexed loops: these run over every record of every batch transformation receives, and
// findIndex's callback and for-of's iterator showed up as garbage in its heap profile.

/** The bytes a length column adds up to (a null, -1, adds nothing). */
function columnBytes(lengths: ArrayLike<number>): number {
  let total = 0;
  for (let i = 0; i < lengths.length; i++) if (lengths[i] > 0) total += lengths[i];
  return total;
}

/** The index of the first length below -1 (the null), or -1. */
function firstBelowNull(lengths: ArrayLike<number>): number {
  for (let i = 0; i < lengths.length; i++) if (lengths[i] < -1) return i;
  return -1;
}
