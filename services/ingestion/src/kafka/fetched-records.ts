/**
 * The records of one partition's Fetch answer, column by column, as ingestion's fetch path
 * decodes them: offsets and timestamps as numbers, and each key and value as a byte range of
 * the buffer it arrived in (the response, or its batch decompressed). The batch encoder copies
 * those ranges straight into the TransformRequest.
 *
 * Why columns and not an object per record: a fetch round holds up to 10 MiB of records (70k
 * narrow ones) from decoding until they are encoded, and one object per record made the
 * collector copy and promote them when a scavenge came in between; the collector took about a
 * third of ingestion's main thread (DESIGN.md, "Ingestion's fetch path"). The fetcher keeps one
 * holder per partition and decodes each round's answer into it again, so its columns are
 * allocated once and only grow.
 *
 * What a holder says is valid until the fetcher's next round: the next answer is decoded into
 * the same columns, and read into the same receive buffer (receive-buffer.ts).
 */

/** A record header: a UTF-8 key and a value that may be null. Order and repeats are kept. */
export interface RecordHeader {
  readonly key: string;
  readonly value: Buffer | null;
}

const INITIAL_CAPACITY = 256;

export class FetchedRecords {
  /** How many records the columns hold (they have room for more). */
  count = 0;
  offsets = new Float64Array(INITIAL_CAPACITY);
  /** Milliseconds since the epoch (CreateTime or LogAppendTime, as the batch says). */
  timestamps = new Float64Array(INITIAL_CAPACITY);
  /** The buffer a record's key and value lie in. Slots past `count` may still name old buffers. */
  readonly data: Buffer[] = [];
  keyStarts = new Int32Array(INITIAL_CAPACITY);
  /** -1: a null key. */
  keyLengths = new Int32Array(INITIAL_CAPACITY);
  valueStarts = new Int32Array(INITIAL_CAPACITY);
  /** -1: a null value (a tombstone). */
  valueLengths = new Int32Array(INITIAL_CAPACITY);
  /** The records that have headers (nearly always none), ascending, and their headers. */
  readonly headerIndexes: number[] = [];
  readonly headerLists: RecordHeader[][] = [];
  /** Room for a list of record indexes: coverage.ts planBatch writes the records to send there. */
  picked = new Int32Array(INITIAL_CAPACITY);

  /** Empties the holder for the next answer, keeping its columns' room. */
  clear(): void {
    this.count = 0;
    this.headerIndexes.length = 0;
    this.headerLists.length = 0;
  }

  add(
    offset: number,
    timestamp: number,
    data: Buffer,
    keyStart: number,
    keyLength: number,
    valueStart: number,
    valueLength: number,
    headers: RecordHeader[] | null,
  ): void {
    const i = this.count;
    if (i === this.offsets.length) this.grow();
    this.offsets[i] = offset;
    this.timestamps[i] = timestamp;
    this.data[i] = data;
    this.keyStarts[i] = keyStart;
    this.keyLengths[i] = keyLength;
    this.valueStarts[i] = valueStart;
    this.valueLengths[i] = valueLength;
    if (headers !== null) {
      this.headerIndexes.push(i);
      this.headerLists.push(headers);
    }
    this.count = i + 1;
  }

  /** Record i's key (a view, no copy); null for a null key. Not for hot paths. */
  key(i: number): Buffer | null {
    const length = this.keyLengths[i];
    return length < 0 ? null : this.data[i].subarray(this.keyStarts[i], this.keyStarts[i] + length);
  }

  /** Record i's value (a view, no copy); null for a tombstone. Not for hot paths. */
  value(i: number): Buffer | null {
    const length = this.valueLengths[i];
    return length < 0 ? null : this.data[i].subarray(this.valueStarts[i], this.valueStarts[i] + length);
  }

  /**
   * The headers of the records `send` names (indexes, ascending): each as [its position in
   * `send`, its headers]; null when none of them has any (nearly always). One merge of the two
   * ascending lists, shared by the batch encoder and the batch span's links.
   */
  headersOf(send: ArrayLike<number>): [number, RecordHeader[]][] | null {
    const { headerIndexes, headerLists } = this;
    let found: [number, RecordHeader[]][] | null = null;
    let k = 0;
    for (let h = 0; h < headerIndexes.length; h++) {
      while (k < send.length && send[k] < headerIndexes[h]) k++;
      if (k === send.length) break;
      if (send[k] === headerIndexes[h]) (found ??= []).push([k, headerLists[h]]);
    }
    return found;
  }

  /** Record i's headers; null when it has none. Not for hot paths. */
  headers(i: number): RecordHeader[] | null {
    const at = this.headerIndexes.indexOf(i);
    return at < 0 ? null : this.headerLists[at];
  }

  private grow(): void {
    const capacity = this.offsets.length * 2;
    const grown = <T extends Float64Array | Int32Array>(column: T, make: (n: number) => T): T => {
      const next = make(capacity);
      next.set(column);
      return next;
    };
    this.offsets = grown(this.offsets, (n) => new Float64Array(n));
    this.timestamps = grown(this.timestamps, (n) => new Float64Array(n));
    this.keyStarts = grown(this.keyStarts, (n) => new Int32Array(n));
    this.keyLengths = grown(this.keyLengths, (n) => new Int32Array(n));
    this.valueStarts = grown(this.valueStarts, (n) => new Int32Array(n));
    this.valueLengths = grown(this.valueLengths, (n) => new Int32Array(n));
    this.picked = new Int32Array(capacity);
  }
}
