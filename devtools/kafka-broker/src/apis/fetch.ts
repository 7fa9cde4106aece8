import { ErrorCode } from '../protocol/errors.js';
import { batchBaseOffset, batchLastOffsetDelta } from '../protocol/record-batch.js';
import type { PartitionLog } from '../storage/partition-log.js';
import { defineApi, type BrokerState } from './types.js';

interface PartitionFetch {
  partition: number;
  fetchOffset: number;
  partitionMaxBytes: number;
}
/** Fetch's isolation_level: READ_COMMITTED stops at the last stable offset and gets the aborted transactions. */
const READ_COMMITTED = 1;

interface Req {
  isolationLevel: number;
  maxWaitMs: number;
  minBytes: number;
  maxBytes: number;
  topics: { topic: string; partitions: PartitionFetch[] }[];
}
interface PartitionResult {
  partition: number;
  errorCode: number;
  highWatermark: number;
  lastStableOffset: number;
  logStartOffset: number;
  /** null for read_uncommitted (Kafka sends null there). */
  abortedTransactions: { producerId: bigint; firstOffset: number }[] | null;
  batches: Buffer[];
  bytes: number;
}
interface Res {
  topics: { topic: string; partitions: PartitionResult[] }[];
}

/**
 * Fetch (key 1) v4-v11, both isolation levels (read_committed: up to the last stable offset,
 * with the aborted transactions of the range, so the client drops their records). Long polls: when less than min_bytes is available the request parks
 * until a produce to one of its partitions or max_wait_ms. Stored batches go out by reference.
 * Fetch sessions (KIP-227) are declined by answering session id 0, so clients send full fetches.
 */
export const fetchApi = defineApi<Req, Res>({
  apiKey: 1,
  name: 'Fetch',
  minVersion: 4,
  maxVersion: 11,
  decode(r, version) {
    r.int32(); // replica id
    const maxWaitMs = r.int32();
    const minBytes = r.int32();
    const maxBytes = r.int32();
    const isolationLevel = r.int8();
    if (version >= 7) {
      r.int32(); // session id
      r.int32(); // session epoch
    }
    const topics = r.array((r) => ({
      topic: r.string(),
      partitions: r.array((r) => {
        const partition = r.int32();
        if (version >= 9) r.int32(); // current leader epoch
        const fetchOffset = r.int64();
        if (version >= 5) r.int64(); // follower log start offset
        return { partition, fetchOffset, partitionMaxBytes: r.int32() };
      }),
    }));
    // forgotten topics
    if (version >= 7)
      r.array((r) => {
        r.string();
        return r.array((r) => r.int32());
      });
    if (version >= 11) r.string(); // rack id
    return { isolationLevel, maxWaitMs, minBytes, maxBytes, topics };
  },
  async handle(req, ctx) {
    const deadline = Date.now() + Math.max(0, req.maxWaitMs);
    for (;;) {
      const res = readAll(ctx.broker, req);
      const { bytes, errors } = summarize(res);
      const remaining = deadline - Date.now();
      if (bytes >= req.minBytes || errors || remaining <= 0 || ctx.signal.aborted) return res;
      await waitForAppend(ctx.broker, req, remaining, ctx.signal);
    }
  },
  encode(w, res, version) {
    w.int32(0); // throttle
    if (version >= 7) w.int16(ErrorCode.NONE).int32(0); // top-level error, session id 0 = no session
    w.array(res.topics, (w, t) =>
      w.string(t.topic).array(t.partitions, (w, p) => {
        w.int32(p.partition).int16(p.errorCode).int64(p.highWatermark);
        w.int64(p.lastStableOffset);
        if (version >= 5) w.int64(p.logStartOffset);
        w.array(p.abortedTransactions, (w, a) => w.int64(a.producerId).int64(a.firstOffset));
        if (version >= 11) w.int32(-1); // preferred read replica
        w.int32(p.bytes);
        for (const b of p.batches) w.raw(b);
      }),
    );
  },
  errorResponse: (req, errorCode) => ({
    topics: req.topics.map((t) => ({
      topic: t.topic,
      partitions: t.partitions.map((p) => ({
        partition: p.partition,
        errorCode,
        highWatermark: -1,
        lastStableOffset: -1,
        logStartOffset: -1,
        abortedTransactions: null,
        batches: [],
        bytes: 0,
      })),
    })),
  }),
});

function readAll(broker: BrokerState, req: Req): Res {
  let budget = req.maxBytes;
  return {
    topics: req.topics.map((t) => ({
      topic: t.topic,
      partitions: t.partitions.map((p) => {
        const result = readPartition(broker.topics.partition(t.topic, p.partition), p, budget, req.isolationLevel === READ_COMMITTED);
        budget = Math.max(0, budget - result.bytes);
        return result;
      }),
    })),
  };
}

/** Reads one partition; the first non-empty partition of a response is not limited by budget. */
function readPartition(log: PartitionLog | undefined, p: PartitionFetch, budget: number, readCommitted: boolean): PartitionResult {
  const result: PartitionResult = {
    partition: p.partition,
    errorCode: ErrorCode.NONE,
    highWatermark: -1,
    lastStableOffset: -1,
    logStartOffset: -1,
    abortedTransactions: null,
    batches: [],
    bytes: 0,
  };
  if (!log) return { ...result, errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION };
  result.highWatermark = log.highWatermark;
  result.lastStableOffset = log.lastStableOffset;
  result.logStartOffset = log.logStartOffset;
  if (readCommitted) result.abortedTransactions = [];
  if (p.fetchOffset < log.logStartOffset || p.fetchOffset > log.highWatermark) {
    return { ...result, errorCode: ErrorCode.OFFSET_OUT_OF_RANGE };
  }
  // read_committed sees nothing at or past the last stable offset (an open transaction's records).
  const end = readCommitted ? log.lastStableOffset : log.highWatermark;
  if (budget <= 0 || p.fetchOffset >= end) return result;
  const { batches, bytes } = log.read(p.fetchOffset, Math.min(p.partitionMaxBytes, budget), end);
  result.batches = batches;
  result.bytes = bytes;
  if (readCommitted && batches.length > 0) {
    const last = batches[batches.length - 1];
    const upTo = batchBaseOffset(last) + batchLastOffsetDelta(last) + 1;
    result.abortedTransactions = log
      .abortedBetween(p.fetchOffset, upTo)
      .map(({ producerId, firstOffset }) => ({ producerId, firstOffset }));
  }
  return result;
}

function summarize(res: Res): { bytes: number; errors: boolean } {
  let bytes = 0;
  let errors = false;
  for (const t of res.topics) {
    for (const p of t.partitions) {
      bytes += p.bytes;
      if (p.errorCode !== ErrorCode.NONE) errors = true;
    }
  }
  return { bytes, errors };
}

/** Resolves on the first append to any requested partition, the timeout, or abort. */
function waitForAppend(broker: BrokerState, req: Req, timeoutMs: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const unsubscribe: (() => void)[] = [];
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      for (const u of unsubscribe) u();
      resolve();
    };
    const timer = setTimeout(done, timeoutMs);
    signal.addEventListener('abort', done);
    for (const t of req.topics) {
      for (const p of t.partitions) {
        const log = broker.topics.partition(t.topic, p.partition);
        if (log) unsubscribe.push(log.onAppend(done));
      }
    }
  });
}
