import { ErrorCode } from '../protocol/errors.js';
import { defineApi, type BrokerState } from './types.js';

interface Req {
  groupId: string;
  /** null (v2+) = every partition the group has committed */
  topics: { name: string; partitions: number[] }[] | null;
}
interface PartitionResult {
  partition: number;
  offset: number;
  leaderEpoch: number;
  metadata: string | null;
  errorCode: number;
}
interface Res {
  errorCode: number;
  topics: { name: string; partitions: PartitionResult[] }[];
}

/** OffsetFetch (key 9) v1-v5. Partitions without a commit answer offset -1. */
export const offsetFetchApi = defineApi<Req, Res>({
  apiKey: 9,
  name: 'OffsetFetch',
  minVersion: 1,
  maxVersion: 5,
  decode(r) {
    return { groupId: r.string(), topics: r.nullableArray((r) => ({ name: r.string(), partitions: r.array((r) => r.int32()) })) };
  },
  handle: (req, ctx) => ({ errorCode: ErrorCode.NONE, topics: fetchOffsets(ctx.broker, req) }),
  encode(w, res, version) {
    if (version >= 3) w.int32(0);
    w.array(res.topics, (w, t) =>
      w.string(t.name).array(t.partitions, (w, p) => {
        w.int32(p.partition).int64(p.offset);
        if (version >= 5) w.int32(p.leaderEpoch);
        w.nullableString(p.metadata).int16(p.errorCode);
      }),
    );
    if (version >= 2) w.int16(res.errorCode);
  },
  errorResponse: (req, errorCode) => ({
    errorCode,
    topics: (req.topics ?? []).map((t) => ({
      name: t.name,
      partitions: t.partitions.map((partition) => ({ partition, offset: -1, leaderEpoch: -1, metadata: null, errorCode })),
    })),
  }),
});

function fetchOffsets(broker: BrokerState, req: Req): Res['topics'] {
  if (req.topics === null) {
    const byTopic = new Map<string, PartitionResult[]>();
    for (const { topic, partition, value } of broker.offsets.all(req.groupId)) {
      if (!byTopic.has(topic)) byTopic.set(topic, []);
      byTopic
        .get(topic)!
        .push({ partition, offset: value.offset, leaderEpoch: value.leaderEpoch, metadata: value.metadata, errorCode: ErrorCode.NONE });
    }
    return [...byTopic].map(([name, partitions]) => ({ name, partitions }));
  }
  return req.topics.map((t) => ({
    name: t.name,
    partitions: t.partitions.map((partition) => {
      const c = broker.offsets.get(req.groupId, t.name, partition);
      return c
        ? { partition, offset: c.offset, leaderEpoch: c.leaderEpoch, metadata: c.metadata, errorCode: ErrorCode.NONE }
        : { partition, offset: -1, leaderEpoch: -1, metadata: '', errorCode: ErrorCode.NONE };
    }),
  }));
}
