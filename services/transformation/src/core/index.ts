/** The transformation core: pure functions from Kafka records to rows of an Iceberg schema. */
export { SpecError, RecordError, type ErrorReason } from './errors.js';
export {
  compilePlan,
  transformRecord,
  transformChanges,
  partitionOf,
  headersJson,
  META_FIELDS,
  type Plan,
  type PlanInput,
  type ChangeRow,
} from './plan.js';
export type { RecordContext, Row } from './row.js';
export { SchemaGrowth, grownSchema } from './evolve.js';
export type { RowValue } from './coerce.js';
export type { PartitionTuple } from './partition.js';
export { DirtyDataPolicy, validatePolicy, type Decision, type ErrorTopicRecord } from './policy.js';
export { errorTableColumns, type ErrorTableRow } from '#shared/error-table.js';
export { inferSchema, previewRows, type InferResult, type InferredColumn, type PreviewRow } from './infer.js';
export { compileExpression } from './schedule.js';
export { zone } from '#shared/time.js';
