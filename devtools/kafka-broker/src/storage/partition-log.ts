import { closeSync, openSync, renameSync, writeFileSync, writeSync } from 'node:fs';
import {
  BATCH,
  batchBaseOffset,
  batchLastOffsetDelta,
  batchMaxTimestamp,
  batchProducer,
  batchRecords,
  ControlType,
  controlType,
  encodeControlBatch,
  isControlBatch,
  retainRecords,
  scanRecordTimestamps,
} from '../protocol/record-batch.js';

/** One stored batch: its bytes exactly as fetched, plus the index fields. */
interface StoredBatch {
  baseOffset: number;
  lastOffset: number;
  maxTimestamp: number;
  bytes: Buffer;
}

export interface OffsetAtTime {
  offset: number;
  timestamp: number;
}

/** A transaction that was aborted on this partition: its producer, first offset and marker offset. */
export interface AbortedTransaction {
  producerId: bigint;
  firstOffset: number;
  lastOffset: number;
}

/** Where a partition's batches live on disk, when the broker has a data directory. */
export interface SegmentFile {
  path: string;
}

/**
 * The log of one partition: an array of batches ordered by base offset, so an offset is found by
 * binary search, plus a running maximum of batch max-timestamps. The running maximum is
 * non-decreasing even when producers send timestamps out of order, which makes "first batch that
 * holds a timestamp >= t" a binary search too; inside that batch the records are scanned.
 *
 * Single node: the high watermark is the log end offset.
 */
export class PartitionLog {
  private batches: StoredBatch[] = [];
  private runningMaxTs: number[] = [];
  private fd: number | null = null;
  private listeners = new Set<() => void>();
  /** Open transactions on this partition: producer id → first offset and epoch. */
  private ongoing = new Map<bigint, { firstOffset: number; epoch: number }>();
  /** Aborted transactions, in marker order (Kafka's aborted transaction index). */
  private aborted: AbortedTransaction[] = [];
  logStartOffset = 0;
  highWatermark = 0;

  constructor(
    readonly topic: string,
    readonly partition: number,
    private readonly segment: SegmentFile | null = null,
  ) {}

  /** Rebuilds the log from segment bytes (used at startup); returns bytes of valid prefix. */
  load(data: Buffer, logStartOffset: number): number {
    let pos = 0;
    while (pos + BATCH.RECORDS <= data.length) {
      const size = 12 + data.readInt32BE(pos + BATCH.LENGTH);
      if (size < BATCH.RECORDS || pos + size > data.length) break; // torn tail write
      this.index(data.subarray(pos, pos + size));
      pos += size;
    }
    // Retention may have removed every batch: the recorded log start still fixes the end offset.
    this.highWatermark = Math.max(this.highWatermark, logStartOffset);
    this.logStartOffset = Math.max(logStartOffset, this.batches.length > 0 ? this.batches[0].baseOffset : logStartOffset);
    return pos;
  }

  private index(bytes: Buffer): void {
    const baseOffset = batchBaseOffset(bytes);
    const lastOffset = baseOffset + batchLastOffsetDelta(bytes);
    const maxTimestamp = batchMaxTimestamp(bytes);
    const prev = this.runningMaxTs.length ? this.runningMaxTs[this.runningMaxTs.length - 1] : -Infinity;
    this.batches.push({ baseOffset, lastOffset, maxTimestamp, bytes });
    this.runningMaxTs.push(Math.max(prev, maxTimestamp));
    this.highWatermark = lastOffset + 1;
    this.trackTransaction(bytes, baseOffset);
  }

  /** A transactional batch opens its producer's transaction here; a marker closes it. */
  private trackTransaction(bytes: Buffer, baseOffset: number): void {
    const { transactional, producerId } = batchProducer(bytes);
    if (!transactional) return;
    if (!isControlBatch(bytes)) {
      if (!this.ongoing.has(producerId))
        this.ongoing.set(producerId, { firstOffset: baseOffset, epoch: bytes.readInt16BE(BATCH.PRODUCER_EPOCH) });
      return;
    }
    const open = this.ongoing.get(producerId);
    if (!open) return; // a marker for a transaction that wrote nothing here
    this.ongoing.delete(producerId);
    if (controlType(bytes) === ControlType.ABORT) this.aborted.push({ producerId, firstOffset: open.firstOffset, lastOffset: baseOffset });
  }

  /**
   * read_committed readers stop here: the first offset of the oldest open transaction, or the
   * high watermark when none is open.
   */
  get lastStableOffset(): number {
    let lso = this.highWatermark;
    for (const { firstOffset } of this.ongoing.values()) lso = Math.min(lso, firstOffset);
    return lso;
  }

  /** The aborted transactions a read_committed fetch of [from, to) must be told about. */
  abortedBetween(from: number, to: number): AbortedTransaction[] {
    return this.aborted.filter((a) => a.lastOffset >= from && a.firstOffset < to);
  }

  /** Writes a transaction marker (commit or abort) of a producer; returns its offset. */
  appendMarker(producerId: bigint, producerEpoch: number, type: (typeof ControlType)[keyof typeof ControlType]): number {
    return this.append(encodeControlBatch(producerId, producerEpoch, type));
  }

  /**
   * After a restart the transaction coordinator's state is gone (it lives in memory), so a
   * transaction left open in the log could never end and would hold the last stable offset
   * forever. Kafka would abort it once its timeout passed; the dev broker aborts it at load.
   */
  abortOrphanedTransactions(): number {
    const orphans = [...this.ongoing];
    for (const [producerId, { epoch }] of orphans) this.appendMarker(producerId, epoch, ControlType.ABORT);
    return orphans.length;
  }

  /**
   * Appends a batch (taking ownership of the buffer): stamps the base offset and leader epoch,
   * which lie outside the CRC, so the producer's bytes are otherwise stored untouched.
   */
  append(bytes: Buffer): number {
    const baseOffset = this.highWatermark;
    bytes.writeBigInt64BE(BigInt(baseOffset), BATCH.BASE_OFFSET);
    bytes.writeInt32BE(0, BATCH.LEADER_EPOCH);
    this.index(bytes);
    if (this.segment) {
      if (this.fd === null) this.fd = openSync(this.segment.path, 'a');
      writeSync(this.fd, bytes);
    }
    return baseOffset;
  }

  /** Wakes long-polling fetches; called once per produce request, not per batch. */
  notify(): void {
    for (const fn of [...this.listeners]) fn();
  }

  onAppend(fn: () => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** Index of the batch containing offset, or of the first batch after it. */
  private batchIndexFor(offset: number): number {
    let lo = 0;
    let hi = this.batches.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.batches[mid].lastOffset < offset) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /**
   * Batches from the one containing offset, up to maxBytes and below upTo (read_committed: the
   * last stable offset); the first batch is always included whole even if larger (KIP-74), so a
   * consumer can always make progress.
   */
  read(offset: number, maxBytes: number, upTo = Number.POSITIVE_INFINITY): { batches: Buffer[]; bytes: number } {
    const out: Buffer[] = [];
    let bytes = 0;
    for (let i = this.batchIndexFor(offset); i < this.batches.length; i++) {
      if (this.batches[i].baseOffset >= upTo) break;
      const b = this.batches[i].bytes;
      if (out.length > 0 && bytes + b.length > maxBytes) break;
      out.push(b);
      bytes += b.length;
    }
    return { batches: out, bytes };
  }

  /** Bytes available from offset to the end (bounded by limit), for fetch min-bytes checks. */
  bytesAfter(offset: number, limit: number): number {
    let bytes = 0;
    for (let i = this.batchIndexFor(offset); i < this.batches.length && bytes < limit; i++) bytes += this.batches[i].bytes.length;
    return bytes;
  }

  /** First offset (>= log start) whose record timestamp is >= timestamp, or null if none. */
  offsetForTimestamp(timestamp: number): OffsetAtTime | null {
    let lo = this.batchIndexFor(this.logStartOffset);
    let hi = this.batches.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.runningMaxTs[mid] < timestamp) lo = mid + 1;
      else hi = mid;
    }
    for (let i = lo; i < this.batches.length; i++) {
      if (this.batches[i].maxTimestamp < timestamp) continue;
      let found: OffsetAtTime | null = null;
      scanRecordTimestamps(this.batches[i].bytes, (offset, ts) => {
        if (offset >= this.logStartOffset && ts >= timestamp) found = { offset, timestamp: ts };
        return found !== null;
      });
      if (found) return found;
    }
    return null;
  }

  /**
   * Retention: makes offset the new log start. Whole batches below it are dropped; a batch that
   * straddles it stays (consumers skip the records below their fetch offset, as with Kafka).
   */
  deleteBefore(offset: number): void {
    if (offset <= this.logStartOffset) return;
    this.logStartOffset = Math.min(offset, this.highWatermark);
    const keep = this.batchIndexFor(this.logStartOffset);
    if (keep > 0) {
      this.batches = this.batches.slice(keep);
      this.runningMaxTs = [];
      let max = -Infinity;
      for (const b of this.batches) this.runningMaxTs.push((max = Math.max(max, b.maxTimestamp)));
    }
    if (this.segment) this.rewriteSegment();
  }

  /**
   * Log compaction, as Kafka's cleaner does it for the batches wholly below `before` (Kafka: the
   * segments before the active one): a keyed record is kept only if no later record below
   * `before` has the same key. Offsets are never reassigned, so gaps appear; the log start and
   * the high watermark stay. Records without a key and transactional batches are kept. Tombstones
   * (null values) are kept too (Kafka keeps them for delete.retention.ms). Returns how many
   * records were removed.
   */
  compact(before: number): number {
    // Transactional batches are left alone: which of their records count depends on markers.
    const cleanable = (b: StoredBatch) => b.lastOffset < before && !batchProducer(b.bytes).transactional;
    const latest = new Map<string, number>();
    for (const b of this.batches) {
      if (!cleanable(b)) continue;
      for (const r of batchRecords(b.bytes)) if (r.key) latest.set(r.key.toString('latin1'), r.offset);
    }
    let removed = 0;
    const kept: Buffer[] = [];
    for (const b of this.batches) {
      if (!cleanable(b)) {
        kept.push(b.bytes);
        continue;
      }
      const records = batchRecords(b.bytes);
      const survivors = records.filter((r) => !r.key || latest.get(r.key.toString('latin1')) === r.offset);
      removed += records.length - survivors.length;
      if (survivors.length === records.length) kept.push(b.bytes);
      else if (survivors.length > 0) kept.push(retainRecords(b.bytes, survivors));
    }
    if (removed === 0) return 0;
    const highWatermark = this.highWatermark;
    this.batches = [];
    this.runningMaxTs = [];
    this.ongoing = new Map();
    this.aborted = [];
    for (const bytes of kept) this.index(bytes);
    this.highWatermark = highWatermark;
    if (this.segment) this.rewriteSegment();
    return removed;
  }

  /** Rewrites the segment file with the retained batches (rare: only on retention and compaction). */
  private rewriteSegment(): void {
    const seg = this.segment!;
    this.closeFile();
    const tmp = `${seg.path}.tmp`;
    writeFileSync(tmp, Buffer.concat(this.batches.map((b) => b.bytes)));
    renameSync(tmp, seg.path);
    writeFileSync(`${seg.path}.start`, String(this.logStartOffset));
  }

  closeFile(): void {
    if (this.fd !== null) {
      closeSync(this.fd);
      this.fd = null;
    }
  }

  close(): void {
    this.closeFile();
    this.notify(); // release waiting fetches so they answer promptly
    this.listeners.clear();
  }
}
