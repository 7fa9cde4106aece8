import { ErrorCode } from '../protocol/errors.js';
import { defineApi, type BrokerState } from './types.js';

interface Req {
  names: string[];
}
interface Res {
  topics: { name: string; errorCode: number }[];
}

/** DeleteTopics (key 20) v0-v3: removes the topic's records, files and committed offsets. */
export const deleteTopicsApi = defineApi<Req, Res>({
  apiKey: 20,
  name: 'DeleteTopics',
  minVersion: 0,
  maxVersion: 3,
  decode(r) {
    const names = r.array((r) => r.string());
    r.int32(); // timeout
    return { names };
  },
  handle(req, ctx) {
    return { topics: req.names.map((name) => ({ name, errorCode: deleteTopic(ctx.broker, name) })) };
  },
  encode(w, res, version) {
    if (version >= 1) w.int32(0);
    w.array(res.topics, (w, t) => w.string(t.name).int16(t.errorCode));
  },
  errorResponse: (req, errorCode) => ({ topics: req.names.map((name) => ({ name, errorCode })) }),
});

export function deleteTopic(broker: BrokerState, name: string): number {
  if (!broker.topics.get(name)) return ErrorCode.UNKNOWN_TOPIC_OR_PARTITION;
  broker.topics.delete(name);
  broker.offsets.deleteTopic(name);
  broker.producers.forgetTopic(name);
  return ErrorCode.NONE;
}
