/**
 * Orphan cleanup: deletes files under the table location that nothing live refers to —
 * data files of dropped reports and failed commits, manifests and manifest lists of
 * retried or expired snapshots, superseded metadata files — once they are older than the
 * safety margin. The margin is what keeps a file a worker is still writing, or one a commit
 * in flight is about to reference, out of reach; files in reports not yet committed are
 * excluded explicitly as well.
 */
import type { TableRef } from '#shared/gen/sluice/v1/types.js';
import { referencedLocations } from '#shared/iceberg/index.js';
import { normalizeLocation } from '#shared/storage/index.js';
import { loadTable } from '../catalog.js';
import type { CoordinatorContext } from '../context.js';

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
