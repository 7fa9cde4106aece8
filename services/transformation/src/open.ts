/**
 * Opening a Transform stream: the open message checked, the table (and the ERROR_TABLE
 * policy's error table) loaded from the catalog, the mapping compiled into a plan once, and
 * the file sets built. Everything wrong is found here, before the first batch, and named:
 * a bad request is INVALID_ARGUMENT, a table this worker cannot use FAILED_PRECONDITION, a
 * catalog out of reach UNAVAILABLE.
 */
import type { CatalogServiceService, Table } from '#shared/gen/sluice/v1/catalog.js';
import type { TransformOpen } from '#shared/gen/sluice/v1/transformation.js';
import { ErrorPolicyKind, type TableRef } from '#shared/gen/sluice/v1/types.js';
import { failedPrecondition, grpcCode, grpcMessage, invalidArgument, SluiceError, unavailable } from '#shared/errors.js';
import type { ServiceClient } from '#shared/grpc/client.js';
import { status } from '@grpc/grpc-js';
import { compilePlan, validatePolicy, type Plan, type PlanInput } from './core/index.js';
import { errorTableSink, type ErrorTableSink } from './error-sink.js';
import { tableFiles, type PartitionedFiles, type FileSettings } from './files.js';

export type CatalogClient = ServiceClient<typeof CatalogServiceService>;

export const tableName = (t: TableRef) => `${t.database}.${t.table}`;

/** What a stream writes with: its table, the compiled plan, and the files it opens. */
export interface StreamSetup {
  table: TableRef;
  plan: Plan;
  /** What the plan was compiled from, to compile it again when the schema evolves. */
  planInput: PlanInput;
  /** The table's highest field id: new columns are numbered after it. */
  lastColumnId: number;
  files: PartitionedFiles;
  /** The error table's writer side (ERROR_TABLE policy only). */
  errorSink: ErrorTableSink | null;
}

/** Checks the open message, loads the table(s) and compiles the plan once. */
export async function setUpStream(open: TransformOpen, catalog: CatalogClient, fileSettings: FileSettings): Promise<StreamSetup> {
  const { table, mapping } = checkOpen(open);
  const main = await loadTable(catalog, table);
  const planInput: PlanInput = { schema: main.schema!, mapping, partitionSpec: main.partitionSpec };
  let plan: Plan;
  try {
    plan = compilePlan(planInput);
  } catch (e) {
    // The job's mapping does not fit the table as it is (a column it names is gone, a required
    // column it cannot fill): FAILED_PRECONDITION, so ingestion fails the job with this reason
    // instead of reopening the stream to meet the same answer forever.
    if (e instanceof SluiceError)
      throw new SluiceError(status.FAILED_PRECONDITION, `mapping for table ${tableName(table)}: ${e.message}`, e.details);
    throw e;
  }
  const lastColumnId = Math.max(main.lastColumnId, ...main.schema!.fields.map((f) => f.id));
  const files = tableFiles(main, open.workerId, fileSettings);
  const errorTable = mapping.errorPolicy?.kind === ErrorPolicyKind.ERROR_POLICY_KIND_ERROR_TABLE ? mapping.errorPolicy.errorTable! : null;
  const errorSink = errorTable ? errorTableSink(errorTable, await loadTable(catalog, errorTable), open.workerId, fileSettings) : null;
  return { table, plan, planInput, lastColumnId, files, errorSink };
}

function checkOpen(open: TransformOpen): { table: TableRef; mapping: NonNullable<TransformOpen['mapping']> } {
  if (!open.job) throw invalidArgument('TransformOpen.job is required', { field: 'job' });
  if (!open.workerId) throw invalidArgument('TransformOpen.worker_id is required', { field: 'worker_id' });
  if (!open.table?.database || !open.table.table)
    throw invalidArgument('TransformOpen.table must name a database and a table', { field: 'table' });
  if (!open.mapping) throw invalidArgument('TransformOpen.mapping is required', { field: 'mapping' });
  if (!(open.flushBufferBytes >= 0))
    throw invalidArgument(`TransformOpen.flush_buffer_bytes ${open.flushBufferBytes} must be >= 0`, { field: 'flush_buffer_bytes' });
  const bad = validatePolicy(open.mapping.errorPolicy);
  if (bad) throw invalidArgument(bad, { field: 'mapping.error_policy' });
  return { table: open.table, mapping: open.mapping };
}

/** A table from the catalog, with its schema; one the catalog does not know is the job's problem, not the request's. */
async function loadTable(catalog: CatalogClient, ref: TableRef): Promise<Table> {
  let table: Table | undefined;
  try {
    ({ table } = await catalog.getTable({ ref }));
  } catch (err) {
    if (grpcCode(err) === status.NOT_FOUND)
      throw failedPrecondition(`table ${tableName(ref)} does not exist in the catalog`, { table: tableName(ref) });
    throw unavailable(`could not load table ${tableName(ref)} from the catalog: ${grpcMessage(err)}`, { table: tableName(ref) });
  }
  if (!table?.schema) throw failedPrecondition(`table ${tableName(ref)} has no schema in the catalog`, { table: tableName(ref) });
  return table;
}
