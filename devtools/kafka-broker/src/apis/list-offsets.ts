import { ErrorCode } from '../protocol/errors.js';
import type { PartitionLog } from '../storage/partition-log.js';
import { defineApi } from './types.js';

const LATEST = -1;
const EARLIEST = -2;

/** isolation_level of ListOffsets v2+: READ_COMMITTED answers the last stable offset for "latest". */
const READ_COMMITTED = 1;

interface Req {
  readCommitted: boolean;
  topics: { name: string; partitions: { partition: number; timestamp: number }[] }[];
}
interface PartitionResult {
  partition: number;
  errorCode: number;
  timestamp: number;
  offset: number;
}
interface Res {
  topics: { name: string; partitions: PartitionResult[] }[];
}

/**
 * ListOffsets (key 2) v1-v5: earliest (-2), latest (-1: the high watermark, or the last stable
 * offset for read_committed), or the first offset whose record timestamp is >= the given time
 * (offset -1 when no such record exists below those). Transaction markers count, stamped with
 * the time they were written, as in Kafka.
 */
export const listOffsetsApi = defineApi<Req, Res>({
  apiKey: 2,
  name: 'ListOffsets',
  minVersion: 1,
  maxVersion: 5,
  decode(r, version) {
    r.int32(); // replica id
    const readCommitted = version >= 2 && r.int8() === READ_COMMITTED;
    return {
      readCommitted,
      topics: r.array((r) => ({
        name: r.string(),
        partitions: r.array((r) => {
          const partition = r.int32();
          if (version >= 4) r.int32(); // current leader epoch
          return { partition, timestamp: r.int64() };
        }),
      })),
    };
  },
  handle(req, ctx) {
    return {
      topics: req.topics.map((t) => ({
        name: t.name,
        partitions: t.partitions.map((p) =>
          lookup(ctx.broker.topics.partition(t.name, p.partition), p.partition, p.timestamp, req.readCommitted),
        ),
      })),
    };
  },
  encode(w, res, version) {
    if (version >= 2) w.int32(0);
    w.array(res.topics, (w, t) =>
      w.string(t.name).array(t.partitions, (w, p) => {
        w.int32(p.partition).int16(p.errorCode).int64(p.timestamp).int64(p.offset);
        if (version >= 4) w.int32(p.errorCode === ErrorCode.NONE ? 0 : -1); // leader epoch
      }),
    );
  },
  errorResponse: (req, errorCode) => ({
    topics: req.topics.map((t) => ({
      name: t.name,
      partitions: t.partitions.map((p) => ({ partition: p.partition, errorCode, timestamp: -1, offset: -1 })),
    })),
  }),
});

export function lookup(log: PartitionLog | undefined, partition: number, timestamp: number, readCommitted = false): PartitionResult {
  if (!log) return { partition, errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, timestamp: -1, offset: -1 };
  // As Kafka: read_committed clients are told the last stable offset, and no offset at or past it.
  const lastFetchable = readCommitted ? log.lastStableOffset : log.highWatermark;
  if (timestamp === LATEST) return { partition, errorCode: ErrorCode.NONE, timestamp: -1, offset: lastFetchable };
  if (timestamp === EARLIEST) return { partition, errorCode: ErrorCode.NONE, timestamp: -1, offset: log.logStartOffset };
  if (timestamp < 0) return { partition, errorCode: ErrorCode.INVALID_REQUEST, timestamp: -1, offset: -1 };
  let found: ReturnType<PartitionLog['offsetForTimestamp']>;
  try {
    found = log.offsetForTimestamp(timestamp);
  } catch {
    // Records are not validated on produce (batches are stored as sent, CRC-checked only), so a
    // batch whose compressed payload is garbage surfaces here: answer as Kafka would on produce.
    return { partition, errorCode: ErrorCode.CORRUPT_MESSAGE, timestamp: -1, offset: -1 };
  }
  return found && found.offset < lastFetchable
    ? { partition, errorCode: ErrorCode.NONE, timestamp: found.timestamp, offset: found.offset }
    : { partition, errorCode: ErrorCode.NONE, timestamp: -1, offset: -1 };
}
