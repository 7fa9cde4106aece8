/**
 * Offset coverage of one Transform stream (DESIGN.md, "Offsets are declared by ingestion,
 * checked by everyone"). Each batch declares, per Kafka partition, the range [start, end)
 * it accounts for; the stream keeps the union since its last report and refuses a batch
 * whose range does not start exactly where the partition's previous range ended. That is
 * an upstream bug, and tolerating it would commit a gap or a duplicate.
 *
 * Pure: no I/O, no clock. The stream turns a CoverageError into INVALID_ARGUMENT.
 */
import type { KafkaRecord, OffsetRange } from '#shared/gen/sluice/v1/types.js';

export class CoverageError extends Error {
  constructor(
    message: string,
    readonly topic: string,
    readonly partition: number,
  ) {
    super(message);
    this.name = 'CoverageError';
  }
}

/** Kafka topic names are [a-zA-Z0-9._-], so `/` cannot occur inside one. */
const keyOf = (topic: string, partition: number) => `${topic}/${partition}`;
const where = (r: { topic: string; partition: number }) => `${r.topic}[${r.partition}]`;

/** Why a declared range is malformed, or null when it is well-formed. */
export function malformed(r: OffsetRange): string | null {
  if (!r.topic) return 'a cover has no topic';
  if (!Number.isInteger(r.partition) || r.partition < 0) return `cover of ${r.topic} has partition ${r.partition}, expected >= 0`;
  if (!Number.isSafeInteger(r.startOffset) || !Number.isSafeInteger(r.endOffset) || r.startOffset < 0 || r.endOffset < r.startOffset) {
    return `cover of ${where(r)} is [${r.startOffset}, ${r.endOffset}), not a valid offset range`;
  }
  return null;
}

export class Coverage {
  /** Per partition, the offset the next batch must start at (kept across reports). */
  private readonly next = new Map<string, number>();
  /** Per partition, the range covered since the last report. */
  private pending = new Map<string, OffsetRange>();

  /**
   * Adds one batch's covers, all or nothing: a batch with one bad range changes nothing.
   * The first range of a partition may start anywhere (ingestion's start position).
   */
  add(covers: readonly OffsetRange[]): void {
    const seen = new Set<string>();
    for (const r of covers) {
      const bad = malformed(r);
      if (bad) throw new CoverageError(bad, r.topic, r.partition);
      const key = keyOf(r.topic, r.partition);
      if (seen.has(key)) throw new CoverageError(`batch covers ${where(r)} twice`, r.topic, r.partition);
      seen.add(key);
      const expected = this.next.get(key);
      if (expected !== undefined && r.startOffset !== expected) {
        const what =
          r.startOffset > expected
            ? `offsets ${expected}..${r.startOffset - 1} are missing`
            : `offsets ${r.startOffset}..${expected - 1} were already covered`;
        throw new CoverageError(
          `batch cover of ${where(r)} starts at offset ${r.startOffset} but the previous batch ended at ${expected} (${what})`,
          r.topic,
          r.partition,
        );
      }
    }
    for (const r of covers) {
      const key = keyOf(r.topic, r.partition);
      this.next.set(key, r.endOffset);
      if (r.endOffset === r.startOffset) continue;
      const open = this.pending.get(key);
      if (open) open.endOffset = r.endOffset;
      else this.pending.set(key, { topic: r.topic, partition: r.partition, startOffset: r.startOffset, endOffset: r.endOffset });
    }
  }

  /** Whether anything was covered since the last take(). */
  get isEmpty(): boolean {
    return this.pending.size === 0;
  }

  /** The ranges covered since the last call, sorted by topic and partition; starts afresh. */
  take(): OffsetRange[] {
    const ranges = [...this.pending.values()].sort((a, b) => (a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : a.partition - b.partition));
    this.pending = new Map();
    return ranges;
  }
}

/**
 * The first record that lies outside every cover of its batch, described, or null. A
 * record outside the declared ranges would be written but never committed as covered.
 * Batches usually cover one partition, so this is a short scan per record.
 */
export function uncoveredRecord(records: readonly KafkaRecord[], covers: readonly OffsetRange[]): string | null {
  for (const rec of records) {
    let inside = false;
    for (const c of covers) {
      if (c.partition === rec.partition && c.topic === rec.topic && rec.offset >= c.startOffset && rec.offset < c.endOffset) {
        inside = true;
        break;
      }
    }
    if (!inside)
      return `record ${where(rec)} offset ${rec.offset} lies outside the batch's covers (${covers.map((c) => `${where(c)} [${c.startOffset}, ${c.endOffset})`).join(', ') || 'none'})`;
  }
  return null;
}
