/**
 * Reads a record run (proto RecordRun, shared/src/record-runs.ts) one record at a time through
 * ONE reused record: the batch loop asks for a record, transforms it and moves on, so nothing
 * per record is built. The key and value are ranges of the run's buffers (what the token
 * scanner reads, RecordRanges); `key` and `value` copy them when asked, for the reference path:
 * the run's buffers are the received message, which goes back to the receive pool once the
 * batch is transformed (request-decoder.ts releaseBatch), while a row, a pending change or a
 * refused record may keep what it was given for longer. A record that must outlive the step (a
 * refused one, kept for its error) is copied with snapshot().
 *
 * The run must have passed runProblem (the coverage check does that first): the cursor trusts
 * its lengths. `runRecords` is the reference it agrees with (test/run-cursor.test.ts).
 */
import { RecordRun } from '#shared/gen/sluice/v1/transformation.js';
import type { KafkaHeader, KafkaRecord } from '#shared/gen/sluice/v1/types.js';
import type { RecordRanges } from './core/token-scan.js';
import type { RunView } from '#shared/record-runs.js';

/** `bytes[start, end)` in a buffer of its own. */
function copyOf(bytes: Buffer, start: number, end: number): Buffer {
  const copy = Buffer.allocUnsafe(end - start);
  bytes.copy(copy, 0, start, end);
  return copy;
}

const NO_HEADERS: KafkaHeader[] = Object.freeze([]) as unknown as KafkaHeader[];
const EMPTY_RUN: RecordRun = RecordRun.fromPartial({});

export class RunCursor implements KafkaRecord, RecordRanges {
  topic = '';
  partition = 0;
  offset = 0;
  timestampMs = 0;
  headers: KafkaHeader[] = NO_HEADERS;
  /** The run's values; the current value is valueBytes[valueStart, valueEnd), null when valueStart is -1. */
  valueBytes: Buffer = EMPTY_RUN.values;
  valueStart = -1;
  valueEnd = -1;
  /** The run's keys; the current key likewise. */
  keyBytes: Buffer = EMPTY_RUN.keys;
  keyStart = -1;
  keyEnd = -1;

  private run: RunView = EMPTY_RUN;
  private index = -1;
  private valueAt = 0;
  private keyAt = 0;
  /** The next entry of run.headers to match (they are in index order). */
  private headerAt = 0;

  /** A copy of the current value (see the top: the run's bytes are reused after the batch). */
  get value(): Buffer | undefined {
    return this.valueStart < 0 ? undefined : copyOf(this.valueBytes, this.valueStart, this.valueEnd);
  }

  /** A copy of the current key. */
  get key(): Buffer | undefined {
    return this.keyStart < 0 ? undefined : copyOf(this.keyBytes, this.keyStart, this.keyEnd);
  }

  /** Bytes of its key and value. */
  get bytes(): number {
    return this.valueEnd - this.valueStart + (this.keyEnd - this.keyStart);
  }

  /** Starts reading `run`: the next next() is its first record. */
  reset(run: RunView): this {
    this.run = run;
    this.topic = run.topic;
    this.partition = run.partition;
    this.valueBytes = run.values;
    this.keyBytes = run.keys;
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
    if (valueLength < 0) this.valueStart = this.valueEnd = -1;
    else {
      this.valueStart = this.valueAt;
      this.valueEnd = this.valueAt += valueLength;
    }
    const keyLength = run.keyLengths.length > 0 ? run.keyLengths[i] : -1;
    if (keyLength < 0) this.keyStart = this.keyEnd = -1;
    else {
      this.keyStart = this.keyAt;
      this.keyEnd = this.keyAt += keyLength;
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
