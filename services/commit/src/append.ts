/**
 * One append commit: the admitted files of a flush round become a snapshot, committed
 * together with the offsets they cover and the lease epoch, rebased on ABORTED.
 */
import { InstanceKind, type Job, type TableUpdate } from '#shared/gen/sluice/v1/catalog.js';
import type { DataFile, ErrorCount, OffsetRange, Schema, TableRef } from '#shared/gen/sluice/v1/types.js';
import type { Storage } from '#shared/storage/index.js';
import {
  addSchema,
  currentSchema,
  newSnapshotId,
  schemaFromProto,
  schemaToProto,
  type ManifestFile,
  type TableMetadata,
} from '#shared/iceberg/index.js';
import { commitWithRebase, tableName, type CatalogClient } from './catalog.js';
import { CommitError } from './errors.js';
import { mergeReportedSchemas } from './schema-merge.js';
import { addedEntries, currentManifests, mergeIfNeeded, removeFiles, writeManifests, writeSnapshot } from './snapshots.js';

export const SLUICE_SUMMARY = {
  job: 'sluice.job',
  flushId: 'sluice.flush-id',
  offsets: 'sluice.offsets',
  /** A scheduled instance's commit that replaced its partition: `column=value`. */
  replaced: 'sluice.replaced-partition',
} as const;

/** `sluice.offsets`: the committed ranges as compact JSON, one entry per Kafka partition. */
export function offsetsSummary(offsets: readonly OffsetRange[]): string {
  return JSON.stringify(offsets.map((r) => ({ topic: r.topic, partition: r.partition, start: r.startOffset, end: r.endOffset })));
}

/** The admitted reports' refused-record counts as one list, summed by reason, sorted by reason. */
export function sumErrorCounts(lists: readonly (readonly ErrorCount[])[]): ErrorCount[] {
  const byReason = new Map<string, number>();
  for (const list of lists) for (const { reason, count } of list) byReason.set(reason, (byReason.get(reason) ?? 0) + count);
  return [...byReason].map(([reason, count]) => ({ reason, count })).sort((a, b) => a.reason.localeCompare(b.reason));
}

export interface AppendRequest {
  catalog: CatalogClient;
  storage: Storage;
  ref: TableRef;
  job: string;
  flushId: string;
  files: readonly DataFile[];
  offsets: readonly OffsetRange[];
  leaseEpoch: number;
  maxAttempts?: number;
  /** The schema the files were written with when the workers evolved the table's (schema-merge.ts). */
  schema?: Schema;
  /** Records refused among the offsets, by reason: the catalog adds them to the job's counts. */
  errorCounts?: ErrorCount[];
  /**
   * A scheduled instance's first commit: the files of this partition (identity column = value)
   * are removed in the same snapshot, so a rerun replaces what the instance wrote before.
   */
  replacePartition?: PartitionRef;
}

/** One identity partition of a table: its column and value. */
export interface PartitionRef {
  column: string;
  value: string;
}

/**
 * The partition a scheduled instance's run or rerun replaces at its first commit; a late
 * append adds to it, and any other job replaces nothing.
 */
export function instancePartition(job: Job): PartitionRef | undefined {
  const column = job.mapping?.partitionBy?.column;
  if (!job.instance || job.instance.kind === InstanceKind.INSTANCE_KIND_LATE_APPEND || !column) return undefined;
  return { column, value: job.instance.partitionValue };
}

/** Whether a data file lies in the partition. */
export function inPartition(file: DataFile, p: PartitionRef): boolean {
  return file.partition.some((v) => v.name === p.column && v.value?.kind?.$case === 'stringValue' && v.value.kind.value === p.value);
}

/** The refused records' rows of one flush, appended to a job's error table. */
export type ErrorAppendRequest = Omit<AppendRequest, 'offsets' | 'leaseEpoch' | 'errorCounts'>;

export interface AppendResult {
  snapshotId: number;
  addedRecords: number;
  addedFiles: number;
  attempts: number;
}

/** A job's data files, committed with the offsets they cover under the table's lease. */
export function commitAppend(req: AppendRequest): Promise<AppendResult> {
  return append(req, {
    summary: {
      [SLUICE_SUMMARY.job]: req.job,
      [SLUICE_SUMMARY.flushId]: req.flushId,
      [SLUICE_SUMMARY.offsets]: offsetsSummary(req.offsets),
    },
    commit: { job: req.job, offsets: [...req.offsets], leaseEpoch: req.leaseEpoch, errorCounts: req.errorCounts ?? [] },
    replacePartition: req.replacePartition,
  });
}

/**
 * Error-table files (DESIGN.md, "Error table"): the catalog refuses a job on a table the job
 * does not write, and the offsets belong to the job's own table, so this commit carries
 * neither, and no lease epoch: with no offsets to protect, a fenced coordinator could at worst
 * append rows that are duplicates anyway. `sluice.job` in the summary says whose rows they are.
 */
export function commitErrorAppend(req: ErrorAppendRequest): Promise<AppendResult> {
  return append(req, {
    summary: { [SLUICE_SUMMARY.job]: req.job, [SLUICE_SUMMARY.flushId]: req.flushId },
    commit: { job: '', offsets: [], leaseEpoch: 0, errorCounts: [] },
  });
}

interface AppendShape {
  summary: Record<string, string>;
  commit: { job: string; offsets: OffsetRange[]; leaseEpoch: number; errorCounts: ErrorCount[] };
  replacePartition?: PartitionRef;
}

async function append(req: ErrorAppendRequest, shape: AppendShape): Promise<AppendResult> {
  const snapshotId = newSnapshotId();
  let manifests: ManifestFile[] | undefined;
  const { attempts } = await commitWithRebase({
    catalog: req.catalog,
    storage: req.storage,
    ref: req.ref,
    maxAttempts: req.maxAttempts,
    async build(loaded) {
      const { metadata, schemaUpdate } = evolvedMetadata(loaded.metadata, req);
      // Written once: ADDED entries inherit their sequence number, so a rebase reuses them.
      manifests ??= await writeManifests(req.storage, metadata, snapshotId, addedEntries(snapshotId, req.files));
      const replace = shape.replacePartition;
      // Replacing a partition: its live files are found again on every rebase, on the snapshot committed on.
      const { rewritten, carried, removed } = replace
        ? await removeFiles(req.storage, metadata, snapshotId, (f) => inPartition(f, replace))
        : { rewritten: [], carried: await currentManifests(req.storage, metadata), removed: [] };
      const snapshot = await writeSnapshot(req.storage, metadata, {
        snapshotId,
        operation: removed.length > 0 ? 'overwrite' : 'append',
        manifests: [...manifests, ...rewritten],
        carried: await mergeIfNeeded(req.storage, metadata, snapshotId, carried),
        added: req.files,
        removed,
        extraSummary: replace ? { ...shape.summary, [SLUICE_SUMMARY.replaced]: `${replace.column}=${replace.value}` } : shape.summary,
      });
      return { updates: [...schemaUpdate, { update: { $case: 'addSnapshot', value: snapshot } }], ...shape.commit };
    },
  });
  return {
    snapshotId,
    addedRecords: req.files.reduce((n, f) => n + f.recordCount, 0),
    addedFiles: req.files.length,
    attempts,
  };
}

/**
 * The table as the snapshot sees it: with the workers' evolved schema added when it changes
 * the current one (checked again on every rebase), and the update that commits that schema in
 * the same CommitTable, before the snapshot.
 */
function evolvedMetadata(metadata: TableMetadata, req: ErrorAppendRequest): { metadata: TableMetadata; schemaUpdate: TableUpdate[] } {
  if (!req.schema) return { metadata, schemaUpdate: [] };
  const merge = mergeReportedSchemas(schemaToProto(currentSchema(metadata)), metadata['last-column-id'], [req.schema]);
  if (merge.misfits.length > 0) throw new CommitError('invalid-report', `${tableName(req.ref)}: ${merge.misfits[0].reason}`);
  if (!merge.schema) return { metadata, schemaUpdate: [] };
  return {
    metadata: addSchema(metadata, schemaFromProto(merge.schema)),
    schemaUpdate: [{ update: { $case: 'addSchema', value: { schema: merge.schema } } }],
  };
}
