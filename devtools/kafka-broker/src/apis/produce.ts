import { ErrorCode, InvalidBatchError } from '../protocol/errors.js';
import { parseBatches } from '../protocol/record-batch.js';
import { defineApi, type BrokerState } from './types.js';

interface PartitionData {
  index: number;
  records: Buffer | null;
}
interface Req {
  transactionalId: string | null;
  acks: number;
  timeoutMs: number;
  topics: { name: string; partitions: PartitionData[] }[];
}
interface PartitionResult {
  index: number;
  errorCode: number;
  baseOffset: number;
  logStartOffset: number;
}
interface Res {
  topics: { name: string; partitions: PartitionResult[] }[];
}

/** Produce (key 0) v3-v7: record batch v2 only (v0-v2 carry the legacy message sets); transactional batches too. */
export const produceApi = defineApi<Req, Res>({
  apiKey: 0,
  name: 'Produce',
  minVersion: 3,
  maxVersion: 7,
  decode(r) {
    return {
      transactionalId: r.nullableString(),
      acks: r.int16(),
      timeoutMs: r.int32(),
      topics: r.array((r) => ({
        name: r.string(),
        partitions: r.array((r) => ({ index: r.int32(), records: r.nullableBytes() })),
      })),
    };
  },
  handle(req, ctx) {
    const res: Res = {
      topics: req.topics.map((t) => ({
        name: t.name,
        partitions: t.partitions.map((p) => appendPartition(ctx.broker, t.name, p, req)),
      })),
    };
    return req.acks === 0 ? null : res;
  },
  encode(w, res, version) {
    w.array(res.topics, (w, t) =>
      w.string(t.name).array(t.partitions, (w, p) => {
        w.int32(p.index).int16(p.errorCode).int64(p.baseOffset).int64(-1); // log append time: CreateTime topics
        if (version >= 5) w.int64(p.logStartOffset);
      }),
    );
    w.int32(0);
  },
  errorResponse: (req, errorCode) => ({
    topics: req.topics.map((t) => ({
      name: t.name,
      partitions: t.partitions.map((p) => ({ index: p.index, errorCode, baseOffset: -1, logStartOffset: -1 })),
    })),
  }),
});

function appendPartition(broker: BrokerState, topic: string, p: PartitionData, req: Req): PartitionResult {
  const fail = (errorCode: number): PartitionResult => ({ index: p.index, errorCode, baseOffset: -1, logStartOffset: -1 });
  if (req.acks !== 0 && req.acks !== 1 && req.acks !== -1) return fail(ErrorCode.INVALID_REQUIRED_ACKS);
  const log = broker.topics.partition(topic, p.index);
  if (!log) return fail(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION);
  if (!p.records || p.records.length === 0) return fail(ErrorCode.CORRUPT_MESSAGE);
  let batches: ReturnType<typeof parseBatches>;
  try {
    batches = parseBatches(p.records);
  } catch (err) {
    if (err instanceof InvalidBatchError) return fail(err.errorCode);
    throw err;
  }
  // As Kafka (message.max.bytes): a batch is refused whole, never split or truncated.
  if (batches.some((b) => b.bytes.length > broker.config.maxMessageBytes)) return fail(ErrorCode.MESSAGE_TOO_LARGE);
  // Transactional records only from the producer of their transactional id, to a partition added to its open transaction.
  for (const b of batches) {
    if (b.transactional !== (req.transactionalId !== null)) return fail(ErrorCode.INVALID_RECORD);
    if (req.transactionalId === null) continue;
    const errorCode = broker.transactions.checkProduce(req.transactionalId, Number(b.producerId), b.producerEpoch, topic, p.index);
    if (errorCode !== ErrorCode.NONE) return fail(errorCode);
  }
  // Validate every batch before appending any, so a request either lands whole or not at all.
  const checks = batches.map((b) => broker.producers.check(topic, p.index, b));
  const failed = checks.find((c) => c.kind === 'error');
  if (failed && failed.kind === 'error') return fail(failed.errorCode);
  let baseOffset = -1;
  batches.forEach((batch, i) => {
    const check = checks[i];
    // Copy out of the request frame: the log keeps the batch, not the whole frame.
    const offset = check.kind === 'duplicate' ? check.baseOffset : log.append(Buffer.from(batch.bytes));
    if (check.kind === 'append') broker.producers.recordAppend(topic, p.index, batch, offset);
    if (i === 0) baseOffset = offset;
  });
  log.notify();
  return { index: p.index, errorCode: ErrorCode.NONE, baseOffset, logStartOffset: log.logStartOffset };
}
