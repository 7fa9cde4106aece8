/**
 * Fetch (key 1) version 11, one topic: the request ingestion's fetcher sends and the response
 * decoded into a FetchedRecords holder per partition. v11 is the newest non-flexible version;
 * Apache Kafka 2.3 through 4.x and the dev broker speak it. No fetch session (KIP-227): every
 * request is a full fetch.
 *
 * Wire grammar (big-endian; string: int16 length + utf8; array: int32 count, -1 for null):
 *
 *   FetchRequest v11  => replica_id: int32 (-1), max_wait_ms: int32, min_bytes: int32,
 *                        max_bytes: int32, isolation_level: int8, session_id: int32 (0),
 *                        session_epoch: int32 (-1), topics: [topic: string,
 *                        partitions: [partition: int32, current_leader_epoch: int32 (-1),
 *                        fetch_offset: int64, log_start_offset: int64 (-1),
 *                        partition_max_bytes: int32]], forgotten_topics_data: [] ,
 *                        rack_id: string
 *   FetchResponse v11 => throttle_time_ms: int32, error_code: int16, session_id: int32,
 *                        responses: [topic: string, partitions: [partition: int32,
 *                        error_code: int16, high_watermark: int64, last_stable_offset: int64,
 *                        log_start_offset: int64, aborted_transactions: [producer_id: int64,
 *                        first_offset: int64] (null unless read_committed),
 *                        preferred_read_replica: int32, records: int32 length + RecordBatch*]]
 */
import { FetchedRecords } from './fetched-records.js';
import { type AbortedTransaction, decodeRecordBatches, RecordBatchError } from './record-batches.js';
import { ResponseReader } from './response-reader.js';

export interface FetchRequest {
  readonly maxWaitMs: number;
  readonly minBytes: number;
  readonly maxBytes: number;
  /** 0: read_uncommitted, 1: read_committed. */
  readonly isolationLevel: 0 | 1;
  readonly topic: string;
  readonly partitions: readonly { readonly partition: number; readonly fetchOffset: number; readonly maxBytes: number }[];
}

/** The request's body (the header is the connection's). */
export function encodeFetchRequest(req: FetchRequest): Buffer {
  const topic = Buffer.from(req.topic, 'utf8');
  const buf = Buffer.alloc(4 * 4 + 1 + 4 + 4 + 4 + 2 + topic.length + 4 + req.partitions.length * 28 + 4 + 2);
  let at = buf.writeInt32BE(-1, 0); // replica id: a consumer
  at = buf.writeInt32BE(req.maxWaitMs, at);
  at = buf.writeInt32BE(req.minBytes, at);
  at = buf.writeInt32BE(req.maxBytes, at);
  at = buf.writeInt8(req.isolationLevel, at);
  at = buf.writeInt32BE(0, at); // session id
  at = buf.writeInt32BE(-1, at); // session epoch: a full fetch, no session
  at = buf.writeInt32BE(1, at); // one topic
  at = buf.writeInt16BE(topic.length, at);
  at += topic.copy(buf, at);
  at = buf.writeInt32BE(req.partitions.length, at);
  for (const p of req.partitions) {
    at = buf.writeInt32BE(p.partition, at);
    at = buf.writeInt32BE(-1, at); // current leader epoch: unknown
    at = buf.writeBigInt64BE(BigInt(p.fetchOffset), at);
    at = buf.writeBigInt64BE(-1n, at); // log start offset (followers only)
    at = buf.writeInt32BE(p.maxBytes, at);
  }
  at = buf.writeInt32BE(0, at); // forgotten topics
  at = buf.writeInt16BE(0, at); // rack id ''
  if (at !== buf.length) throw new Error(`Fetch request sized ${buf.length} bytes, wrote ${at}`);
  return buf;
}

/** One partition of a Fetch response. */
export interface FetchedPartition {
  readonly partition: number;
  readonly errorCode: number;
  readonly highWatermark: number;
  readonly lastStableOffset: number;
  readonly logStartOffset: number;
  /** The records to use, in offset order (markers and aborted records left out). */
  readonly records: FetchedRecords;
  /** One past the last offset of the response's last complete batch; null when it has none. */
  readonly nextOffset: number | null;
}

/**
 * The response's top-level error code and the partitions of `topic` (others are ignored).
 * `recordsOf` gives the empty holder a partition's records are decoded into (the fetcher's own,
 * reused round after round); the records point into `body`, whose lifetime they share.
 */
export function decodeFetchResponse(
  body: Buffer,
  topic: string,
  recordsOf: (partition: number) => FetchedRecords = () => new FetchedRecords(),
): { errorCode: number; partitions: FetchedPartition[] } {
  const r = new ResponseReader(body, 'Fetch response');
  r.int32(); // throttle time
  const errorCode = r.int16();
  r.int32(); // session id
  const partitions: FetchedPartition[] = [];
  for (let t = r.int32(); t > 0; t--) {
    const name = r.string();
    for (let n = r.int32(); n > 0; n--) {
      const partition = r.int32();
      const partitionError = r.int16();
      const highWatermark = r.int64();
      const lastStableOffset = r.int64();
      const logStartOffset = r.int64();
      let aborted: AbortedTransaction[] | null = null;
      const abortedCount = r.int32();
      if (abortedCount > 0) {
        aborted = [];
        for (let a = 0; a < abortedCount; a++) aborted.push({ producerId: r.int64String(), firstOffset: r.int64() });
      }
      r.int32(); // preferred read replica
      const size = r.int32();
      const start = r.skip(Math.max(0, size));
      if (name !== topic) continue;
      const records = recordsOf(partition);
      let nextOffset: number | null = null;
      try {
        if (size > 0) nextOffset = decodeRecordBatches(body, start, start + size, aborted, records).nextOffset;
      } catch (err) {
        if (err instanceof RecordBatchError) throw new RecordBatchError(err.offset, err.problem, `${topic}/${partition}`);
        throw err;
      }
      partitions.push({ partition, errorCode: partitionError, highWatermark, lastStableOffset, logStartOffset, records, nextOffset });
    }
  }
  return { errorCode, partitions };
}
