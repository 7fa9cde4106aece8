/**
 * Reading a snapshot: which data files are live in it. Used by the query path (DuckDB over
 * the files), and by maintenance (orphan cleanup, compaction, expiry) in the commit service.
 */
import type { Storage } from '../storage/storage.js';
import { IcebergError } from './errors.js';
import { EntryStatus, FileContent, readManifest, type ManifestEntry } from './manifest.js';
import { readManifestList, type ManifestFile } from './manifest-list.js';
import { currentSnapshot, snapshotById } from './metadata.js';
import type { SnapshotJson, TableMetadata } from './types.js';

/** A live data file of a snapshot, with the manifest it is listed in. */
export interface LiveDataFile extends ManifestEntry {
  manifestPath: string;
}

export interface SnapshotFiles {
  snapshot: SnapshotJson;
  manifests: ManifestFile[];
  dataFiles: LiveDataFile[];
  /**
   * Live position delete files (a keyed table's). Each applies to the data files of its
   * partition whose data sequence number is at most its own (spec, "Scan Planning").
   */
  positionDeletes: LiveDataFile[];
}

/**
 * The snapshot a reader asked for: by id, as of a time (the last snapshot committed at or
 * before it, following the snapshot log like Iceberg's time travel), or the current one.
 * Undefined when the table has no snapshot yet. A time before the table's first snapshot is
 * refused naming that snapshot's time, as Iceberg's time travel refuses it: an empty answer
 * would read as "the table was empty then".
 */
export function resolveSnapshot(meta: TableMetadata, selector: { snapshotId?: number; asOfMs?: number } = {}): SnapshotJson | undefined {
  if (selector.snapshotId !== undefined) {
    const snapshot = snapshotById(meta, selector.snapshotId);
    if (!snapshot)
      throw new IcebergError('not-found', `snapshot ${selector.snapshotId} does not exist (it may have been expired)`, 'snapshot-id');
    return snapshot;
  }
  if (selector.asOfMs !== undefined) {
    let chosen: number | undefined;
    for (const entry of meta['snapshot-log']) if (entry['timestamp-ms'] <= selector.asOfMs) chosen = entry['snapshot-id'];
    if (chosen === undefined) {
      const first = meta['snapshot-log'][0];
      const asOf = new Date(selector.asOfMs).toISOString();
      throw new IcebergError(
        'not-found',
        first
          ? `no snapshot as of ${asOf}: the table's first snapshot (${first['snapshot-id']}) was committed at ${new Date(first['timestamp-ms']).toISOString()}`
          : `no snapshot as of ${asOf}: the table has no snapshot yet`,
        'timestamp-ms',
      );
    }
    const snapshot = snapshotById(meta, chosen);
    if (!snapshot) throw new IcebergError('not-found', `snapshot ${chosen}, current at that time, has been expired`, 'snapshot-id');
    return snapshot;
  }
  return currentSnapshot(meta);
}

/**
 * Reads the manifest list and manifests of a snapshot and returns its live data files and
 * position delete files. Equality deletes (Sluice writes none) are refused: a reader that
 * skipped them would show deleted rows.
 */
export async function snapshotFiles(storage: Storage, snapshot: SnapshotJson): Promise<SnapshotFiles> {
  const manifests = readManifestList(await storage.read(snapshot['manifest-list']));
  const dataFiles: LiveDataFile[] = [];
  const positionDeletes: LiveDataFile[] = [];
  for (const manifest of manifests) {
    const { entries } = readManifest(await storage.read(manifest.manifestPath), {
      snapshotId: manifest.addedSnapshotId,
      sequenceNumber: manifest.sequenceNumber ?? snapshot['sequence-number'],
    });
    for (const entry of entries) {
      if (entry.status === EntryStatus.DELETED) continue;
      const content = entry.content ?? FileContent.DATA;
      if (content === FileContent.EQUALITY_DELETES)
        throw new IcebergError(
          'invalid',
          `snapshot ${snapshot['snapshot-id']} has equality delete file ${entry.dataFile.filePath}, which Sluice does not read`,
        );
      (content === FileContent.DATA ? dataFiles : positionDeletes).push({ ...entry, manifestPath: manifest.manifestPath });
    }
  }
  return { snapshot, manifests, dataFiles, positionDeletes };
}
