import type { Reader } from '../protocol/reader.js';
import type { Writer } from '../protocol/writer.js';
import type { TopicStore } from '../storage/topic-store.js';
import type { OffsetStore } from '../storage/offset-store.js';
import type { GroupCoordinator } from '../group/coordinator.js';
import type { ProducerRegistry } from '../storage/producers.js';
import type { TransactionCoordinator } from '../transactions/coordinator.js';

export interface BrokerConfig {
  nodeId: number;
  advertisedHost: string;
  port: number;
  clusterId: string;
  autoCreateTopics: boolean;
  defaultPartitions: number;
  /** Kafka's message.max.bytes: the largest record batch a produce may append. */
  maxMessageBytes: number;
}

/** Everything a handler may use: the broker's state, never its sockets. */
export interface BrokerState {
  config: BrokerConfig;
  topics: TopicStore;
  offsets: OffsetStore;
  coordinator: GroupCoordinator;
  producers: ProducerRegistry;
  transactions: TransactionCoordinator;
}

export interface RequestContext {
  broker: BrokerState;
  version: number;
  clientId: string;
  clientHost: string;
  /** Aborted when the connection closes or the broker stops: long polls end early. */
  signal: AbortSignal;
}

/**
 * One Kafka API: request decoder beside response encoder, for the versions listed. `handle` may
 * return null for requests that get no response (Produce with acks=0).
 */
// biome-ignore lint/suspicious/noExplicitAny: the registry holds handlers of every request and response type
export interface ApiHandler<Req = any, Res = any> {
  apiKey: number;
  name: string;
  minVersion: number;
  maxVersion: number;
  /**
   * The first flexible version (KIP-482: compact encodings and tagged fields in the body,
   * request header v2, response header v1 except for ApiVersions); unset when none is served.
   */
  flexibleFrom?: number;
  decode(r: Reader, version: number): Req;
  handle(req: Req, ctx: RequestContext): Res | null | Promise<Res | null>;
  encode(w: Writer, res: Res, version: number): void;
  /** The response that reports errorCode everywhere the request could fail (fault injection). */
  errorResponse(req: Req, errorCode: number, ctx: RequestContext): Res;
}

export function defineApi<Req, Res>(api: ApiHandler<Req, Res>): ApiHandler<Req, Res> {
  return api;
}
