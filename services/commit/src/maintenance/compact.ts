/**
 * Small-file compaction: the small files of one partition are rewritten into one file and
 * committed as a `replace` snapshot (the replaced files as DELETED entries, the new one
 * ADDED), with the same rows. Appends that land while the new file is written are kept:
 * on ABORTED the snapshot is rebuilt on the new current snapshot, provided every replaced
 * file is still live there; if one is gone (another rewrite won), compaction gives up and
 * deletes its own output.
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FileRows } from '#shared/gen/sluice/v1/catalog.js';
import type { DataFile, TableRef } from '#shared/gen/sluice/v1/types.js';
import {
  EntryStatus,
  currentSchema,
  currentSnapshot,
  newSnapshotId,
  type ManifestFile,
  type SchemaJson,
  type TableMetadata,
} from '#shared/iceberg/index.js';
import { snapshotFiles, type LiveDataFile } from '#shared/iceberg/scan.js';
import { parsePrimitive } from '#shared/iceberg/single-value.js';
import { ParquetFileWriter, type WriterColumn } from '#shared/parquet/writer.js';
import { commitWithRebase, loadTable } from '../catalog.js';
import type { CoordinatorContext } from '../context.js';
import { CommitError } from '../errors.js';
import { removeFiles, writeManifests, writeSnapshot } from '../snapshots.js';
import { POSITION_DELETE_COLUMNS } from '../position-deletes.js';
import { readRows, readRowsAt } from './rows.js';

export const SMALL_FILE_BYTES_PROPERTY = 'sluice.compaction.small-file-bytes';
export const MIN_INPUT_FILES_PROPERTY = 'sluice.compaction.min-input-files';
export const TARGET_FILE_BYTES_PROPERTY = 'write.target-file-size-bytes';

export interface CompactionPolicy {
  /** Files below this size are candidates. */
  smallFileBytes: number;
  /** A partition is compacted once it has at least this many small files. */
  minInputFiles: number;
  /** The inputs of one rewrite add up to at most this (Iceberg's target file size). */
  targetFileBytes: number;
}

export function compactionPolicy(properties: Record<string, string>): CompactionPolicy {
  const read = (name: string, def: number, min: number) => {
    const raw = properties[name];
    if (raw === undefined || raw.trim() === '') return def;
    if (!/^\d+$/.test(raw.trim()) || Number(raw) < min)
      throw new CommitError('invalid-report', `table property ${name}=${JSON.stringify(raw)} is not an integer >= ${min}`);
    return Number(raw);
  };
  return {
    smallFileBytes: read(SMALL_FILE_BYTES_PROPERTY, 16 * 1024 * 1024, 1),
    minInputFiles: read(MIN_INPUT_FILES_PROPERTY, 10, 2),
    targetFileBytes: read(TARGET_FILE_BYTES_PROPERTY, 512 * 1024 * 1024, 1),
  };
}

const partitionKey = (f: DataFile) =>
  `${f.specId}|${JSON.stringify(
    f.partition.map((p) => [p.fieldId, p.value?.kind ?? null]),
    (_k, v) => (typeof v === 'bigint' ? String(v) : v),
  )}`;

/**
 * The files to rewrite: the partition with the most small files (at least the minimum),
 * smallest first up to the target size. Pure.
 */
export function pickCompaction<F extends { dataFile: DataFile }>(
  files: readonly F[],
  policy: CompactionPolicy,
  hasDeletes: (f: F) => boolean = () => false,
): F[] | undefined {
  const groups = new Map<string, F[]>();
  for (const f of files) {
    if (f.dataFile.fileSizeInBytes >= policy.smallFileBytes && !hasDeletes(f)) continue;
    const key = partitionKey(f.dataFile);
    const g = groups.get(key);
    if (g) g.push(f);
    else groups.set(key, [f]);
  }
  let best: F[] | undefined;
  // A partition whose files have deleted rows is rewritten without them, however few its files.
  const enough = (g: F[]) => g.length >= policy.minInputFiles || g.some(hasDeletes);
  for (const g of groups.values()) {
    if (enough(g) && (!best || g.length > best.length)) best = g;
  }
  if (!best) return undefined;
  const chosen: F[] = [];
  let bytes = 0;
  for (const f of [...best].sort((a, b) => a.dataFile.fileSizeInBytes - b.dataFile.fileSizeInBytes)) {
    if (chosen.length >= 2 && bytes + f.dataFile.fileSizeInBytes > policy.targetFileBytes) break;
    chosen.push(f);
    bytes += f.dataFile.fileSizeInBytes;
  }
  return enough(chosen) ? chosen : undefined;
}

/** Top-level primitive columns of a schema, as the Parquet writer wants them. */
export function schemaColumns(schema: SchemaJson): WriterColumn[] {
  return schema.fields.map((f) => {
    if (typeof f.type !== 'string')
      throw new CommitError('invalid-report', `column "${f.name}" is nested; compaction rewrites primitive columns only`);
    return { fieldId: f.id, name: f.name, type: parsePrimitive(f.type), required: f.required };
  });
}

const dirOf = (location: string) => location.slice(0, location.lastIndexOf('/'));

/** Where each kept row of a rewrite went: per input file, its old position → its position in the output. */
type Moves = Map<string, Map<number, number>>;

/**
 * Rewrites the chosen files into one, through a local temp dir so any storage backend works.
 * With `deleted` (a keyed table's position deletes, by data file), the rows it names are left
 * out, and the moves of the kept rows come back so the row index can follow them.
 */
async function rewrite(
  ctx: CoordinatorContext,
  meta: TableMetadata,
  inputs: readonly LiveDataFile[],
  deleted?: ReadonlyMap<string, ReadonlySet<number>>,
): Promise<{ output: DataFile; moves: Moves }> {
  const tmp = await mkdtemp(join(tmpdir(), 'sluice-compact-'));
  try {
    const local: string[] = [];
    for (const [i, f] of inputs.entries()) {
      const path = join(tmp, `in-${i}.parquet`);
      await writeFile(path, await ctx.storage.read(f.dataFile.filePath));
      local.push(path);
    }
    const columns = schemaColumns(currentSchema(meta));
    const first = inputs[0].dataFile;
    const out = join(tmp, 'out.parquet');
    const writer = await ParquetFileWriter.open({ path: out, columns, partition: first.partition, specId: first.specId });
    const moves: Moves = new Map();
    if (deleted) {
      for (const f of inputs) moves.set(f.dataFile.filePath, new Map());
      let written = 0;
      for (const { file, pos, row } of await readRowsAt(local, columns)) {
        const path = inputs[file].dataFile.filePath;
        if (deleted.get(path)?.has(pos)) continue;
        writer.append(row);
        moves.get(path)!.set(pos, written++);
      }
    } else for (const row of await readRows(local, columns)) writer.append(row);
    const file = await writer.close();
    const location = `${dirOf(first.filePath)}/compacted-${randomUUID()}.parquet`;
    await ctx.storage.write(location, await readFile(out));
    return { output: { ...file, filePath: location, fileFormat: 'parquet' }, moves };
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

export interface CompactionResult {
  snapshotId: number;
  replaced: string[];
  added: string;
  records: number;
}

/** Compacts one partition of the table if the policy finds one; undefined when there is nothing to do. */
export async function compactTable(
  ctx: CoordinatorContext,
  ref: TableRef,
  leaseEpoch: number,
  override: Partial<CompactionPolicy> = {},
  hooks: { afterRewrite?: () => Promise<void> } = {},
): Promise<CompactionResult | undefined> {
  const { metadata } = await loadTable(ctx.catalog, ctx.storage, ref);
  const snapshot = currentSnapshot(metadata);
  if (!snapshot) return undefined;
  const policy = { ...compactionPolicy(metadata.properties), ...override };
  const scan = await snapshotFiles(ctx.storage, snapshot);
  if (scan.positionDeletes.length > 0) return compactKeyed(ctx, ref, leaseEpoch, metadata, scan, policy);
  const inputs = pickCompaction(scan.dataFiles, policy);
  if (!inputs) return undefined;
  const { output } = await rewrite(ctx, metadata, inputs);
  const records = inputs.reduce((n, f) => n + f.dataFile.recordCount, 0);
  if (output.recordCount !== records) {
    await ctx.storage.delete(output.filePath);
    throw new CommitError('invalid-report', `compaction read ${output.recordCount} rows from files holding ${records}; nothing committed`);
  }
  // Tests use this seam to land other commits between planning and committing.
  await hooks.afterRewrite?.();
  const replaced = new Set(inputs.map((f) => f.dataFile.filePath));
  const snapshotId = newSnapshotId();
  let added: ManifestFile[] | undefined;
  try {
    await commitWithRebase({
      catalog: ctx.catalog,
      storage: ctx.storage,
      ref,
      async build({ metadata: meta }) {
        added ??= await writeManifests(ctx.storage, meta, snapshotId, [{ status: EntryStatus.ADDED, snapshotId, dataFile: output }]);
        const snapshot = currentSnapshot(meta);
        if (!snapshot) throw new CommitError('stale-rewrite', 'the table has no snapshot any more');
        const { rewritten, carried, removed } = await removeFiles(ctx.storage, meta, snapshotId, (f) => replaced.has(f.filePath));
        if (removed.length !== replaced.size) {
          const gone = [...replaced].find((path) => !removed.some((f) => f.filePath === path));
          throw new CommitError(
            'stale-rewrite',
            `file ${gone} is no longer live in snapshot ${snapshot['snapshot-id']}; compaction abandoned`,
          );
        }
        const add = await writeSnapshot(ctx.storage, meta, {
          snapshotId,
          operation: 'replace',
          manifests: [...added, ...rewritten],
          carried,
          added: [output],
          removed: inputs.map((f) => f.dataFile),
          extraSummary: {},
        });
        return { updates: [{ update: { $case: 'addSnapshot', value: add } }], job: '', offsets: [], leaseEpoch };
      },
    });
  } catch (err) {
    // Nothing references the new file when the rewrite lost; anything else may have landed.
    if (err instanceof CommitError && (err.kind === 'stale-rewrite' || err.kind === 'conflict')) await ctx.storage.delete(output.filePath);
    throw err;
  }
  return { snapshotId, replaced: [...replaced], added: output.filePath, records };
}

// -- keyed tables -----------------------------------------------------------------------------

/**
 * The positions the live position delete files remove from each data file (a delete applies to
 * the files with a data sequence number up to its own), and, per delete file, the data files it
 * removes rows from: once those are all rewritten, the delete file has nothing left to do.
 */
export async function readDeletes(
  ctx: CoordinatorContext,
  tmp: string,
  deletes: readonly LiveDataFile[],
  dataFiles: readonly LiveDataFile[],
): Promise<{ deleted: Map<string, Set<number>>; targets: Set<string>[] }> {
  const sequence = new Map(dataFiles.map((f) => [f.dataFile.filePath, f.sequenceNumber ?? 0]));
  const deleted = new Map<string, Set<number>>();
  const targets: Set<string>[] = [];
  for (const [i, d] of deletes.entries()) {
    const local = join(tmp, `deletes-${i}.parquet`);
    await writeFile(local, await ctx.storage.read(d.dataFile.filePath));
    const paths = new Set<string>();
    for (const [path, pos] of (await readRows([local], POSITION_DELETE_COLUMNS)) as [string, bigint][]) {
      const dataSequence = sequence.get(path);
      if (dataSequence === undefined || dataSequence > (d.sequenceNumber ?? 0)) continue; // gone, or newer than the delete
      paths.add(path);
      let set = deleted.get(path);
      if (!set) deleted.set(path, (set = new Set()));
      set.add(Number(pos));
    }
    targets.push(paths);
  }
  return { deleted, targets };
}

/**
 * Compaction of a keyed table (DESIGN.md, "Upsert tables"): the chosen files of one partition
 * are rewritten without their deleted rows into one file; the delete files that applied to them
 * alone are removed in the same `replace` snapshot, and the row index moves every key of the
 * rewritten files to its row in the new file in the same transaction. Positions are only true
 * on the snapshot they were read on, so compaction gives up when the table moved meanwhile.
 */
async function compactKeyed(
  ctx: CoordinatorContext,
  ref: TableRef,
  leaseEpoch: number,
  metadata: TableMetadata,
  scan: Awaited<ReturnType<typeof snapshotFiles>>,
  policy: CompactionPolicy,
): Promise<CompactionResult | undefined> {
  const tmp = await mkdtemp(join(tmpdir(), 'sluice-compact-'));
  let output: DataFile | undefined;
  try {
    const { deleted, targets } = await readDeletes(ctx, tmp, scan.positionDeletes, scan.dataFiles);
    const inputs = pickCompaction(scan.dataFiles, policy, (f) => deleted.has(f.dataFile.filePath));
    if (!inputs) return undefined;
    const replaced = new Set(inputs.map((f) => f.dataFile.filePath));
    const applied = scan.positionDeletes.filter((_, i) => [...targets[i]].every((path) => replaced.has(path))).map((d) => d.dataFile);

    // The live rows of the inputs, in order; each kept row's move gives its new position.
    const { output: file, moves } = await rewrite(ctx, metadata, inputs, deleted);
    const written = file.recordCount;
    if (written > 0) output = file;
    else await ctx.storage.delete(file.filePath); // every row deleted: the inputs just go

    // Every live row of a keyed table has its key in the index: each moves with its row.
    const { rows: indexed, snapshotId: indexedAt } = await ctx.catalog.lookupRowKeys({ ref, keys: [], filePaths: [...replaced] });
    if (indexedAt !== metadata['current-snapshot-id'])
      throw new CommitError('stale-rewrite', 'the table moved while compaction read its row index; compaction abandoned');
    const moved: FileRows = { filePath: output?.filePath ?? '', keys: [], positions: [] };
    for (const rows of indexed)
      rows.keys.forEach((key, i) => {
        const pos = moves.get(rows.filePath)?.get(rows.positions[i]);
        if (pos === undefined)
          throw new CommitError(
            'invalid-report',
            `the row index points key ${key} at deleted row ${rows.positions[i]} of ${rows.filePath}; nothing compacted`,
          );
        moved.keys.push(key);
        moved.positions.push(pos);
      });
    if (moved.keys.length !== written)
      throw new CommitError(
        'invalid-report',
        `compaction kept ${written} rows but the row index has ${moved.keys.length} keys for them; nothing compacted`,
      );

    const snapshotId = newSnapshotId();
    const appliedPaths = new Set(applied.map((f) => f.filePath));
    await commitWithRebase({
      catalog: ctx.catalog,
      storage: ctx.storage,
      ref,
      maxAttempts: 1,
      async build({ metadata: meta }) {
        if (meta['current-snapshot-id'] !== metadata['current-snapshot-id'])
          throw new CommitError('stale-rewrite', 'the table moved while compaction rewrote its files; compaction abandoned');
        const added = output
          ? await writeManifests(ctx.storage, meta, snapshotId, [{ status: EntryStatus.ADDED, snapshotId, dataFile: output }])
          : [];
        const { rewritten, carried, removed, removedDeletes } = await removeFiles(
          ctx.storage,
          meta,
          snapshotId,
          (f) => replaced.has(f.filePath) || appliedPaths.has(f.filePath),
        );
        const add = await writeSnapshot(ctx.storage, meta, {
          snapshotId,
          operation: 'replace',
          manifests: [...added, ...rewritten],
          carried,
          added: output ? [output] : [],
          removed,
          removedDeletes,
          extraSummary: {},
        });
        return {
          updates: [{ update: { $case: 'addSnapshot', value: add } }],
          job: '',
          offsets: [],
          leaseEpoch,
          rowKeys: {
            upserts: output ? [moved] : [],
            deletes: [],
            files: output ? [{ filePath: output.filePath, specId: output.specId, partition: output.partition }] : [],
            droppedFiles: [...replaced],
          },
        };
      },
    });
    return {
      snapshotId,
      replaced: [...replaced, ...appliedPaths],
      added: output?.filePath ?? '',
      records: written,
    };
  } catch (err) {
    // Nothing references the new file when the rewrite did not land.
    if (output && err instanceof CommitError && err.kind !== 'catalog') await ctx.storage.delete(output.filePath);
    throw err;
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}
