/**
 * One record as ingestion's fetch path decodes it from a Fetch response: numbers where kafkajs
 * gives decimal strings, and the key and value as byte ranges of the buffer they arrived in
 * (the response frame, or a decompressed batch) instead of a Buffer each. The batch encoder
 * copies those ranges straight into the TransformRequest, so a record costs one small object
 * of a single shape and nothing else.
 */
export class FetchedRecord {
  constructor(
    readonly offset: number,
    /** Milliseconds since the epoch (CreateTime or LogAppendTime, as the batch says). */
    readonly timestamp: number,
    /** The buffer keyStart and valueStart point into. */
    readonly data: Buffer,
    readonly keyStart: number,
    /** -1: a null key. */
    readonly keyLength: number,
    readonly valueStart: number,
    /** -1: a null value (a tombstone). */
    readonly valueLength: number,
    /** null when the record has none (nearly always). */
    readonly headers: RecordHeader[] | null,
  ) {}

  /** The key's bytes (a view, no copy); null for a null key. Not for hot paths. */
  key(): Buffer | null {
    return this.keyLength < 0 ? null : this.data.subarray(this.keyStart, this.keyStart + this.keyLength);
  }

  /** The value's bytes (a view, no copy); null for a tombstone. Not for hot paths. */
  value(): Buffer | null {
    return this.valueLength < 0 ? null : this.data.subarray(this.valueStart, this.valueStart + this.valueLength);
  }
}

/** A record header: a UTF-8 key and a value that may be null. Order and repeats are kept. */
export interface RecordHeader {
  readonly key: string;
  readonly value: Buffer | null;
}
