import { ErrorCode, MalformedRequestError } from '../protocol/errors.js';
import type { Reader } from '../protocol/reader.js';
import type { Writer } from '../protocol/writer.js';
import { TopicError, topicNameProblem } from '../storage/topic-store.js';
import { defineApi, type BrokerConfig, type BrokerState } from './types.js';

/** A topic asked for: by name, or (v12+, name null) by its id. */
interface TopicRequest {
  name: string | null;
  id: Buffer | null;
}
interface Req {
  /** null = all topics */
  topics: TopicRequest[] | null;
  allowAutoTopicCreation: boolean;
}
interface TopicResult {
  errorCode: number;
  name: string | null;
  /** The topic's id; zero for a topic that does not exist. */
  id: Buffer;
  partitions: number;
}

const ZERO_ID = Buffer.alloc(16);
const NO_OPERATIONS = -2147483648;
interface Res {
  /** The broker's own address is part of every metadata response. */
  broker: BrokerConfig;
  topics: TopicResult[];
}

/**
 * Metadata (key 3) v0-v12; v9+ are flexible, v10+ carry topic ids (which a topic deleted and
 * recreated under its name is told apart by), v12 may ask for a topic by id alone. One broker
 * (node 0) leads every partition. Unknown topics are created with the default partition count
 * when the broker allows it and (v4+) the client asks for it.
 */
export const metadataApi = defineApi<Req, Res>({
  apiKey: 3,
  name: 'Metadata',
  minVersion: 0,
  maxVersion: 12,
  flexibleFrom: 9,
  decode(r, version) {
    if (version >= 9) return decodeFlexible(r, version);
    let names = r.nullableArray((r) => r.string());
    if (version === 0 && names !== null && names.length === 0) names = null; // v0: empty = all
    const allowAutoTopicCreation = version >= 4 ? r.bool() : true;
    if (version >= 8) {
      r.bool(); // include cluster authorized operations
      r.bool(); // include topic authorized operations
    }
    return { topics: names?.map((name) => ({ name, id: null })) ?? null, allowAutoTopicCreation };
  },
  handle(req, ctx) {
    const { topics } = ctx.broker;
    const asked = req.topics ?? topics.names().map((name) => ({ name, id: null }));
    return { broker: ctx.broker.config, topics: asked.map((t) => describeTopic(ctx.broker, t, req.allowAutoTopicCreation)) };
  },
  encode(w, res, version) {
    if (version >= 9) return encodeFlexible(w, res, version);
    const config = res.broker;
    if (version >= 3) w.int32(0);
    w.array([config], (w, c) => {
      w.int32(c.nodeId).string(c.advertisedHost).int32(c.port);
      if (version >= 1) w.nullableString(null); // rack
    });
    if (version >= 2) w.nullableString(config.clusterId);
    if (version >= 1) w.int32(config.nodeId); // controller
    w.array(res.topics, (w, t) => {
      w.int16(t.errorCode).string(t.name ?? '');
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
    topics: (req.topics ?? ctx.broker.topics.names().map((name) => ({ name, id: null }))).map((t) => ({
      errorCode,
      name: t.name,
      id: t.id ?? ZERO_ID,
      partitions: 0,
    })),
  }),
});

function decodeFlexible(r: Reader, version: number): Req {
  const topics = r.compactNullableArray((r) => {
    const id = version >= 10 ? Buffer.from(r.uuid()) : null;
    const name = r.compactNullableString();
    r.skipTaggedFields();
    if (name === null && (version < 12 || !id)) throw new MalformedRequestError('a Metadata topic needs a name', r.offset);
    return { name, id: id?.equals(ZERO_ID) ? null : id };
  });
  const allowAutoTopicCreation = r.bool();
  if (version <= 10) r.bool(); // include cluster authorized operations
  r.bool(); // include topic authorized operations
  r.skipTaggedFields();
  return { topics, allowAutoTopicCreation };
}

function encodeFlexible(w: Writer, res: Res, version: number): void {
  const config = res.broker;
  w.int32(0); // throttle time
  w.compactArray([config], (w, c) => {
    w.int32(c.nodeId).compactNullableString(c.advertisedHost).int32(c.port);
    w.compactNullableString(null).emptyTaggedFields(); // rack
  });
  w.compactNullableString(config.clusterId);
  w.int32(config.nodeId); // controller
  w.compactArray(res.topics, (w, t) => {
    w.int16(t.errorCode).compactNullableString(t.name);
    if (version >= 10) w.raw(t.id);
    w.bool(false); // internal
    w.compactArray(
      Array.from({ length: t.partitions }, (_, p) => p),
      (w, p) => {
        w.int16(ErrorCode.NONE).int32(p).int32(config.nodeId).int32(0); // leader, leader epoch
        w.compactInt32Array([config.nodeId]).compactInt32Array([config.nodeId]).compactInt32Array([]).emptyTaggedFields();
      },
    );
    w.int32(NO_OPERATIONS).emptyTaggedFields();
  });
  if (version <= 10) w.int32(NO_OPERATIONS); // cluster authorized operations
  w.emptyTaggedFields();
}

function describeTopic(broker: BrokerState, asked: TopicRequest, allowAutoCreate: boolean): TopicResult {
  const none = (errorCode: number, name = asked.name): TopicResult => ({ errorCode, name, id: ZERO_ID, partitions: 0 });
  if (asked.name === null) {
    // v12: by id alone.
    const byId = broker.topics
      .names()
      .map((n) => broker.topics.get(n)!)
      .find((t) => asked.id?.equals(t.id));
    return byId
      ? { errorCode: ErrorCode.NONE, name: byId.name, id: byId.id, partitions: byId.partitions.length }
      : none(ErrorCode.UNKNOWN_TOPIC_ID, null);
  }
  const name = asked.name;
  const existing = broker.topics.get(name);
  if (existing) return { errorCode: ErrorCode.NONE, name, id: existing.id, partitions: existing.partitions.length };
  if (topicNameProblem(name)) return none(ErrorCode.INVALID_TOPIC_EXCEPTION);
  if (!broker.config.autoCreateTopics || !allowAutoCreate) return none(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION);
  try {
    const created = broker.topics.create(name, broker.config.defaultPartitions);
    return { errorCode: ErrorCode.NONE, name, id: created.id, partitions: created.partitions.length };
  } catch (err) {
    if (err instanceof TopicError) return none(err.errorCode);
    throw err;
  }
}
