import { ErrorCode } from '../protocol/errors.js';
import { TopicError, topicNameProblem } from '../storage/topic-store.js';
import { defineApi, type BrokerState } from './types.js';

interface TopicSpec {
  name: string;
  numPartitions: number;
  replicationFactor: number;
  assignments: number;
}
interface Req {
  topics: TopicSpec[];
  validateOnly: boolean;
}
interface Res {
  topics: { name: string; errorCode: number; errorMessage: string | null }[];
}

/** CreateTopics (key 19) v0-v4. -1 partitions means the broker default (KIP-464). */
export const createTopicsApi = defineApi<Req, Res>({
  apiKey: 19,
  name: 'CreateTopics',
  minVersion: 0,
  maxVersion: 4,
  decode(r, version) {
    const topics = r.array((r) => {
      const name = r.string();
      const numPartitions = r.int32();
      const replicationFactor = r.int16();
      const assignments = r.array((r) => {
        r.int32();
        return r.array((r) => r.int32());
      }).length;
      // configs: accepted, not applied
      r.array((r) => {
        r.string();
        return r.nullableString();
      });
      return { name, numPartitions, replicationFactor, assignments };
    });
    r.int32(); // timeout
    const validateOnly = version >= 1 ? r.bool() : false;
    return { topics, validateOnly };
  },
  handle(req, ctx) {
    return { topics: req.topics.map((t) => ({ name: t.name, ...createOne(ctx.broker, t, req.validateOnly) })) };
  },
  encode(w, res, version) {
    if (version >= 2) w.int32(0);
    w.array(res.topics, (w, t) => {
      w.string(t.name).int16(t.errorCode);
      if (version >= 1) w.nullableString(t.errorMessage);
    });
  },
  errorResponse: (req, errorCode) => ({ topics: req.topics.map((t) => ({ name: t.name, errorCode, errorMessage: 'injected fault' })) }),
});

function createOne(broker: BrokerState, t: TopicSpec, validateOnly: boolean): { errorCode: number; errorMessage: string | null } {
  const fail = (errorCode: number, errorMessage: string) => ({ errorCode, errorMessage });
  if (t.replicationFactor !== -1 && t.replicationFactor !== 1) {
    return fail(ErrorCode.INVALID_REPLICATION_FACTOR, `replication factor ${t.replicationFactor} is larger than the 1 available broker`);
  }
  if (t.assignments > 0) return fail(ErrorCode.INVALID_REQUEST, 'manual replica assignments are not supported by the dev broker');
  const partitions = t.numPartitions === -1 ? broker.config.defaultPartitions : t.numPartitions;
  const problem = topicNameProblem(t.name);
  if (problem) return fail(ErrorCode.INVALID_TOPIC_EXCEPTION, problem);
  if (broker.topics.get(t.name)) return fail(ErrorCode.TOPIC_ALREADY_EXISTS, `topic "${t.name}" already exists`);
  if (partitions < 1) return fail(ErrorCode.INVALID_PARTITIONS, `partition count ${partitions} must be at least 1`);
  if (validateOnly) return { errorCode: ErrorCode.NONE, errorMessage: null };
  try {
    broker.topics.create(t.name, partitions);
    return { errorCode: ErrorCode.NONE, errorMessage: null };
  } catch (err) {
    if (err instanceof TopicError) return fail(err.errorCode, err.message);
    throw err;
  }
}
