/**
 * Fetched records out of their holder (kafka/fetched-records.ts) as one object each, their
 * bytes copied: a holder and the response its ranges point into are valid only until the
 * connection's next request, and the fetch tests compare records gathered over many fetches.
 */
import type { FetchedRecords, RecordHeader } from '../../src/kafka/fetched-records.js';

export interface TakenRecord {
  readonly offset: number;
  readonly timestamp: number;
  readonly key: Buffer | null;
  readonly value: Buffer | null;
  /** null when the record has none. */
  readonly headers: RecordHeader[] | null;
}

const copy = (b: Buffer | null) => (b === null ? null : Buffer.from(b));

export function takeRecords(records: FetchedRecords): TakenRecord[] {
  return Array.from({ length: records.count }, (_, i) => ({
    offset: records.offsets[i],
    timestamp: records.timestamps[i],
    key: copy(records.key(i)),
    value: copy(records.value(i)),
    headers: records.headers(i)?.map(({ key, value }) => ({ key, value: copy(value) })) ?? null,
  }));
}
