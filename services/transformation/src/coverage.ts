/**
 * Offset coverage of one Transform stream (DESIGN.md, "Offsets are declared by ingestion,
 * checked by everyone"). Each batch declares, per Kafka partition, the range [start, end)
 * it accounts for; the stream keeps the union since its last report and refuses a batch
 * whose range does not start exactly where the partition's previous range ended. That is
 * an upstream bug, and tolerating it would commit a gap or a duplicate.
 *
 * Pure: no I/O, no clock. A refused batch is a CoverageError (INVALID_ARGUMENT): the stream
 * ends with it.
 */
import { SluiceError } from '#shared/errors.js';
import type { RecordBatch } from '#shared/gen/sluice/v1/transformation.js';
import type { OffsetRange } from '#shared/gen/sluice/v1/types.js';
import { runProblem, type RunView } from '#shared/record-runs.js';
import { status } from '@grpc/grpc-js';

export class CoverageError extends SluiceError {
  constructor(message: string, details: Record<string, string>) {
    super(status.INVALID_ARGUMENT, message, details);
    this.name = 'CoverageError';
  }
}

/** Why a batch's covers cannot be added, and the partition that says so. */
interface Refusal {
  message: string;
  topic: string;
  partition: number;
}

const refused = (r: Refusal, prefix = '') => new CoverageError(`${prefix}${r.message}`, { topic: r.topic, partition: String(r.partition) });

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
    const bad = this.refusal(covers);
    if (bad) throw refused(bad);
    this.extend(covers);
  }

  /**
   * Adds a batch from the stream, all or nothing: its records must lie inside its covers, and
   * its covers must continue the previous batches' (add). The error names the batch.
   */
  addBatch(batch: Pick<RecordBatch, 'sequence' | 'covers'> & { runs: readonly RunView[] }): void {
    const outside = unfitRun(batch.runs, batch.covers);
    if (outside) throw new CoverageError(`batch ${batch.sequence}: ${outside}`, { sequence: String(batch.sequence) });
    const bad = this.refusal(batch.covers);
    if (bad) throw refused(bad, `batch ${batch.sequence}: `);
    this.extend(batch.covers);
  }

  /** Why `covers` cannot follow the ranges so far, or null (changes nothing). */
  private refusal(covers: readonly OffsetRange[]): Refusal | null {
    const seen = new Set<string>();
    for (const r of covers) {
      const bad = malformed(r);
      if (bad) return { message: bad, topic: r.topic, partition: r.partition };
      const key = keyOf(r.topic, r.partition);
      if (seen.has(key)) return { message: `batch covers ${where(r)} twice`, topic: r.topic, partition: r.partition };
      seen.add(key);
      const expected = this.next.get(key);
      if (expected !== undefined && r.startOffset !== expected) {
        const what =
          r.startOffset > expected
            ? `offsets ${expected}..${r.startOffset - 1} are missing`
            : `offsets ${r.startOffset}..${expected - 1} were already covered`;
        return {
          message: `batch cover of ${where(r)} starts at offset ${r.startOffset} but the previous batch ended at ${expected} (${what})`,
          topic: r.topic,
          partition: r.partition,
        };
      }
    }
    return null;
  }

  private extend(covers: readonly OffsetRange[]): void {
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
 * What is wrong with the batch's runs, described, or null: a run whose columns do not fit
 * together (runProblem), or the first record that lies outside every cover of its batch. A
 * record outside the declared ranges would be written but never committed as covered.
 * Batches usually cover one partition, so this is a short scan per record.
 */
export function unfitRun(runs: readonly RunView[], covers: readonly OffsetRange[]): string | null {
  for (const run of runs) {
    const problem = runProblem(run);
    if (problem) return problem;
    const own = covers.filter((c) => c.partition === run.partition && c.topic === run.topic);
    // Indexed loops without a callback: this runs per record, and a closure per record was
    // most of what transformation's JS allocated on the narrow shape (a sampling heap profile).
    const deltas = run.offsetDeltas;
    for (let i = 0; i < deltas.length; i++) {
      const offset = run.baseOffset + deltas[i];
      if (covered(own, offset)) continue;
      return `record ${where(run)} offset ${offset} lies outside the batch's covers (${covers.map((c) => `${where(c)} [${c.startOffset}, ${c.endOffset})`).join(', ') || 'none'})`;
    }
  }
  return null;
}

function covered(ranges: readonly OffsetRange[], offset: number): boolean {
  for (let i = 0; i < ranges.length; i++) if (offset >= ranges[i].startOffset && offset < ranges[i].endOffset) return true;
  return false;
}
