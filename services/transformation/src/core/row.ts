/**
 * What the core's steps pass between them: a row (one value per table column, in schema
 * order) and the context a record's transformation may depend on besides the record.
 * Its own module so the plan and the partitioning both use them without importing each other.
 */
import type { RowValue } from './coerce.js';

export type Row = RowValue[];

/** What a record's transformation may depend on besides the record: the clock, passed in. */
export interface RecordContext {
  /** Processing time, for PROCESSING_TIME partitions. */
  nowMs: number;
  /** The job's scheduled time, for expressions without a time source (bounded runs). */
  scheduledMs?: number;
  /** Where fields the table has no column for are counted by path (schema evolution NONE). */
  unmapped?: Map<string, number>;
}
