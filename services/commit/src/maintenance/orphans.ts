/**
 * Orphan cleanup: deletes files under the table location that nothing live refers to —
 * data files of dropped reports and failed commits, manifests and manifest lists of
 * retried or expired snapshots, superseded metadata files — once they are older than the
 * safety margin. The margin is what keeps a file a worker is still writing, or one a commit
 * in flight is about to reference, out of reach; files in reports not yet committed are
 * excluded explicitly as well.
 */
import type { TableRef } from '#shared/gen/sluice/v1/types.js';
import { EntryStatus, readManifest, readManifestList, type TableMetadata } from '#shared/iceberg/index.js';
import { normalizeLocation, type Storage } from '#shared/storage/index.js';
import { loadTable } from '../catalog.js';
import type { CoordinatorContext } from '../context.js';

/** Every location the table's live snapshots and metadata refer to, normalized. */
export async function referencedLocations(storage: Storage, meta: TableMetadata, metadataLocation: string): Promise<Set<string>> {
  const refs = new Set<string>();
  const add = (l: string) => refs.add(normalizeLocation(l));
  add(metadataLocation);
  for (const entry of meta['metadata-log']) add(entry['metadata-file']);
  const seenManifests = new Set<string>();
  for (const snapshot of meta.snapshots) {
    add(snapshot['manifest-list']);
    for (const manifest of readManifestList(await storage.read(snapshot['manifest-list']))) {
      add(manifest.manifestPath);
      if (seenManifests.has(manifest.manifestPath)) continue;
      seenManifests.add(manifest.manifestPath);
      // A DELETED entry names a file this snapshot removed: it is needed only by older
      // snapshots, and each of those lists it as ADDED or EXISTING if it is still live.
      for (const e of readManifest(await storage.read(manifest.manifestPath)).entries) {
        if (e.status !== EntryStatus.DELETED) add(e.dataFile.filePath);
      }
    }
  }
  return refs;
}

export interface OrphanCleanup {
  deleted: string[];
  /** Unreferenced but younger than the margin: left for a later pass. */
  tooYoung: number;
}

/** Selects the orphans among listed files. Pure. */
export function selectOrphans(
  files: readonly { location: string; modifiedMs: number }[],
  referenced: ReadonlySet<string>,
  pending: ReadonlySet<string>,
  cutoffMs: number,
): { orphans: string[]; tooYoung: number } {
  const orphans: string[] = [];
  let tooYoung = 0;
  for (const f of files) {
    const key = normalizeLocation(f.location);
    if (referenced.has(key) || pending.has(key)) continue;
    if (f.modifiedMs > cutoffMs) tooYoung++;
    else orphans.push(f.location);
  }
  return { orphans, tooYoung };
}

export async function removeOrphans(
  ctx: CoordinatorContext,
  ref: TableRef,
  options: { nowMs: number; minAgeMs?: number; pendingFiles?: ReadonlySet<string> },
): Promise<OrphanCleanup> {
  const { table, metadata } = await loadTable(ctx.catalog, ctx.storage, ref);
  // List after reading the metadata: a file committed after that read is younger than the
  // margin (it was written after we started), so it cannot be mistaken for an orphan.
  const referenced = await referencedLocations(ctx.storage, metadata, table.metadataLocation);
  const files = await ctx.storage.list(metadata.location);
  const pending = new Set([...(options.pendingFiles ?? [])].map((l) => normalizeLocation(l)));
  const cutoff = options.nowMs - (options.minAgeMs ?? ctx.settings.orphanMinAgeMs);
  const { orphans, tooYoung } = selectOrphans(files, referenced, pending, cutoff);
  const deleted: string[] = [];
  for (const location of orphans) if (await ctx.storage.delete(location)) deleted.push(location);
  return { deleted, tooYoung };
}
