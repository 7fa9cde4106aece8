/**
 * The cursor of every partition of a job's topic in this process, and which of them the
 * group assigned here. Plain bookkeeping: the reader fills it from the catalog and Kafka
 * (addNewPartitions), and the pure decisions (coverage, completion) read it.
 */
import type { Admin } from 'kafkajs';
import type { PartitionOffset, PartitionStart, StartPosition } from '#shared/gen/sluice/v1/catalog.js';
import type { PartitionStatus } from '#shared/gen/sluice/v1/ingestion.js';
import type { PartitionProgress } from './completion.js';
import type { TimeBounds } from './coverage.js';
import { offsetsAtTime, watermarks } from './kafka-source.js';
import { checkStartOffsets, chooseStart, PositionError, type StartSearch, startFromRecord, startToRecord } from './positions.js';

export interface PartitionState extends PartitionProgress {
  readonly partition: number;
  /** Next offset to account for: everything below was sent or covered in this incarnation. */
  position: number;
  /**
   * Where the job starts on this partition before any commit: the start the catalog recorded
   * (RecordJobStart), where the job's first commit there must begin. (A partition already
   * committed when this process first saw it: its committed offset, since nothing before that
   * is left to read.)
   */
  initialStart: number;
  /** A start by timestamp still being confirmed by reading (positions.ts StartSearch); null otherwise. */
  startSearch: StartSearch | null;
  /** The recorded start's search: a resync before the first commit confirms the start again from initialStart. */
  readonly recordedSearch: StartSearch | null;
  /** END_POSITION jobs: the exclusive end, once reading found the partition over (completion.ts). */
  endOffset: number | null;
  /**
   * The end was given (TimeWindow.end_offsets: an instance's rerun or late append reads up to
   * its last late record), so no record's timestamp ends the partition earlier.
   */
  readonly knownEnd: boolean;
  /** The high watermark as last seen (a fetch or the broker asked), for lag. */
  highWatermark: number;
  /**
   * When the broker was last asked for the high watermark (wall clock, ms; 0: never). A
   * fetch's watermark may raise highWatermark but never this: it only ever makes the pair
   * more demanding (completion.ts endWithoutRecord).
   */
  highWatermarkAtMs: number;
  /** The catalog's committed next offset; undefined before the first commit. */
  committed: number | undefined;
}

export class PartitionTable {
  private readonly byId = new Map<number, PartitionState>();
  /** The partitions the group assigned to this process, ascending. */
  private assigned: number[] = [];

  constructor(readonly topic: string) {}

  has(partition: number): boolean {
    return this.byId.has(partition);
  }

  add(state: PartitionState): void {
    this.byId.set(state.partition, state);
  }

  get(partition: number): PartitionState | undefined {
    return this.byId.get(partition);
  }

  /** A partition this process owns (its state exists from the start, see JobRunner.resync). */
  at(partition: number): PartitionState {
    const st = this.byId.get(partition);
    if (!st) throw new Error(`partition ${this.topic}/${partition} is owned but unknown`);
    return st;
  }

  /** Every partition of the topic, owned here or not. */
  all(): PartitionState[] {
    return [...this.byId.values()];
  }

  get ownedIds(): readonly number[] {
    return this.assigned;
  }

  isOwned(partition: number): boolean {
    return this.assigned.includes(partition);
  }

  assign(partitions: readonly number[]): void {
    this.assigned = [...partitions].sort((a, b) => a - b);
  }

  ownedStates(): PartitionState[] {
    return this.assigned.map((p) => this.at(p));
  }

  /** This process's positions: what a stop or an IDLE finish waits to see committed. */
  positions(): Map<number, number> {
    return new Map(this.assigned.map((p) => [p, this.at(p).position]));
  }

  /** A commit reached `next` on the partition; commits only move forward. */
  recordCommitted(partition: number, next: number): void {
    const st = this.byId.get(partition);
    if (st && (st.committed === undefined || next > st.committed)) st.committed = next;
  }

  /** The broker's high watermark of the partition, asked for at `askedAtMs` (before the request went out). */
  setHighWatermark(partition: number, high: number, askedAtMs: number): void {
    const st = this.byId.get(partition);
    if (!st) return;
    st.highWatermark = high;
    st.highWatermarkAtMs = askedAtMs;
  }

  /**
   * Status rows: the owned partitions, read by the stream `workerId`, or every partition (no
   * worker) when this member owns none.
   */
  status(workerId: string): PartitionStatus[] {
    const reader = this.assigned.length > 0 ? workerId : '';
    const shown = this.assigned.length > 0 ? this.assigned : [...this.byId.keys()].sort((a, b) => a - b);
    return shown.map((p) => {
      const st = this.at(p);
      const committed = st.committed ?? st.initialStart;
      return {
        topic: this.topic,
        partition: p,
        position: st.position,
        endOffset: st.endOffset ?? undefined,
        highWatermark: st.highWatermark,
        committedOffset: st.committed ?? -1,
        lag: Math.max(0, (st.endOffset ?? st.highWatermark) - committed),
        workerId: reader,
      };
    });
  }
}

/** What the start offset of a partition depends on. */
export interface BoundsSpec {
  readonly start: StartPosition | undefined;
  readonly window: TimeBounds | null;
  /** Partitions whose end is given (TimeWindow.end_offsets). */
  readonly endOffsets?: readonly PartitionOffset[];
}

/**
 * Adds the partitions of the topic the table does not know yet, with their start offsets:
 * every partition, not only the owned ones, since completion is judged over the whole topic,
 * whichever process of the group reads a partition. A partition without a committed offset
 * starts where the catalog recorded the job's start: this run's resolution is recorded when
 * none is yet (the first start recorded wins), so a partition added to the topic later is
 * recorded when first seen. END_POSITION ends are not known yet: reading finds them
 * (completion.ts).
 */
export async function addNewPartitions(
  table: PartitionTable,
  admin: Admin,
  partitionIds: readonly number[],
  spec: BoundsSpec,
  committedOffsets: () => Promise<Map<number, number>>,
  recordStarts: (starts: PartitionStart[]) => Promise<PartitionStart[]>,
): Promise<void> {
  const missing = partitionIds.filter((p) => !table.has(p));
  if (missing.length === 0) return;
  const { topic } = table;
  const askedAtMs = Date.now();
  const marks = await watermarks(admin, topic);
  const committed = await committedOffsets();
  checkStartOffsets(topic, spec.start, partitionIds, committed.size > 0);
  const startAt = spec.start?.timestampMs || spec.window?.startTimeMs;
  const needsStartLookup = startAt !== undefined && startAt > 0;
  const startOffsets = needsStartLookup ? await offsetsAtTime(admin, topic, startAt, marks) : new Map<number, number>();
  const windowStartMs = spec.window?.startTimeMs;
  const resolved = missing
    .filter((p) => !committed.has(p))
    .map((p) => {
      const decision = chooseStart({
        topic,
        partition: p,
        committed: undefined,
        start: spec.start,
        windowStartMs,
        watermarks: marks.get(p) ?? { low: 0, high: 0 },
        timestampOffset: startOffsets.get(p),
      });
      return startToRecord(topic, p, decision);
    });
  const recorded = new Map<number, PartitionStart>();
  if (resolved.length > 0) for (const r of await recordStarts(resolved)) if (r.topic === topic) recorded.set(r.partition, r);
  for (const p of missing) {
    const wm = marks.get(p) ?? { low: 0, high: 0 };
    const next = committed.get(p);
    const rec = recorded.get(p);
    if (next === undefined && !rec)
      throw new PositionError(topic, p, `the catalog returned no recorded start for ${topic}/${p} after RecordJobStart`);
    const start = rec ? startFromRecord(rec, { start: spec.start, windowStartMs }) : { offset: next ?? 0, search: null };
    const knownEnd = spec.endOffsets?.find((e) => e.partition === p)?.offset;
    table.add({
      partition: p,
      position: next ?? start.offset,
      initialStart: start.offset,
      startSearch: next === undefined ? start.search : null,
      recordedSearch: start.search,
      endOffset: knownEnd ?? null,
      knownEnd: knownEnd !== undefined,
      highWatermark: wm.high,
      highWatermarkAtMs: askedAtMs,
      committed: next,
    });
  }
}
