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
  FileContent,
  newSnapshotId,
  schemaFromProto,
  schemaToProto,
  type ManifestFile,
  type TableMetadata,
} from '#shared/iceberg/index.js';
import { commitWithRebase, tableName, type CatalogClient, type CommitBody } from './catalog.js';
import { writePositionDeletes, type FilePartition } from './position-deletes.js';
import { planRowDeletes, roundRows, type ReportRows, type RoundRows } from './row-changes.js';
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
  /**
   * A keyed table (mapping.changes): the admitted reports, whose row changes become position
   * deletes of the rows their keys had, committed with the files and the row index.
   */
  rows?: readonly ReportRows[];
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
    rows: req.rows,
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
  rows?: readonly ReportRows[];
}

/** A keyed commit's position deletes and the row index and counts that go with them. */
interface RowDeletes {
  files: DataFile[];
  manifests: ManifestFile[];
  body: Pick<CommitBody, 'rowKeys' | 'changeCounts'>;
}

/**
 * Resolves a keyed round against the row index as of the snapshot being committed on (called
 * again on every rebase: a compaction in between moves rows). The previous attempt's delete
 * files are dropped first; nothing references them.
 */
async function rowDeletes(
  req: ErrorAppendRequest,
  metadata: TableMetadata,
  snapshotId: number,
  round: RoundRows,
  previous: readonly DataFile[],
): Promise<RowDeletes> {
  for (const f of previous) await req.storage.delete(f.filePath).catch(() => false);
  const keys = [...round.last.keys()];
  const { rows, files: indexed } =
    keys.length > 0 ? await req.catalog.lookupRowKeys({ ref: req.ref, keys, filePaths: [] }) : { rows: [], files: [] };
  const plan = planRowDeletes(round, rows, req.files);
  const partitions = new Map<string, FilePartition>([...indexed, ...req.files].map((f) => [f.filePath, f]));
  const files = await writePositionDeletes(req.storage, metadata.location, plan.positions, (path) => partitions.get(path));
  const manifests =
    files.length > 0
      ? await writeManifests(req.storage, metadata, snapshotId, addedEntries(snapshotId, files, FileContent.POSITION_DELETES), 'deletes')
      : [];
  return { files, manifests, body: { rowKeys: plan.index, changeCounts: plan.counts } };
}

async function append(req: ErrorAppendRequest, shape: AppendShape): Promise<AppendResult> {
  const snapshotId = newSnapshotId();
  let manifests: ManifestFile[] | undefined;
  const round = shape.rows ? roundRows(shape.rows) : undefined;
  let deletes: RowDeletes | undefined;
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
      const { rewritten, carried, removed, removedDeletes } = replace
        ? await removeFiles(req.storage, metadata, snapshotId, (f) => inPartition(f, replace))
        : { rewritten: [], carried: await currentManifests(req.storage, metadata), removed: [], removedDeletes: [] };
      if (round) deletes = await rowDeletes(req, metadata, snapshotId, round, deletes?.files ?? []);
      const deleteFiles = deletes?.files ?? [];
      const snapshot = await writeSnapshot(req.storage, metadata, {
        snapshotId,
        operation: snapshotOperation(req.files.length, removed.length + deleteFiles.length),
        manifests: [...manifests, ...rewritten, ...(deletes?.manifests ?? [])],
        carried: await mergeIfNeeded(req.storage, metadata, snapshotId, carried),
        added: req.files,
        removed,
        addedDeletes: deleteFiles,
        removedDeletes,
        extraSummary: replace ? { ...shape.summary, [SLUICE_SUMMARY.replaced]: `${replace.column}=${replace.value}` } : shape.summary,
      });
      return { updates: [...schemaUpdate, { update: { $case: 'addSnapshot', value: snapshot } }], ...shape.commit, ...deletes?.body };
    },
  });
  return {
    snapshotId,
    addedRecords: req.files.reduce((n, f) => n + f.recordCount, 0),
    addedFiles: req.files.length,
    attempts,
  };
}

/** append when only adding, overwrite when adding and removing rows, delete when only removing (as Iceberg's Java writers name them). */
export function snapshotOperation(addedFiles: number, removals: number): 'append' | 'overwrite' | 'delete' {
  if (removals === 0) return 'append';
  return addedFiles > 0 ? 'overwrite' : 'delete';
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
