/**
 * The id Kafka gave a topic when it was created, for topic-identity.ts. kafkajs speaks Metadata
 * only up to v6, and topic ids arrive with v10, so this sends the one request itself over a
 * short connection: ApiVersions v0 says which Metadata versions the broker speaks, then one
 * Metadata request (v10-v12, the flexible encoding) for the topic. A broker that speaks no
 * v10 gives no ids: the answer is null and the job is judged by its offsets alone.
 */
import { BrokerConnection } from './kafka/broker-connection.js';
import { ResponseReader } from './kafka/response-reader.js';

const API_VERSIONS = 18;
const METADATA = 3;
const CLIENT_ID = 'sluice-ingestion';
/** Metadata versions with topic ids whose request and response this module encodes. */
const MIN_METADATA = 10;
const MAX_METADATA = 12;

/**
 * The topic's id as Kafka prints it (`kafka-topics --describe`: URL-safe base64 of the 16
 * bytes), or null when the broker gives no ids or does not know the topic. Tries the brokers
 * in order; throws when none answers within timeoutMs.
 */
export async function fetchTopicId(brokers: readonly string[], topic: string, timeoutMs = 5_000): Promise<string | null> {
  let last: unknown = new Error('no brokers');
  for (const broker of brokers) {
    try {
      return await askBroker(broker, topic, timeoutMs);
    } catch (err) {
      last = err;
    }
  }
  throw last;
}

async function askBroker(broker: string, topic: string, timeoutMs: number): Promise<string | null> {
  const at = broker.lastIndexOf(':');
  const conn = await BrokerConnection.connect(broker.slice(0, at), Number(broker.slice(at + 1)), {
    clientId: CLIENT_ID,
    connectTimeoutMs: timeoutMs,
  });
  try {
    const versions = new ResponseReader(await conn.request(API_VERSIONS, 0, Buffer.alloc(0), { timeoutMs }), 'ApiVersions response');
    if (versions.int16() !== 0) return null;
    let max = -1;
    for (let n = versions.int32(); n > 0; n--) {
      const [key, , top] = [versions.int16(), versions.int16(), versions.int16()];
      if (key === METADATA) max = top;
    }
    if (max < MIN_METADATA) return null;
    const version = Math.min(max, MAX_METADATA);
    return topicIdOf(
      new ResponseReader(
        await conn.request(METADATA, version, metadataBody(topic, version), { flexible: true, timeoutMs }),
        'Metadata response',
      ),
    );
  } finally {
    conn.close();
  }
}

/** Metadata v10-v12 for one topic by name; no auto-creation, no authorized operations. */
function metadataBody(topic: string, version: number): Buffer {
  const name = Buffer.from(topic);
  return Buffer.concat([
    Buffer.from([2]), // topics: compact array of 1
    Buffer.alloc(16), // topic id: zero, the name says which
    uvarint(name.length + 1),
    name,
    Buffer.from([0]), // the topic's tagged fields
    Buffer.from([0]), // allow_auto_topic_creation
    ...(version === 10 ? [Buffer.from([0])] : []), // include_cluster_authorized_operations (v8-v10)
    Buffer.from([0]), // include_topic_authorized_operations
    Buffer.from([0]), // tagged fields
  ]);
}

/** The first topic's id in a Metadata v10-v12 response; null when it has an error (unknown topic). */
function topicIdOf(r: ResponseReader): string | null {
  r.taggedFields(); // response header v1
  r.int32(); // throttle time
  for (let n = r.compactLength(); n > 0; n--) {
    r.int32(); // node id
    r.compactBytes(); // host
    r.int32(); // port
    r.compactBytes(); // rack
    r.taggedFields();
  }
  r.compactBytes(); // cluster id
  r.int32(); // controller id
  if (r.compactLength() < 1) return null;
  const error = r.int16();
  r.compactBytes(); // name (nullable from v12)
  const id = r.bytes(16);
  if (error !== 0 || id.every((b) => b === 0)) return null;
  return id.toString('base64url');
}

function uvarint(n: number): Buffer {
  const out: number[] = [];
  while (n >= 0x80) {
    out.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  out.push(n);
  return Buffer.from(out);
}
