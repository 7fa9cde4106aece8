/**
 * Where each partition starts, and what happens when the offsets a job needs have expired.
 * (Where a bounded job's partition ends is found by reading: completion.ts.) Pure decisions;
 * the runner gathers the inputs (catalog committed offsets, watermarks, timestamp lookups)
 * and applies the answers.
 */
import { OffsetResetPolicy, type PartitionStart, StartFrom, type StartPosition } from '#shared/gen/sluice/v1/catalog.js';

/** What the broker says about one partition. */
export interface Watermarks {
  /** Log start offset: the first offset still readable. */
  readonly low: number;
  /** High watermark: one past the last readable offset. */
  readonly high: number;
}

export type StartOrigin = 'catalog' | 'earliest' | 'latest' | 'timestamp' | 'offsets';

export interface StartDecision {
  readonly offset: number;
  readonly origin: StartOrigin;
  /** A start by timestamp that reading still has to confirm (see StartSearch); null otherwise. */
  readonly search: StartSearch | null;
}

/**
 * A start by timestamp, confirmed by reading. Kafka's answer to "the first offset stamped at or
 * after t" counts transaction markers, which the broker stamps with its own clock when their
 * transaction ends, so it can be a marker ahead of records stamped before t. From there, the
 * records below `untilOffset` (the high watermark when the start was looked up) stamped before
 * `atMs` are covered without being sent (dropped on purpose, like records outside a window), up
 * to the first one stamped at or after it; when none is, up to `untilOffset`, as if the lookup
 * had found nothing (findStart). The cover begins at the recorded start, so the job's first
 * commit does too.
 */
export interface StartSearch {
  readonly atMs: number;
  readonly untilOffset: number;
}

export class PositionError extends Error {
  constructor(
    readonly topic: string,
    readonly partition: number,
    message: string,
  ) {
    super(message);
    this.name = 'PositionError';
  }
}

export interface StartInputs {
  readonly topic: string;
  readonly partition: number;
  /** The catalog's committed next offset, when the job committed anything on this partition. */
  readonly committed: number | undefined;
  readonly start: StartPosition | undefined;
  /** Start of a bounded job's window; used when the job names no start position. */
  readonly windowStartMs: number | undefined;
  readonly watermarks: Watermarks;
  /** The answer to "first offset with timestamp >= t" for the start time, -1 when none. */
  readonly timestampOffset: number | undefined;
}

/**
 * The offset a partition starts from. The catalog's committed offset always wins: a restart
 * continues exactly where the last commit ended (never from Kafka's group offsets). Without
 * one: the job's start position; a bounded job without one starts at its window's start time.
 * An explicit offset list names every partition the topic had when the job first started
 * (checkStartOffsets); a partition added to the topic later starts from its earliest offset.
 */
export function chooseStart(i: StartInputs): StartDecision {
  if (i.committed !== undefined) return { offset: i.committed, origin: 'catalog', search: null };
  let from = i.start?.from ?? StartFrom.START_FROM_UNSPECIFIED;
  if (from === StartFrom.START_FROM_UNSPECIFIED) {
    from = i.windowStartMs !== undefined ? StartFrom.START_FROM_TIMESTAMP : StartFrom.START_FROM_EARLIEST;
  }
  switch (from) {
    case StartFrom.START_FROM_LATEST:
      return { offset: i.watermarks.high, origin: 'latest', search: null };
    case StartFrom.START_FROM_TIMESTAMP: {
      if (i.timestampOffset === undefined)
        throw new PositionError(i.topic, i.partition, `start by timestamp on ${i.topic}/${i.partition}: no offset was looked up`);
      // -1: no record at or after the time yet, so the first one to arrive is the start.
      if (i.timestampOffset < 0 || i.timestampOffset >= i.watermarks.high)
        return { offset: i.watermarks.high, origin: 'timestamp', search: null };
      return { offset: i.timestampOffset, origin: 'timestamp', search: { atMs: startTimeMs(i), untilOffset: i.watermarks.high } };
    }
    case StartFrom.START_FROM_OFFSETS: {
      const named = i.start?.offsets.find((o) => o.partition === i.partition);
      if (!named) return { offset: i.watermarks.low, origin: 'earliest', search: null };
      if (named.offset < 0 || named.offset > i.watermarks.high) {
        throw new PositionError(
          i.topic,
          i.partition,
          `start offset ${named.offset} of ${i.topic}/${i.partition} is outside the partition (${i.watermarks.low}..${i.watermarks.high})`,
        );
      }
      return { offset: named.offset, origin: 'offsets', search: null };
    }
    case StartFrom.START_FROM_EARLIEST:
      return { offset: i.watermarks.low, origin: 'earliest', search: null };
    default:
      throw new PositionError(i.topic, i.partition, `start position ${String(from)} is not supported`);
  }
}

/** The time a start by timestamp (or a window's start) confirms records against; 0 when neither is set. */
function startTimeMs(i: Pick<StartInputs, 'start' | 'windowStartMs'>): number {
  return i.start?.timestampMs || i.windowStartMs || 0;
}

/**
 * What the catalog records of a start decision (RecordJobStart): the offset and, for a start
 * by timestamp still to be confirmed by reading, how far the confirmation may read.
 */
export function startToRecord(topic: string, partition: number, decision: StartDecision): PartitionStart {
  return { topic, partition, offset: decision.offset, searchUntilOffset: decision.search?.untilOffset };
}

/**
 * The start a partition uses: the one the catalog recorded (the first any process or run of
 * the job resolved), never this run's own resolution, so a restart of a job started at `latest`
 * that committed nothing does not jump to the new latest, and every process reading the
 * partition confirms a start by timestamp over the same offsets.
 */
export function startFromRecord(
  recorded: PartitionStart,
  spec: Pick<StartInputs, 'start' | 'windowStartMs'>,
): { offset: number; search: StartSearch | null } {
  const until = recorded.searchUntilOffset;
  return { offset: recorded.offset, search: until === undefined ? null : { atMs: startTimeMs(spec), untilOffset: until } };
}

/**
 * A job starting from explicit offsets must name each partition of its topic, and only those:
 * a partition left out would start from a position nobody chose. Checked until the job's
 * first commit (after it, the catalog's offsets decide and later partitions start earliest).
 */
export function checkStartOffsets(
  topic: string,
  start: StartPosition | undefined,
  partitionIds: readonly number[],
  committedAny: boolean,
): void {
  if (start?.from !== StartFrom.START_FROM_OFFSETS || committedAny) return;
  const named = start.offsets.map((o) => o.partition).sort((a, b) => a - b);
  const unknown = named.filter((p) => !partitionIds.includes(p));
  const sorted = [...partitionIds].sort((a, b) => a - b);
  const what = `topic ${topic} has partitions ${sorted.join(', ')}`;
  if (unknown.length > 0)
    throw new PositionError(topic, unknown[0], `source.startFrom.offsets names partition ${unknown.join(', ')}, but ${what}`);
  const missing = sorted.filter((p) => !named.includes(p));
  if (missing.length > 0)
    throw new PositionError(
      topic,
      missing[0],
      `source.startFrom.offsets names no offset for partition ${missing.join(', ')} (${what}); give an offset for every partition`,
    );
}

export type ExpiredDecision =
  | { readonly action: 'fail'; readonly reason: string }
  | { readonly action: 'skip'; readonly lost: number; readonly reason: string };

/**
 * The job needs offsets below the log start (retention removed them before they were
 * committed). Seed 000: expired data cannot come back. By default the job fails and says so;
 * with offset_reset = EARLIEST it continues from the earliest offset, covering the lost range
 * without rows and counting the lost offsets under the error reason `offset_out_of_range`.
 */
export function onExpired(
  topic: string,
  partition: number,
  position: number,
  logStart: number,
  policy: OffsetResetPolicy,
): ExpiredDecision {
  const lost = logStart - position;
  const what = `offsets ${position}..${logStart - 1} of ${topic}/${partition} expired (retention) before they were committed`;
  if (policy === OffsetResetPolicy.OFFSET_RESET_POLICY_EARLIEST) {
    return { action: 'skip', lost, reason: `${what}; offset_reset=EARLIEST: continuing from ${logStart}, ${lost} offsets lost` };
  }
  return {
    action: 'fail',
    reason: `OFFSET_OUT_OF_RANGE: ${what}; expired data cannot come back. Set the job's offset_reset to EARLIEST to continue from offset ${logStart}`,
  };
}

/** The Kafka consumer group of a job; every ingestion process running the job joins it. */
export function groupIdFor(job: string): string {
  return `sluice-${job}`;
}
