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
import { readRows } from './rows.js';

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
export function pickCompaction<F extends { dataFile: DataFile }>(files: readonly F[], policy: CompactionPolicy): F[] | undefined {
  const groups = new Map<string, F[]>();
  for (const f of files) {
    if (f.dataFile.fileSizeInBytes >= policy.smallFileBytes) continue;
    const key = partitionKey(f.dataFile);
    const g = groups.get(key);
    if (g) g.push(f);
    else groups.set(key, [f]);
  }
  let best: F[] | undefined;
  for (const g of groups.values()) {
    if (g.length >= policy.minInputFiles && (!best || g.length > best.length)) best = g;
  }
  if (!best) return undefined;
  const chosen: F[] = [];
  let bytes = 0;
  for (const f of [...best].sort((a, b) => a.dataFile.fileSizeInBytes - b.dataFile.fileSizeInBytes)) {
    if (chosen.length >= 2 && bytes + f.dataFile.fileSizeInBytes > policy.targetFileBytes) break;
    chosen.push(f);
    bytes += f.dataFile.fileSizeInBytes;
  }
  return chosen.length >= policy.minInputFiles ? chosen : undefined;
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

/** Rewrites the chosen files into one, through a local temp dir so any storage backend works. */
async function rewrite(ctx: CoordinatorContext, meta: TableMetadata, inputs: readonly LiveDataFile[]): Promise<DataFile> {
  const tmp = await mkdtemp(join(tmpdir(), 'sluice-compact-'));
  try {
    const local: string[] = [];
    for (const [i, f] of inputs.entries()) {
      const path = join(tmp, `in-${i}.parquet`);
      await writeFile(path, await ctx.storage.read(f.dataFile.filePath));
      local.push(path);
    }
    const columns = schemaColumns(currentSchema(meta));
    const rows = await readRows(local, columns);
    const first = inputs[0].dataFile;
    const out = join(tmp, 'out.parquet');
    const writer = await ParquetFileWriter.open({ path: out, columns, partition: first.partition, specId: first.specId });
    for (const row of rows) writer.append(row);
    const file = await writer.close();
    const location = `${dirOf(first.filePath)}/compacted-${randomUUID()}.parquet`;
    await ctx.storage.write(location, await readFile(out));
    return { ...file, filePath: location, fileFormat: 'parquet' };
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
  // A keyed table's rows may be deleted by position: rewriting its files would move them under
  // the deletes and the row index. Not compacted yet (DESIGN.md, "Upsert tables").
  if (scan.positionDeletes.length > 0) return undefined;
  const inputs = pickCompaction(scan.dataFiles, policy);
  if (!inputs) return undefined;
  const output = await rewrite(ctx, metadata, inputs);
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
