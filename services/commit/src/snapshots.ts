/**
 * Building snapshots with the shared Iceberg module: manifests for new files, manifest
 * lists on top of the current snapshot, and the AddSnapshot update the catalog applies.
 *
 * Manifests are written once per commit attempt series: ADDED entries leave their sequence
 * number null (inherited from the manifest list), so when CommitTable answers ABORTED only
 * the manifest list is rewritten on top of the new current snapshot.
 */
import { randomUUID } from 'node:crypto';
import type { AddSnapshot } from '#shared/gen/sluice/v1/catalog.js';
import type { DataFile } from '#shared/gen/sluice/v1/types.js';
import {
  EntryStatus,
  FileContent,
  ManifestContent,
  buildSummary,
  currentSchema,
  currentSnapshot,
  manifestFileFor,
  readManifest,
  readManifestList,
  writeManifest,
  writeManifestList,
  type ManifestEntry,
  type ManifestFile,
  type SnapshotOperation,
  type TableMetadata,
} from '#shared/iceberg/index.js';
import type { Storage } from '#shared/storage/index.js';
import { snapshotFiles } from '#shared/iceberg/scan.js';
import { CommitError } from './errors.js';

export const metadataDir = (meta: TableMetadata) => `${meta.location}/metadata`;

/** The spec a file was written for; a file naming an unknown spec is a bad report. */
function specFor(meta: TableMetadata, file: DataFile) {
  const spec = meta['partition-specs'].find((s) => s['spec-id'] === file.specId);
  if (!spec)
    throw new CommitError(
      'invalid-report',
      `data file ${file.filePath} names partition spec ${file.specId}, which the table does not have`,
    );
  return spec;
}

/** Writes manifests for entries (one per partition spec) and returns their list entries. */
export async function writeManifests(
  storage: Storage,
  meta: TableMetadata,
  snapshotId: number,
  entries: readonly ManifestEntry[],
  content: 'data' | 'deletes' = 'data',
): Promise<ManifestFile[]> {
  const bySpec = new Map<number, ManifestEntry[]>();
  for (const e of entries) {
    specFor(meta, e.dataFile);
    const list = bySpec.get(e.dataFile.specId);
    if (list) list.push(e);
    else bySpec.set(e.dataFile.specId, [e]);
  }
  const schema = currentSchema(meta);
  const out: ManifestFile[] = [];
  let n = 0;
  for (const [specId, group] of bySpec) {
    const spec = meta['partition-specs'].find((s) => s['spec-id'] === specId)!;
    const { bytes, stats } = writeManifest(group, { schema, spec, content });
    const path = `${metadataDir(meta)}/${randomUUID()}-m${n++}.avro`;
    await storage.write(path, bytes);
    const manifestContent = content === 'deletes' ? ManifestContent.DELETES : ManifestContent.DATA;
    out.push(manifestFileFor({ path, length: bytes.length, specId, snapshotId, stats, content: manifestContent }));
  }
  return out;
}

/** The manifests of the table's current snapshot (none for an empty table). */
export async function currentManifests(storage: Storage, meta: TableMetadata): Promise<ManifestFile[]> {
  const parent = currentSnapshot(meta);
  return parent ? readManifestList(await storage.read(parent['manifest-list'])) : [];
}

export interface SnapshotPlan {
  snapshotId: number;
  operation: SnapshotOperation;
  /** Manifests this snapshot adds, listed first. */
  manifests: ManifestFile[];
  /** The parent's manifests to keep (all of them for an append). */
  carried: ManifestFile[];
  added: readonly DataFile[];
  removed?: readonly DataFile[];
  /** Position delete files this snapshot adds, and those it removes. */
  addedDeletes?: readonly DataFile[];
  removedDeletes?: readonly DataFile[];
  /** Extra summary keys (sluice.job, sluice.flush-id, sluice.offsets). */
  extraSummary: Record<string, string>;
  nowMs?: number;
}

/** Writes the manifest list of a snapshot on top of the current one and describes it for CommitTable. */
export async function writeSnapshot(storage: Storage, meta: TableMetadata, plan: SnapshotPlan): Promise<AddSnapshot> {
  const parent = currentSnapshot(meta);
  const sequenceNumber = meta['last-sequence-number'] + 1;
  const list = writeManifestList([...plan.manifests, ...plan.carried], {
    snapshotId: plan.snapshotId,
    parentSnapshotId: parent?.['snapshot-id'],
    sequenceNumber,
  });
  const listPath = `${metadataDir(meta)}/snap-${plan.snapshotId}-${sequenceNumber}-${randomUUID()}.avro`;
  await storage.write(listPath, list);
  return {
    snapshotId: plan.snapshotId,
    parentSnapshotId: parent?.['snapshot-id'],
    sequenceNumber,
    timestampMs: plan.nowMs ?? Date.now(),
    manifestList: listPath,
    operation: plan.operation,
    summary: buildSummary(
      plan.operation,
      { added: plan.added, removed: plan.removed, addedDeletes: plan.addedDeletes, removedDeletes: plan.removedDeletes },
      parent?.summary,
      plan.extraSummary,
    ),
    schemaId: meta['current-schema-id'],
  };
}

/** ADDED entries for newly reported files (sequence numbers inherited at commit). */
export const addedEntries = (snapshotId: number, files: readonly DataFile[], content = FileContent.DATA): ManifestEntry[] =>
  files.map((dataFile) => ({ status: EntryStatus.ADDED, snapshotId, dataFile, content }));

export const MANIFEST_MERGE_ENABLED_PROPERTY = 'commit.manifest-merge.enabled';
export const MANIFEST_MIN_MERGE_COUNT_PROPERTY = 'commit.manifest.min-count-to-merge';
export const DEFAULT_MIN_MERGE_COUNT = 100;

/** How many carried manifests trigger a merge (Iceberg's properties and default); undefined when merging is off. */
export function mergeThreshold(properties: Record<string, string>): number | undefined {
  if ((properties[MANIFEST_MERGE_ENABLED_PROPERTY] ?? 'true').trim().toLowerCase() === 'false') return undefined;
  const raw = properties[MANIFEST_MIN_MERGE_COUNT_PROPERTY];
  const n = raw === undefined ? DEFAULT_MIN_MERGE_COUNT : Number(raw);
  if (!Number.isInteger(n) || n < 2)
    throw new CommitError(
      'invalid-report',
      `table property ${MANIFEST_MIN_MERGE_COUNT_PROPERTY}=${JSON.stringify(raw)} is not an integer >= 2`,
    );
  return n;
}

/**
 * Every append adds a manifest (and a keyed table's a delete manifest); without merging, the
 * manifest list grows by one or two per commit and every commit and every reader pays for it.
 * Once the parent carries `threshold` manifests of one content, they are rewritten into one
 * per partition spec: live entries become EXISTING with their sequence numbers made explicit,
 * entries deleted by earlier snapshots are dropped (they matter only to those snapshots, whose
 * own manifest lists still name them).
 */
export async function mergeIfNeeded(
  storage: Storage,
  meta: TableMetadata,
  snapshotId: number,
  carried: ManifestFile[],
): Promise<ManifestFile[]> {
  const threshold = mergeThreshold(meta.properties);
  if (threshold === undefined) return carried;
  const out: ManifestFile[] = [];
  for (const [content, name] of [
    [ManifestContent.DATA, 'data'],
    [ManifestContent.DELETES, 'deletes'],
  ] as const) {
    const group = carried.filter((m) => m.content === content);
    out.push(...(group.length < threshold ? group : await mergeManifests(storage, meta, snapshotId, group, name)));
  }
  return out;
}

async function mergeManifests(
  storage: Storage,
  meta: TableMetadata,
  snapshotId: number,
  manifests: readonly ManifestFile[],
  content: 'data' | 'deletes',
): Promise<ManifestFile[]> {
  const parent = currentSnapshot(meta)!;
  const entries: ManifestEntry[] = [];
  for (const m of manifests) {
    const { entries: old } = readManifest(await storage.read(m.manifestPath), {
      snapshotId: m.addedSnapshotId,
      sequenceNumber: m.sequenceNumber ?? parent['sequence-number'],
    });
    for (const e of old) {
      if (e.status === EntryStatus.DELETED) continue;
      entries.push({ ...e, status: EntryStatus.EXISTING });
    }
  }
  return writeManifests(storage, meta, snapshotId, entries, content);
}

/**
 * The manifests of a snapshot on top of `meta` that removes the live files `remove` picks
 * (data files, and position delete files compaction has applied): each manifest listing one is
 * rewritten (those DELETED, the rest EXISTING with their sequence numbers kept); the other
 * manifests are carried as they are. Compaction replaces files with it, and an instance of a
 * scheduled job replaces its partition.
 */
export async function removeFiles(
  storage: Storage,
  meta: TableMetadata,
  snapshotId: number,
  remove: (file: DataFile) => boolean,
): Promise<{ rewritten: ManifestFile[]; carried: ManifestFile[]; removed: DataFile[]; removedDeletes: DataFile[] }> {
  const snapshot = currentSnapshot(meta);
  if (!snapshot) return { rewritten: [], carried: [], removed: [], removedDeletes: [] };
  const { manifests, dataFiles, positionDeletes } = await snapshotFiles(storage, snapshot);
  const affected = new Set([...dataFiles, ...positionDeletes].filter((f) => remove(f.dataFile)).map((f) => f.manifestPath));
  const carried = manifests.filter((m) => !affected.has(m.manifestPath));
  const entries = { data: [] as ManifestEntry[], deletes: [] as ManifestEntry[] };
  const removed: DataFile[] = [];
  const removedDeletes: DataFile[] = [];
  for (const m of manifests.filter((x) => affected.has(x.manifestPath))) {
    const deletes = m.content === ManifestContent.DELETES;
    const { entries: old } = readManifest(await storage.read(m.manifestPath), {
      snapshotId: m.addedSnapshotId,
      sequenceNumber: m.sequenceNumber ?? snapshot['sequence-number'],
    });
    for (const e of old) {
      if (e.status === EntryStatus.DELETED) continue;
      const gone = remove(e.dataFile);
      if (gone) (deletes ? removedDeletes : removed).push(e.dataFile);
      (deletes ? entries.deletes : entries.data).push({
        status: gone ? EntryStatus.DELETED : EntryStatus.EXISTING,
        snapshotId: gone ? snapshotId : e.snapshotId,
        sequenceNumber: e.sequenceNumber,
        fileSequenceNumber: e.fileSequenceNumber,
        content: e.content,
        dataFile: e.dataFile,
      });
    }
  }
  const rewritten = [
    ...(await writeManifests(storage, meta, snapshotId, entries.data)),
    ...(await writeManifests(storage, meta, snapshotId, entries.deletes, 'deletes')),
  ];
  return { rewritten, carried, removed, removedDeletes };
}
