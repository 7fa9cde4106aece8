/**
 * Which tables a job writes: its own table and, under the ERROR_TABLE policy, its error table.
 * A report names a table; this tells the coordinator whether it carries the job's data (its
 * own table, committed with offsets) or its refused records (the error table, committed in the
 * same round as the data report it came with; DESIGN.md, "Error table").
 *
 * Jobs are read from the catalog once and cached; a report naming a table the cached job does
 * not write reads the job again (it may have been edited) before it is refused.
 */
import { ErrorPolicyKind, type TableRef } from '#shared/gen/sluice/v1/types.js';
import type { Job } from '#shared/gen/sluice/v1/catalog.js';
import { status } from '@grpc/grpc-js';
import { failedPrecondition, grpcCode, grpcMessage, notFound, unavailable } from '#shared/errors.js';
import { tableName, type CatalogClient } from './catalog.js';

export interface JobTargets {
  table: TableRef;
  errorTable: TableRef | undefined;
}

/** Where a report goes: the job's own table's pipeline, as its data or as its error rows. */
export type ReportRole = { kind: 'data' | 'errors'; jobTable: TableRef };

const same = (a: TableRef | undefined, b: TableRef) => a !== undefined && a.database === b.database && a.table === b.table;

/** The tables a job spec writes. */
export function targetsOf(job: Job): JobTargets {
  const policy = job.mapping?.errorPolicy;
  const errorTable = policy?.kind === ErrorPolicyKind.ERROR_POLICY_KIND_ERROR_TABLE ? policy.errorTable : undefined;
  return { table: job.table!, errorTable };
}

/** The role of a report of this job naming `ref`, or undefined when the job does not write it. */
export function roleOf(targets: JobTargets, ref: TableRef): ReportRole | undefined {
  if (same(targets.table, ref)) return { kind: 'data', jobTable: targets.table };
  if (same(targets.errorTable, ref)) return { kind: 'errors', jobTable: targets.table };
  return undefined;
}

export class JobTables {
  private readonly cache = new Map<string, JobTargets>();

  constructor(private readonly catalog: CatalogClient) {}

  /** Throws NOT_FOUND for an unknown job, FAILED_PRECONDITION for a table the job does not write. */
  async role(job: string, ref: TableRef): Promise<ReportRole> {
    const cached = this.cache.get(job);
    const hit = cached && roleOf(cached, ref);
    if (hit) return hit;
    const targets = await this.load(job);
    const role = roleOf(targets, ref);
    if (role) return role;
    const errors = targets.errorTable ? `error table ${tableName(targets.errorTable)}` : 'no error table';
    throw failedPrecondition(
      `job ${job} does not write to table ${tableName(ref)} (it writes ${tableName(targets.table)}, with ${errors})`,
      {
        job,
        table: tableName(ref),
      },
    );
  }

  private async load(job: string): Promise<JobTargets> {
    let spec: Job | undefined;
    try {
      ({ job: spec } = await this.catalog.getJob({ name: job }));
    } catch (err) {
      if (grpcCode(err) !== status.NOT_FOUND) throw unavailable(`could not read job ${job} from the catalog: ${grpcMessage(err)}`, { job });
    }
    if (!spec?.table) throw notFound(`job ${job} does not exist in the catalog`, { job });
    const targets = targetsOf(spec);
    this.cache.set(job, targets);
    return targets;
  }
}
