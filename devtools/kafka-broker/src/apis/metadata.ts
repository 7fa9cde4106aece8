import { ErrorCode } from '../protocol/errors.js';
import { TopicError, topicNameProblem } from '../storage/topic-store.js';
import { defineApi, type BrokerConfig, type BrokerState } from './types.js';

interface Req {
  /** null = all topics */
  topics: string[] | null;
  allowAutoTopicCreation: boolean;
}
interface TopicResult {
  errorCode: number;
  name: string;
  partitions: number;
}
interface Res {
  /** The broker's own address is part of every metadata response. */
  broker: BrokerConfig;
  topics: TopicResult[];
}

/**
 * Metadata (key 3) v0-v8. One broker (node 0) leads every partition. Unknown topics are created
 * with the default partition count when the broker allows it and (v4+) the client asks for it.
 */
export const metadataApi = defineApi<Req, Res>({
  apiKey: 3,
  name: 'Metadata',
  minVersion: 0,
  maxVersion: 8,
  decode(r, version) {
    let topics = r.nullableArray((r) => r.string());
    if (version === 0 && topics !== null && topics.length === 0) topics = null; // v0: empty = all
    const allowAutoTopicCreation = version >= 4 ? r.bool() : true;
    if (version >= 8) {
      r.bool(); // include cluster authorized operations
      r.bool(); // include topic authorized operations
    }
    return { topics, allowAutoTopicCreation };
  },
  handle(req, ctx) {
    const { topics } = ctx.broker;
    const names = req.topics ?? topics.names();
    return { broker: ctx.broker.config, topics: names.map((name) => describeTopic(ctx.broker, name, req.allowAutoTopicCreation)) };
  },
  encode(w, res, version) {
    const config = res.broker;
    if (version >= 3) w.int32(0);
    w.array([config], (w, c) => {
      w.int32(c.nodeId).string(c.advertisedHost).int32(c.port);
      if (version >= 1) w.nullableString(null); // rack
    });
    if (version >= 2) w.nullableString(config.clusterId);
    if (version >= 1) w.int32(config.nodeId); // controller
    w.array(res.topics, (w, t) => {
      w.int16(t.errorCode).string(t.name);
      if (version >= 1) w.bool(false); // internal
      w.int32(t.partitions);
      for (let p = 0; p < t.partitions; p++) {
        w.int16(ErrorCode.NONE).int32(p).int32(config.nodeId);
        if (version >= 7) w.int32(0); // leader epoch
        w.int32Array([config.nodeId]).int32Array([config.nodeId]);
        if (version >= 5) w.int32Array([]);
      }
      if (version >= 8) w.int32(-2147483648); // authorized operations: not requested
    });
    if (version >= 8) w.int32(-2147483648);
  },
  errorResponse: (req, errorCode, ctx) => ({
    broker: ctx.broker.config,
    topics: (req.topics ?? ctx.broker.topics.names()).map((name) => ({ errorCode, name, partitions: 0 })),
  }),
});

function describeTopic(broker: BrokerState, name: string, allowAutoCreate: boolean): TopicResult {
  const existing = broker.topics.get(name);
  if (existing) return { errorCode: ErrorCode.NONE, name, partitions: existing.partitions.length };
  if (topicNameProblem(name)) return { errorCode: ErrorCode.INVALID_TOPIC_EXCEPTION, name, partitions: 0 };
  if (!broker.config.autoCreateTopics || !allowAutoCreate) return { errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, name, partitions: 0 };
  try {
    const created = broker.topics.create(name, broker.config.defaultPartitions);
    return { errorCode: ErrorCode.NONE, name, partitions: created.partitions.length };
  } catch (err) {
    if (err instanceof TopicError) return { errorCode: err.errorCode, name, partitions: 0 };
    throw err;
  }
}
