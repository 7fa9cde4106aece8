import { ErrorCode } from '../protocol/errors.js';
import { defineApi, type BrokerState } from './types.js';

interface PartitionCommit {
  partition: number;
  offset: number;
  leaderEpoch: number;
  metadata: string | null;
}
interface Req {
  groupId: string;
  generationId: number;
  memberId: string;
  topics: { name: string; partitions: PartitionCommit[] }[];
}
interface Res {
  topics: { name: string; partitions: { partition: number; errorCode: number }[] }[];
}

/**
 * OffsetCommit (key 8) v0-v7. Members must hold the current generation of a stable group;
 * generation -1 without a member id is a standalone commit, accepted while the group is empty.
 */
export const offsetCommitApi = defineApi<Req, Res>({
  apiKey: 8,
  name: 'OffsetCommit',
  minVersion: 0,
  maxVersion: 7,
  decode(r, version) {
    const groupId = r.string();
    const generationId = version >= 1 ? r.int32() : -1;
    const memberId = version >= 1 ? r.string() : '';
    if (version >= 7) r.nullableString(); // group instance id
    if (version >= 2 && version <= 4) r.int64(); // retention time: offsets are kept forever here
    const topics = r.array((r) => ({
      name: r.string(),
      partitions: r.array((r) => {
        const partition = r.int32();
        const offset = r.int64();
        const leaderEpoch = version >= 6 ? r.int32() : -1;
        if (version === 1) r.int64(); // commit timestamp
        return { partition, offset, leaderEpoch, metadata: r.nullableString() };
      }),
    }));
    return { groupId, generationId, memberId, topics };
  },
  handle(req, ctx) {
    const groupError = req.groupId ? ctx.broker.coordinator.validateCommit(req) : ErrorCode.INVALID_GROUP_ID;
    return commit(ctx.broker, req, groupError);
  },
  encode(w, res, version) {
    if (version >= 3) w.int32(0);
    w.array(res.topics, (w, t) => w.string(t.name).array(t.partitions, (w, p) => w.int32(p.partition).int16(p.errorCode)));
  },
  errorResponse: (req, errorCode) => ({
    topics: req.topics.map((t) => ({ name: t.name, partitions: t.partitions.map((p) => ({ partition: p.partition, errorCode })) })),
  }),
});

function commit(broker: BrokerState, req: Req, groupError: number): Res {
  const accepted: Parameters<BrokerState['offsets']['commit']>[1] = [];
  const res: Res = {
    topics: req.topics.map((t) => ({
      name: t.name,
      partitions: t.partitions.map((p) => {
        let errorCode = groupError;
        if (errorCode === ErrorCode.NONE && !broker.topics.partition(t.name, p.partition)) errorCode = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION;
        if (errorCode === ErrorCode.NONE) {
          accepted.push({
            topic: t.name,
            partition: p.partition,
            value: { offset: p.offset, leaderEpoch: p.leaderEpoch, metadata: p.metadata },
          });
        }
        return { partition: p.partition, errorCode };
      }),
    })),
  };
  broker.offsets.commit(req.groupId, accepted);
  return res;
}
