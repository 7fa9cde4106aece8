import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ErrorCode } from '../protocol/errors.js';
import { PartitionLog } from './partition-log.js';

export interface Topic {
  name: string;
  /**
   * 16 random bytes given at creation, as Kafka's topic ids (Metadata v10+): a topic deleted and
   * recreated under the same name is told apart by it.
   */
  id: Buffer;
  partitions: PartitionLog[];
}

/** A new topic id; as Kafka's Uuid.randomUuid, never zero and never printed with a leading "-". */
export function newTopicId(): Buffer {
  for (;;) {
    const id = randomBytes(16);
    if (!id.every((b) => b === 0) && !id.toString('base64url').startsWith('-')) return id;
  }
}

const TOPIC_NAME = /^[a-zA-Z0-9._-]{1,249}$/;

/** Why a topic name is unacceptable to Kafka, or null if it is fine. */
export function topicNameProblem(name: string): string | null {
  if (name === '.' || name === '..') return `topic name "${name}" is reserved`;
  if (!TOPIC_NAME.test(name)) return `topic name "${name}" must be 1-249 characters of [a-zA-Z0-9._-]`;
  return null;
}

/** topic.json: the partition count and the topic id (base64url; a topic written before ids gets one, written back). */
function readTopicMeta(metaPath: string): { partitions: number; id: Buffer } {
  let meta: unknown;
  try {
    meta = JSON.parse(readFileSync(metaPath, 'utf8'));
  } catch (err) {
    throw new Error(`${metaPath}: ${(err as Error).message}`);
  }
  const { partitions, id } = (meta ?? {}) as { partitions?: unknown; id?: unknown };
  if (!Number.isInteger(partitions) || (partitions as number) < 1) throw new Error(`${metaPath}: "partitions" must be a positive integer`);
  const stored = typeof id === 'string' ? Buffer.from(id, 'base64url') : null;
  if (stored?.length === 16) return { partitions: partitions as number, id: stored };
  const given = newTopicId();
  writeFileSync(metaPath, JSON.stringify({ partitions, id: given.toString('base64url') }));
  return { partitions: partitions as number, id: given };
}

export class TopicError extends Error {
  constructor(
    message: string,
    readonly errorCode: number,
  ) {
    super(message);
    this.name = 'TopicError';
  }
}

/**
 * All topics of the broker. With a data directory each topic is a folder holding topic.json and
 * one append-only segment file per partition (the concatenated batches, exactly as fetched).
 */
export class TopicStore {
  private readonly topics = new Map<string, Topic>();
  private readonly root: string | null;

  constructor(dataDir: string | null) {
    this.root = dataDir ? join(dataDir, 'topics') : null;
    if (this.root) {
      mkdirSync(this.root, { recursive: true });
      this.loadAll();
    }
  }

  private loadAll(): void {
    for (const name of readdirSync(this.root!)) {
      const dir = join(this.root!, name);
      const metaPath = join(dir, 'topic.json');
      if (!existsSync(metaPath)) continue; // a half-created topic: ignore
      const { partitions, id } = readTopicMeta(metaPath);
      const logs: PartitionLog[] = [];
      for (let p = 0; p < partitions; p++) {
        const path = join(dir, `${p}.log`);
        const log = new PartitionLog(name, p, { path });
        const data = existsSync(path) ? readFileSync(path) : Buffer.alloc(0);
        const startPath = `${path}.start`;
        const start = existsSync(startPath) ? Number(readFileSync(startPath, 'utf8')) : 0;
        const valid = log.load(data, start);
        if (valid < data.length) truncateSync(path, valid); // drop a torn write from a crash
        log.abortOrphanedTransactions();
        logs.push(log);
      }
      this.topics.set(name, { name, id, partitions: logs });
    }
  }

  get(name: string): Topic | undefined {
    return this.topics.get(name);
  }

  partition(topic: string, partition: number): PartitionLog | undefined {
    return this.topics.get(topic)?.partitions[partition];
  }

  names(): string[] {
    return [...this.topics.keys()];
  }

  create(name: string, partitions: number): Topic {
    const problem = topicNameProblem(name);
    if (problem) throw new TopicError(problem, ErrorCode.INVALID_TOPIC_EXCEPTION);
    if (this.topics.has(name)) throw new TopicError(`topic "${name}" already exists`, ErrorCode.TOPIC_ALREADY_EXISTS);
    if (!Number.isInteger(partitions) || partitions < 1 || partitions > 10_000) {
      throw new TopicError(`topic "${name}": partition count ${partitions} must be between 1 and 10000`, ErrorCode.INVALID_PARTITIONS);
    }
    let dir: string | null = null;
    if (this.root) {
      dir = join(this.root, name);
      mkdirSync(dir, { recursive: true });
    }
    const logs = Array.from({ length: partitions }, (_, p) => new PartitionLog(name, p, dir ? { path: join(dir, `${p}.log`) } : null));
    const id = newTopicId();
    // topic.json last: its presence marks the topic as complete.
    if (dir) writeFileSync(join(dir, 'topic.json'), JSON.stringify({ partitions, id: id.toString('base64url') }));
    const topic = { name, id, partitions: logs };
    this.topics.set(name, topic);
    return topic;
  }

  delete(name: string): void {
    const topic = this.topics.get(name);
    if (!topic) throw new TopicError(`topic "${name}" does not exist`, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION);
    this.topics.delete(name);
    for (const log of topic.partitions) log.close();
    if (this.root) rmSync(join(this.root, name), { recursive: true, force: true });
  }

  close(): void {
    for (const topic of this.topics.values()) for (const log of topic.partitions) log.close();
  }
}
