/**
 * Snapshot summaries with the standard keys (spec, "Optional Snapshot Summary Fields"), so
 * engines and `sluice` can show what each commit did without opening manifests. Totals
 * are carried from the parent snapshot's summary.
 */
import type { DataFile } from '../gen/sluice/v1/types.js';
import type { SnapshotOperation } from './types.js';

export const SUMMARY_KEYS = {
  operation: 'operation',
  addedDataFiles: 'added-data-files',
  deletedDataFiles: 'deleted-data-files',
  addedRecords: 'added-records',
  deletedRecords: 'deleted-records',
  addedFilesSize: 'added-files-size',
  removedFilesSize: 'removed-files-size',
  changedPartitionCount: 'changed-partition-count',
  totalRecords: 'total-records',
  totalFilesSize: 'total-files-size',
  totalDataFiles: 'total-data-files',
  totalDeleteFiles: 'total-delete-files',
  totalPositionDeletes: 'total-position-deletes',
  totalEqualityDeletes: 'total-equality-deletes',
  addedDeleteFiles: 'added-delete-files',
  addedPositionDeleteFiles: 'added-position-delete-files',
  addedPositionDeletes: 'added-position-deletes',
  removedDeleteFiles: 'removed-delete-files',
  removedPositionDeleteFiles: 'removed-position-delete-files',
  removedPositionDeletes: 'removed-position-deletes',
} as const;

export interface SummaryChanges {
  added?: readonly DataFile[];
  /** Files removed from the table (compaction rewrites, overwrites, deletes). */
  removed?: readonly DataFile[];
  /** Position delete files added (a keyed table's commit). */
  addedDeletes?: readonly DataFile[];
  /** Position delete files removed (compaction applied them). */
  removedDeletes?: readonly DataFile[];
}

function partitionKey(f: DataFile): string {
  return `${f.specId}|${JSON.stringify(f.partition.map((p) => [p.fieldId, p.value?.kind?.value ?? null]))}`;
}

const total = (parent: Record<string, string> | undefined, key: string) => {
  const n = Number(parent?.[key] ?? 0);
  return Number.isFinite(n) ? n : 0;
};

/**
 * Builds the summary of a snapshot. Added/deleted keys appear only when non-zero (as Java
 * writes them); totals always appear and never go below zero.
 */
export function buildSummary(
  operation: SnapshotOperation,
  changes: SummaryChanges,
  parentSummary?: Record<string, string>,
  extra: Record<string, string> = {},
): Record<string, string> & { operation: string } {
  const added = changes.added ?? [];
  const removed = changes.removed ?? [];
  const sum = (files: readonly DataFile[], f: (d: DataFile) => number) => files.reduce((a, d) => a + f(d), 0);
  const addedRecords = sum(added, (d) => d.recordCount);
  const removedRecords = sum(removed, (d) => d.recordCount);
  const addedSize = sum(added, (d) => d.fileSizeInBytes);
  const removedSize = sum(removed, (d) => d.fileSizeInBytes);
  const addedDeletes = changes.addedDeletes ?? [];
  const removedDeletes = changes.removedDeletes ?? [];
  const addedPositions = sum(addedDeletes, (d) => d.recordCount);
  const removedPositions = sum(removedDeletes, (d) => d.recordCount);
  const partitions = new Set([...added, ...removed, ...addedDeletes, ...removedDeletes].map(partitionKey));

  const out: Record<string, string> & { operation: string } = { ...extra, operation };
  const put = (key: string, n: number) => {
    if (n !== 0) out[key] = String(n);
  };
  put(SUMMARY_KEYS.addedDataFiles, added.length);
  put(SUMMARY_KEYS.deletedDataFiles, removed.length);
  put(SUMMARY_KEYS.addedRecords, addedRecords);
  put(SUMMARY_KEYS.deletedRecords, removedRecords);
  put(SUMMARY_KEYS.addedFilesSize, addedSize);
  put(SUMMARY_KEYS.removedFilesSize, removedSize);
  put(SUMMARY_KEYS.addedDeleteFiles, addedDeletes.length);
  put(SUMMARY_KEYS.addedPositionDeleteFiles, addedDeletes.length);
  put(SUMMARY_KEYS.addedPositionDeletes, addedPositions);
  put(SUMMARY_KEYS.removedDeleteFiles, removedDeletes.length);
  put(SUMMARY_KEYS.removedPositionDeleteFiles, removedDeletes.length);
  put(SUMMARY_KEYS.removedPositionDeletes, removedPositions);
  out[SUMMARY_KEYS.changedPartitionCount] = String(partitions.size);
  const carry = (key: string, delta: number) => (out[key] = String(Math.max(0, total(parentSummary, key) + delta)));
  carry(SUMMARY_KEYS.totalRecords, addedRecords - removedRecords);
  carry(SUMMARY_KEYS.totalFilesSize, addedSize - removedSize);
  carry(SUMMARY_KEYS.totalDataFiles, added.length - removed.length);
  carry(SUMMARY_KEYS.totalDeleteFiles, addedDeletes.length - removedDeletes.length);
  carry(SUMMARY_KEYS.totalPositionDeletes, addedPositions - removedPositions);
  carry(SUMMARY_KEYS.totalEqualityDeletes, 0);
  return out;
}
