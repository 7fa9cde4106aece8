/**
 * Admission by offset contiguity (DESIGN.md, "Offsets are declared by ingestion, checked by
 * everyone"). A report is admitted only if every range it carries starts exactly where the
 * partition's committed offsets end, or where an earlier report admitted in the same round
 * ends; before the job's first commit on a partition, where the job's recorded start is.
 * Everything here is pure: the catalog checks the same rule (#shared/offsets.js) inside its
 * transaction, this check only lets the coordinator drop a misfit early and name the worker
 * to rewind.
 */
import type { CommittedOffset, PartitionStart } from '#shared/gen/sluice/v1/catalog.js';
import type { OffsetRange } from '#shared/gen/sluice/v1/types.js';
import { continuity, expectedOffsets, partitionKey } from '#shared/offsets.js';

export type Misfit =
  /** The range starts before the next offset: already committed (stale report, zombie). */
  | { kind: 'stale'; topic: string; partition: number; expected: number; start: number }
  /** The range starts after the next offset: something in between was lost. */
  | { kind: 'gap'; topic: string; partition: number; expected: number; start: number }
  /** The report itself is malformed (end before start, a partition listed twice). */
  | { kind: 'invalid'; topic: string; partition: number; reason: string };

export function describeMisfit(m: Misfit): string {
  const where = `${m.topic}[${m.partition}]`;
  switch (m.kind) {
    case 'stale':
      return `${where} starts at offset ${m.start} but ${m.expected} is the next uncommitted offset (stale report)`;
    case 'gap':
      return `${where} starts at offset ${m.start} but ${m.expected} is the next uncommitted offset (offsets ${m.expected}..${m.start - 1} are missing)`;
    case 'invalid':
      return `${where}: ${m.reason}`;
  }
}

/**
 * The next offset per Kafka partition for one job: the committed one, else the job's recorded
 * start. A partition the ledger does not know (its start was recorded after the ledger was
 * read) is left to the catalog, which refuses a range that does not begin at the recorded
 * start; the pipeline then reads the ledger again and drops the misfit here.
 */
export class OffsetLedger {
  private constructor(private readonly next: Map<string, number>) {}

  static empty(): OffsetLedger {
    return new OffsetLedger(new Map());
  }

  static fromCommitted(offsets: readonly CommittedOffset[], starts: readonly PartitionStart[]): OffsetLedger {
    return new OffsetLedger(expectedOffsets(offsets, starts));
  }

  clone(): OffsetLedger {
    return new OffsetLedger(new Map(this.next));
  }

  expected(topic: string, partition: number): number | undefined {
    return this.next.get(partitionKey(topic, partition));
  }

  /** The first range of `ranges` that does not continue this ledger, or undefined if all do. */
  check(ranges: readonly OffsetRange[]): Misfit | undefined {
    const seen = new Set<string>();
    for (const r of ranges) {
      const key = partitionKey(r.topic, r.partition);
      if (seen.has(key)) return { kind: 'invalid', topic: r.topic, partition: r.partition, reason: 'partition listed twice in one report' };
      seen.add(key);
      if (!Number.isSafeInteger(r.startOffset) || r.startOffset < 0 || r.endOffset < r.startOffset) {
        return {
          kind: 'invalid',
          topic: r.topic,
          partition: r.partition,
          reason: `range [${r.startOffset}, ${r.endOffset}) is not a valid offset range`,
        };
      }
      const expected = this.next.get(key);
      if (expected === undefined) continue;
      const fit = continuity(r.startOffset, expected);
      if (fit === 'overlap') return { kind: 'stale', topic: r.topic, partition: r.partition, expected, start: r.startOffset };
      if (fit === 'gap') return { kind: 'gap', topic: r.topic, partition: r.partition, expected, start: r.startOffset };
    }
    return undefined;
  }

  /** Moves each partition's next offset to the end of its range (ranges already checked). */
  advance(ranges: readonly OffsetRange[]): void {
    for (const r of ranges) this.next.set(partitionKey(r.topic, r.partition), r.endOffset);
  }
}

export interface Admission<R> {
  admitted: R[];
  dropped: { report: R; misfit: Misfit }[];
  /** Per partition, the one range [first start, last end) the admitted reports cover together. */
  offsets: OffsetRange[];
}

/**
 * Admits reports in arrival order against a ledger (which is not modified). Reports of one
 * worker arrive in the order it sent them, so a late report followed by its successor in
 * the same round chains naturally. A dropped report does not advance anything, so a later
 * report that relied on it is dropped too (as a gap): both workers rewind.
 */
export function admitReports<R extends { offsets: readonly OffsetRange[] }>(ledger: OffsetLedger, reports: readonly R[]): Admission<R> {
  const scratch = ledger.clone();
  const admitted: R[] = [];
  const dropped: { report: R; misfit: Misfit }[] = [];
  const merged = new Map<string, OffsetRange>();
  for (const report of reports) {
    const misfit = scratch.check(report.offsets);
    if (misfit) {
      dropped.push({ report, misfit });
      continue;
    }
    scratch.advance(report.offsets);
    admitted.push(report);
    for (const r of report.offsets) {
      const key = partitionKey(r.topic, r.partition);
      const prev = merged.get(key);
      if (prev) prev.endOffset = r.endOffset;
      else merged.set(key, { topic: r.topic, partition: r.partition, startOffset: r.startOffset, endOffset: r.endOffset });
    }
  }
  const offsets = [...merged.values()].sort((a, b) => (a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : a.partition - b.partition));
  return { admitted, dropped, offsets };
}

/** True when committing these ranges would move at least one partition forward. */
export const advancesAny = (offsets: readonly OffsetRange[]): boolean => offsets.some((r) => r.endOffset > r.startOffset);
