/**
 * A keyed table's round of row changes, resolved into position deletes (DESIGN.md, "Upsert
 * tables"). Pure: the reports' changes and the row index's answer in, the positions to delete,
 * the index's new entries and the change counts out.
 *
 * Each report's rows are already the last change of their key in that report (the stream
 * collapses them); across the reports of one round a later report wins, unless both changes
 * carry source positions (Debezium's LSN, DTS's recordID) and its is older: a key that moved
 * between Kafka partitions keeps its latest change by the database's order. A row of this
 * round's files that a later report replaces is deleted by position like any older row. Position
 * deletes apply to data files with a sequence number up to their own, so deleting a row of a
 * file added in the same snapshot is valid.
 */
import type { FileRows, IndexedFile, RowKeyChanges } from '#shared/gen/sluice/v1/catalog.js';
import type { ChangeCounts, DataFile, RowChanges } from '#shared/gen/sluice/v1/types.js';
import { CommitError } from './errors.js';

export interface ReportRows {
  workerId: string;
  files: readonly DataFile[];
  changes: RowChanges | undefined;
}

/** Where a row is: its data file and its position in it. */
export interface RowAt {
  filePath: string;
  pos: number;
}

export interface RoundRows {
  /** Each changed key's last change in the round: its new row, or null for a delete. */
  last: Map<string, RowAt | null>;
  /** Rows of this round's files whose key a later report changed again. */
  superseded: RowAt[];
}

/**
 * The last change per key of the round's reports, in report order. A report whose changes do
 * not describe its files (a file without keys, a key count that is not the file's row count)
 * is refused: the coordinator could not know which rows to delete later.
 */
export function roundRows(reports: readonly ReportRows[]): RoundRows {
  const last = new Map<string, RowAt | null>();
  const positionOf = new Map<string, number>();
  const superseded: RowAt[] = [];
  const replace = (key: string, next: RowAt | null, position = 0) => {
    const before = last.get(key);
    const beforePosition = positionOf.get(key) ?? 0;
    if (before !== undefined && position > 0 && beforePosition > 0 && position < beforePosition) {
      // Older by source position (the key moved between Kafka partitions): the change kept stands.
      if (next) superseded.push(next);
      return;
    }
    if (before) superseded.push(before);
    last.set(key, next);
    positionOf.set(key, position);
  };
  for (const report of reports) {
    const changes = report.changes;
    if (!changes) {
      if (report.files.length > 0)
        throw new CommitError('invalid-report', `worker ${report.workerId} reported data files of a keyed table without their keys`);
      continue;
    }
    const keysByFile = new Map(changes.files.map((f) => [f.filePath, f]));
    for (const file of report.files) {
      const described = keysByFile.get(file.filePath);
      const keys = described?.keys;
      if (!keys || keys.length !== file.recordCount)
        throw new CommitError(
          'invalid-report',
          `worker ${report.workerId} reported ${keys?.length ?? 0} keys for data file ${file.filePath} of ${file.recordCount} rows`,
        );
      const positions = described!.positions;
      for (let pos = 0; pos < keys.length; pos++) replace(keys[pos], { filePath: file.filePath, pos }, positions[pos]);
    }
    changes.deletedKeys.forEach((key, i) => {
      replace(key, null, changes.deletedPositions[i]);
    });
  }
  return { last, superseded };
}

export interface DeletePlan {
  /** Positions to delete, by data file, ascending. */
  positions: Map<string, number[]>;
  /** The row index after the commit. */
  index: RowKeyChanges;
  counts: ChangeCounts;
}

/**
 * The round's changes against the rows the index found for its keys: every found row is
 * deleted (replaced or removed), every superseded new row too; a key whose last change is a row
 * points at it from now on, a deleted key leaves the index. A delete of a key with no row does
 * nothing and counts nowhere.
 */
export function planRowDeletes(round: RoundRows, found: readonly FileRows[], newFiles: readonly DataFile[]): DeletePlan {
  const positions = new Map<string, number[]>();
  const remove = (filePath: string, pos: number) => {
    const list = positions.get(filePath);
    if (list) list.push(pos);
    else positions.set(filePath, [pos]);
  };
  const counts: ChangeCounts = { inserted: 0, updated: 0, deleted: 0 };
  const existing = new Set<string>();
  for (const file of found) {
    file.keys.forEach((key, i) => {
      if (!round.last.has(key)) return; // not asked for: nothing of ours
      existing.add(key);
      remove(file.filePath, file.positions[i]);
      if (round.last.get(key)) counts.updated++;
      else counts.deleted++;
    });
  }
  for (const at of round.superseded) remove(at.filePath, at.pos);
  for (const list of positions.values()) list.sort((a, b) => a - b);

  const byFile = new Map<string, FileRows>();
  const deletes: string[] = [];
  for (const [key, at] of round.last) {
    if (at) {
      let rows = byFile.get(at.filePath);
      if (!rows) byFile.set(at.filePath, (rows = { filePath: at.filePath, keys: [], positions: [] }));
      rows.keys.push(key);
      rows.positions.push(at.pos);
      if (!existing.has(key)) counts.inserted++;
    } else if (existing.has(key)) deletes.push(key);
  }
  const files: IndexedFile[] = newFiles
    .filter((f) => byFile.has(f.filePath))
    .map((f) => ({ filePath: f.filePath, specId: f.specId, partition: f.partition }));
  return { positions, index: { upserts: [...byFile.values()], deletes, files, droppedFiles: [] }, counts };
}
