import { appendFileSync, existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface CommittedOffset {
  offset: number;
  leaderEpoch: number;
  metadata: string | null;
}

interface LogLine {
  g: string;
  t: string;
  p: number;
  o: number;
  e?: number;
  m?: string | null;
}

/**
 * Committed consumer-group offsets: group → "topic\0partition" → offset. With a data directory
 * every commit is appended as a JSON line to group-offsets.log; startup replays it and rewrites it
 * compacted (last value per key).
 */
export class OffsetStore {
  private readonly groups = new Map<string, Map<string, CommittedOffset>>();
  private readonly path: string | null;

  constructor(dataDir: string | null) {
    this.path = dataDir ? join(dataDir, 'group-offsets.log') : null;
    if (this.path && existsSync(this.path)) {
      for (const line of readFileSync(this.path, 'utf8').split('\n')) {
        if (!line) continue;
        let entry: LogLine;
        try {
          entry = JSON.parse(line) as LogLine;
        } catch {
          continue; // torn last line after a crash
        }
        this.put(entry.g, entry.t, entry.p, { offset: entry.o, leaderEpoch: entry.e ?? -1, metadata: entry.m ?? null });
      }
      this.rewrite();
    }
  }

  private put(group: string, topic: string, partition: number, value: CommittedOffset): void {
    let offsets = this.groups.get(group);
    if (!offsets) this.groups.set(group, (offsets = new Map()));
    offsets.set(`${topic}\0${partition}`, value);
  }

  commit(group: string, entries: { topic: string; partition: number; value: CommittedOffset }[]): void {
    let lines = '';
    for (const { topic, partition, value } of entries) {
      this.put(group, topic, partition, value);
      if (this.path)
        lines +=
          JSON.stringify({ g: group, t: topic, p: partition, o: value.offset, e: value.leaderEpoch, m: value.metadata } satisfies LogLine) +
          '\n';
    }
    if (this.path && lines) appendFileSync(this.path, lines);
  }

  get(group: string, topic: string, partition: number): CommittedOffset | undefined {
    return this.groups.get(group)?.get(`${topic}\0${partition}`);
  }

  /** Every committed (topic, partition) of a group, for OffsetFetch with all topics. */
  all(group: string): { topic: string; partition: number; value: CommittedOffset }[] {
    const out: { topic: string; partition: number; value: CommittedOffset }[] = [];
    for (const [key, value] of this.groups.get(group) ?? []) {
      const sep = key.indexOf('\0');
      out.push({ topic: key.slice(0, sep), partition: Number(key.slice(sep + 1)), value });
    }
    return out;
  }

  groupIds(): string[] {
    return [...this.groups.keys()];
  }

  hasGroup(group: string): boolean {
    return (this.groups.get(group)?.size ?? 0) > 0;
  }

  /** Kafka drops offsets of deleted topics; so do we. */
  deleteTopic(topic: string): void {
    let changed = false;
    for (const offsets of this.groups.values()) {
      for (const key of offsets.keys()) {
        if (key.startsWith(`${topic}\0`)) {
          offsets.delete(key);
          changed = true;
        }
      }
    }
    if (changed) this.rewrite();
  }

  private rewrite(): void {
    if (!this.path) return;
    let lines = '';
    for (const group of this.groups.keys()) {
      for (const { topic, partition, value } of this.all(group)) {
        lines += `${JSON.stringify({ g: group, t: topic, p: partition, o: value.offset, e: value.leaderEpoch, m: value.metadata })}\n`;
      }
    }
    writeFileSync(`${this.path}.tmp`, lines);
    renameSync(`${this.path}.tmp`, this.path);
  }
}
