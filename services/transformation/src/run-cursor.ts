/**
 * Reads a record run (proto RecordRun, shared/src/record-runs.ts) one record at a time through
 * ONE reused record: the batch loop asks for a record, transforms it and moves on, so nothing
 * per record is built but the views of its key and value. A record that must outlive the step
 * (a refused one, kept for its error) is copied with snapshot().
 *
 * The run must have passed runProblem (the coverage check does that first): the cursor trusts
 * its lengths. `runRecords` is the reference it agrees with (test/run-cursor.test.ts).
 */
import { RecordRun } from '#shared/gen/sluice/v1/transformation.js';
import type { KafkaHeader, KafkaRecord } from '#shared/gen/sluice/v1/types.js';

const NO_HEADERS: KafkaHeader[] = Object.freeze([]) as unknown as KafkaHeader[];
const EMPTY_RUN: RecordRun = RecordRun.fromPartial({});

export class RunCursor implements KafkaRecord {
  topic = '';
  partition = 0;
  offset = 0;
  timestampMs = 0;
  key: Buffer | undefined = undefined;
  value: Buffer | undefined = undefined;
  headers: KafkaHeader[] = NO_HEADERS;

  private run: RecordRun = EMPTY_RUN;
  private index = -1;
  private valueAt = 0;
  private keyAt = 0;
  /** The next entry of run.headers to match (they are in index order). */
  private headerAt = 0;

  /** Starts reading `run`: the next next() is its first record. */
  reset(run: RecordRun): this {
    this.run = run;
    this.topic = run.topic;
    this.partition = run.partition;
    this.index = -1;
    this.valueAt = 0;
    this.keyAt = 0;
    this.headerAt = 0;
    return this;
  }

  /** Moves to the next record; false after the last one. */
  next(): boolean {
    const run = this.run;
    const i = ++this.index;
    if (i >= run.offsetDeltas.length) return false;
    this.offset = run.baseOffset + run.offsetDeltas[i];
    this.timestampMs = run.timestampsMs[i];
    const valueLength = run.valueLengths[i];
    if (valueLength < 0) this.value = undefined;
    else {
      this.value = run.values.subarray(this.valueAt, this.valueAt + valueLength);
      this.valueAt += valueLength;
    }
    const keyLength = run.keyLengths.length > 0 ? run.keyLengths[i] : -1;
    if (keyLength < 0) this.key = undefined;
    else {
      this.key = run.keys.subarray(this.keyAt, this.keyAt + keyLength);
      this.keyAt += keyLength;
    }
    const h = run.headers[this.headerAt];
    if (h !== undefined && h.index === i) {
      this.headers = h.headers;
      this.headerAt++;
    } else this.headers = NO_HEADERS;
    return true;
  }

  /** The current record as its own object, unchanged by later steps. */
  snapshot(): KafkaRecord {
    const { topic, partition, offset, timestampMs, key, value } = this;
    return { topic, partition, offset, timestampMs, key, value, headers: [...this.headers] };
  }
}
