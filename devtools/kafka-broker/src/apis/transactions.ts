/**
 * The transactional producer's APIs, v0-v1 (what kafkajs speaks): AddPartitionsToTxn (24),
 * AddOffsetsToTxn (25), EndTxn (26) and TxnOffsetCommit (28). The state lives in the
 * TransactionCoordinator; these only decode, delegate and encode.
 */
import { defineApi } from './types.js';

interface ProducerRef {
  transactionalId: string;
  producerId: number;
  producerEpoch: number;
}

interface AddPartitionsReq extends ProducerRef {
  topics: { name: string; partitions: number[] }[];
}
interface TopicErrors {
  topics: { name: string; partitions: { partition: number; errorCode: number }[] }[];
}

const readProducer = (r: import('../protocol/reader.js').Reader): ProducerRef => ({
  transactionalId: r.string(),
  producerId: r.int64(),
  producerEpoch: r.int16(),
});

const encodeTopicErrors = (w: import('../protocol/writer.js').Writer, res: TopicErrors) => {
  w.int32(0); // throttle
  w.array(res.topics, (w, t) => w.string(t.name).array(t.partitions, (w, p) => w.int32(p.partition).int16(p.errorCode)));
};

export const addPartitionsToTxnApi = defineApi<AddPartitionsReq, TopicErrors>({
  apiKey: 24,
  name: 'AddPartitionsToTxn',
  minVersion: 0,
  maxVersion: 1,
  decode(r) {
    const producer = readProducer(r);
    return { ...producer, topics: r.array((r) => ({ name: r.string(), partitions: r.array((r) => r.int32()) })) };
  },
  handle(req, ctx) {
    return {
      topics: req.topics.map((t) => {
        const errors = ctx.broker.transactions.addPartitions(req.transactionalId, req.producerId, req.producerEpoch, t.name, t.partitions);
        return { name: t.name, partitions: t.partitions.map((partition) => ({ partition, errorCode: errors.get(partition)! })) };
      }),
    };
  },
  encode: encodeTopicErrors,
  errorResponse: (req, errorCode) => ({
    topics: req.topics.map((t) => ({ name: t.name, partitions: t.partitions.map((partition) => ({ partition, errorCode })) })),
  }),
});

interface AddOffsetsReq extends ProducerRef {
  groupId: string;
}
interface ErrorOnly {
  errorCode: number;
}

export const addOffsetsToTxnApi = defineApi<AddOffsetsReq, ErrorOnly>({
  apiKey: 25,
  name: 'AddOffsetsToTxn',
  minVersion: 0,
  maxVersion: 1,
  decode(r) {
    return { ...readProducer(r), groupId: r.string() };
  },
  handle(req, ctx) {
    return { errorCode: ctx.broker.transactions.addOffsets(req.transactionalId, req.producerId, req.producerEpoch, req.groupId) };
  },
  encode(w, res) {
    w.int32(0).int16(res.errorCode);
  },
  errorResponse: (_req, errorCode) => ({ errorCode }),
});

interface EndTxnReq extends ProducerRef {
  committed: boolean;
}

export const endTxnApi = defineApi<EndTxnReq, ErrorOnly>({
  apiKey: 26,
  name: 'EndTxn',
  minVersion: 0,
  maxVersion: 1,
  decode(r) {
    return { ...readProducer(r), committed: r.bool() };
  },
  handle(req, ctx) {
    return { errorCode: ctx.broker.transactions.endTxn(req.transactionalId, req.producerId, req.producerEpoch, req.committed) };
  },
  encode(w, res) {
    w.int32(0).int16(res.errorCode);
  },
  errorResponse: (_req, errorCode) => ({ errorCode }),
});

interface TxnOffsetCommitReq extends ProducerRef {
  groupId: string;
  topics: { name: string; partitions: { partition: number; offset: number; metadata: string | null }[] }[];
}

export const txnOffsetCommitApi = defineApi<TxnOffsetCommitReq, TopicErrors>({
  apiKey: 28,
  name: 'TxnOffsetCommit',
  minVersion: 0,
  maxVersion: 1,
  decode(r) {
    const transactionalId = r.string();
    const groupId = r.string();
    const producerId = r.int64();
    const producerEpoch = r.int16();
    const topics = r.array((r) => ({
      name: r.string(),
      partitions: r.array((r) => ({ partition: r.int32(), offset: r.int64(), metadata: r.nullableString() })),
    }));
    return { transactionalId, groupId, producerId, producerEpoch, topics };
  },
  handle(req, ctx) {
    const offsets = req.topics.flatMap((t) =>
      t.partitions.map((p) => ({
        topic: t.name,
        partition: p.partition,
        value: { offset: p.offset, leaderEpoch: -1, metadata: p.metadata },
      })),
    );
    const errorCode = ctx.broker.transactions.commitOffsets(req.transactionalId, req.producerId, req.producerEpoch, req.groupId, offsets);
    return {
      topics: req.topics.map((t) => ({ name: t.name, partitions: t.partitions.map((p) => ({ partition: p.partition, errorCode })) })),
    };
  },
  encode: encodeTopicErrors,
  errorResponse: (req, errorCode) => ({
    topics: req.topics.map((t) => ({ name: t.name, partitions: t.partitions.map((p) => ({ partition: p.partition, errorCode })) })),
  }),
});
