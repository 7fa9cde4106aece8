import { createServer, type Server, type Socket } from 'node:net';
import { mkdirSync } from 'node:fs';
import { deleteTopic } from './apis/delete-topics.js';
import { API_BY_KEY } from './apis/registry.js';
import type { BrokerState } from './apis/types.js';
import { GroupCoordinator } from './group/coordinator.js';
import { encodeBatch, type RecordInput } from './protocol/record-batch.js';
import { Connection } from './server/connection.js';
import { FaultState, type Faults } from './server/faults.js';
import { OffsetStore } from './storage/offset-store.js';
import { ProducerRegistry } from './storage/producers.js';
import { TopicError, TopicStore } from './storage/topic-store.js';
import type { PartitionLog } from './storage/partition-log.js';
import { TransactionCoordinator } from './transactions/coordinator.js';

export interface DevBrokerOptions {
  /** TCP port; 0 (default) picks a free one. */
  port?: number;
  /** Interface to listen on (default 127.0.0.1). */
  host?: string;
  /** Host name clients are told to connect to (default: host, or 127.0.0.1 for a wildcard host). */
  advertisedHost?: string;
  /** Persist topics, records and committed offsets here; memory only when absent. */
  dataDir?: string;
  /** Partitions of auto-created topics and of CreateTopics with -1 (default 1). */
  defaultPartitions?: number;
  /** Create unknown topics on Metadata requests (default true, as Kafka). */
  autoCreateTopics?: boolean;
  /** Kafka's group.initial.rebalance.delay.ms (default 0: tests want fast groups). */
  initialRebalanceDelayMs?: number;
  /** Accepted session timeouts (defaults 6 s .. 30 min, as Kafka's group.min/max.session.timeout.ms). */
  minSessionTimeoutMs?: number;
  maxSessionTimeoutMs?: number;
  /** Largest record batch a produce may append (default 1048588, Kafka's message.max.bytes); larger ones get MESSAGE_TOO_LARGE. */
  maxMessageBytes?: number;
  /** Frames above this size close the connection (default 100 MiB, as socket.request.max.bytes). */
  maxFrameBytes?: number;
  /** Where unexpected internal errors are reported (default: stderr). */
  onError?: (message: string) => void;
}

export interface AppendResult {
  baseOffset: number;
  lastOffset: number;
}

export interface DevBroker {
  readonly host: string;
  readonly port: number;
  /** "host:port", ready for a client's broker list. */
  readonly address: string;
  stop(): Promise<void>;
  createTopic(name: string, partitions?: number): void;
  deleteTopic(name: string): void;
  topicNames(): string[];
  /** Appends records as one batch; timestamps default to now. */
  append(topic: string, partition: number, records: readonly RecordInput[]): AppendResult;
  /**
   * Log compaction of the records below `before` (default: all): a keyed record superseded by a
   * later one with the same key is removed, leaving an offset gap. Returns how many were removed.
   */
  compact(topic: string, partition: number, before?: number): number;
  /** Retention: records below offset become unreadable and the log start offset moves to it. */
  deleteRecordsBefore(topic: string, partition: number, offset: number): void;
  highWatermark(topic: string, partition: number): number;
  logStartOffset(topic: string, partition: number): number;
  /** The group's committed offset, or null when it has none. */
  committedOffset(groupId: string, topic: string, partition: number): number | null;
  readonly faults: Faults;
}

export class DevBrokerError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DevBrokerError';
  }
}

/** Opens (and with a data directory, loads) the stores; a bad directory is one clear error. */
function openStorage(dataDir: string | null): { topics: TopicStore; offsets: OffsetStore } {
  try {
    if (dataDir) mkdirSync(dataDir, { recursive: true });
    return { topics: new TopicStore(dataDir), offsets: new OffsetStore(dataDir) };
  } catch (err) {
    throw new DevBrokerError(`cannot use data directory ${dataDir}: ${(err as Error).message}`);
  }
}

const WILDCARD_HOSTS = new Set(['0.0.0.0', '::', '']);

export async function startDevBroker(options: DevBrokerOptions = {}): Promise<DevBroker> {
  const host = options.host ?? '127.0.0.1';
  const defaultPartitions = options.defaultPartitions ?? 1;
  if (!Number.isInteger(defaultPartitions) || defaultPartitions < 1) {
    throw new DevBrokerError(`defaultPartitions must be a positive integer, got ${defaultPartitions}`);
  }
  const onError = options.onError ?? ((message: string) => process.stderr.write(`dev-broker: ${message}\n`));
  const { topics, offsets } = openStorage(options.dataDir ?? null);
  const producers = new ProducerRegistry();
  const state: BrokerState = {
    config: {
      nodeId: 0,
      advertisedHost: options.advertisedHost ?? (WILDCARD_HOSTS.has(host) ? '127.0.0.1' : host),
      port: 0,
      clusterId: 'sluice-dev-broker',
      autoCreateTopics: options.autoCreateTopics ?? true,
      defaultPartitions,
      maxMessageBytes: options.maxMessageBytes ?? 1_048_588,
    },
    topics,
    offsets,
    coordinator: new GroupCoordinator({
      initialRebalanceDelayMs: options.initialRebalanceDelayMs ?? 0,
      minSessionTimeoutMs: options.minSessionTimeoutMs ?? 6_000,
      maxSessionTimeoutMs: options.maxSessionTimeoutMs ?? 1_800_000,
    }),
    producers,
    transactions: new TransactionCoordinator(topics, offsets, producers),
  };
  const faultState = new FaultState();
  const connections = new Set<Connection>();
  const connectionHost = { state, faults: faultState, maxFrameBytes: options.maxFrameBytes ?? 100 * 1024 * 1024, onError };

  const server: Server = createServer((socket: Socket) => {
    const conn = new Connection(socket, connectionHost);
    connections.add(conn);
    socket.on('close', () => connections.delete(conn));
  });
  server.on('error', (err) => onError(`listener: ${err.message}`));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  state.config.port = port;

  const log = (topic: string, partition: number): PartitionLog => {
    const l = topics.partition(topic, partition);
    if (!l) throw new DevBrokerError(`unknown topic partition ${topic}/${partition}`);
    return l;
  };
  const wrap = <T>(fn: () => T): T => {
    try {
      return fn();
    } catch (err) {
      if (err instanceof TopicError) throw new DevBrokerError(err.message);
      throw err;
    }
  };
  let stopped: Promise<void> | null = null;

  return {
    host: state.config.advertisedHost,
    port,
    address: `${state.config.advertisedHost}:${port}`,
    stop() {
      stopped ??= (async () => {
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        for (const c of connections) c.close();
        state.coordinator.close();
        state.transactions.close();
        topics.close();
        await closed;
      })();
      return stopped;
    },
    createTopic: (name, partitions = defaultPartitions) => void wrap(() => topics.create(name, partitions)),
    deleteTopic(name) {
      if (!topics.get(name)) throw new DevBrokerError(`topic "${name}" does not exist`);
      deleteTopic(state, name);
    },
    topicNames: () => topics.names(),
    append(topic, partition, records) {
      const l = log(topic, partition);
      if (records.length === 0) throw new DevBrokerError(`append to ${topic}/${partition}: no records given`);
      const baseOffset = l.append(encodeBatch(records));
      l.notify();
      return { baseOffset, lastOffset: baseOffset + records.length - 1 };
    },
    compact(topic, partition, before) {
      const l = log(topic, partition);
      return l.compact(before ?? l.highWatermark);
    },
    deleteRecordsBefore(topic, partition, offset) {
      const l = log(topic, partition);
      if (!Number.isInteger(offset) || offset < 0 || offset > l.highWatermark) {
        throw new DevBrokerError(`deleteRecordsBefore ${topic}/${partition}: offset ${offset} is outside 0..${l.highWatermark}`);
      }
      l.deleteBefore(offset);
    },
    highWatermark: (topic, partition) => log(topic, partition).highWatermark,
    logStartOffset: (topic, partition) => log(topic, partition).logStartOffset,
    committedOffset: (groupId, topic, partition) => state.offsets.get(groupId, topic, partition)?.offset ?? null,
    faults: {
      dropAllConnections: () => {
        for (const c of connections) c.close();
      },
      setResponseDelay: (ms) => {
        if (!Number.isFinite(ms) || ms < 0) throw new DevBrokerError(`response delay must be >= 0 ms, got ${ms}`);
        faultState.responseDelayMs = ms;
      },
      failNext: (apiKey, count, errorCode) => {
        if (!API_BY_KEY.has(apiKey)) throw new DevBrokerError(`failNext: API key ${apiKey} is not implemented by the dev broker`);
        if (!Number.isInteger(count) || count < 0) throw new DevBrokerError(`failNext: count must be a non-negative integer, got ${count}`);
        if (!Number.isInteger(errorCode) || errorCode < -1 || errorCode > 32767)
          throw new DevBrokerError(`failNext: ${errorCode} is not a Kafka error code`);
        faultState.failNext(apiKey, count, errorCode);
      },
      clear: () => faultState.clear(),
    },
  };
}
