/**
 * The files an Iceberg table's metadata refers to. The commit service's orphan cleanup keeps
 * these and deletes the rest; the catalog's purge deletes these and nothing else, as Iceberg's
 * own purge does, so a file beside the table that no snapshot names is never removed by it.
 */
import { normalizeLocation } from '../storage/paths.js';
import type { Storage } from '../storage/storage.js';
import { readManifest, EntryStatus } from './manifest.js';
import { readManifestList } from './manifest-list.js';
import type { TableMetadata } from './types.js';

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
