/**
 * Position delete files (spec, "Position Delete Files"): Parquet files of (file_path, pos)
 * rows, sorted by path then position, with the spec's reserved field ids. One file per
 * partition of the data files it deletes from: readers look for a data file's deletes in its
 * own partition.
 *
 * They carry no column bounds: a reader that finds equal lower and upper bounds for file_path
 * takes the file to delete from that one data file only, and truncated bounds could make two
 * paths look equal.
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DATA_DIR } from '#shared/data-files.js';
import type { DataFile, PartitionValue } from '#shared/gen/sluice/v1/types.js';
import { ParquetFileWriter, type WriterColumn } from '#shared/parquet/writer.js';
import type { Storage } from '#shared/storage/index.js';
import { CommitError } from './errors.js';

/** The spec's reserved ids: file_path 2147483546, pos 2147483545. */
export const POSITION_DELETE_COLUMNS: readonly WriterColumn[] = [
  { fieldId: 2147483546, name: 'file_path', type: { kind: 'string' }, required: true },
  { fieldId: 2147483545, name: 'pos', type: { kind: 'long' }, required: true },
];

/** The partition a data file lives in. */
export interface FilePartition {
  specId: number;
  partition: PartitionValue[];
}

const partitionKey = (p: FilePartition) =>
  `${p.specId}|${JSON.stringify(
    p.partition.map((v) => [v.fieldId, v.value?.kind ?? null]),
    (_k, v) => (typeof v === 'bigint' ? String(v) : v),
  )}`;

/**
 * Writes the positions (by data file, ascending) as position delete files under the table's
 * data directory and returns them described for a manifest (content: position deletes).
 */
export async function writePositionDeletes(
  storage: Storage,
  tableLocation: string,
  positions: ReadonlyMap<string, readonly number[]>,
  partitionOf: (filePath: string) => FilePartition | undefined,
): Promise<DataFile[]> {
  const groups = new Map<string, { partition: FilePartition; files: string[] }>();
  for (const filePath of positions.keys()) {
    const partition = partitionOf(filePath);
    if (!partition) throw new CommitError('invalid-report', `the row index points into data file ${filePath}, whose partition is unknown`);
    const key = partitionKey(partition);
    const group = groups.get(key);
    if (group) group.files.push(filePath);
    else groups.set(key, { partition, files: [filePath] });
  }
  if (groups.size === 0) return [];
  const tmp = await mkdtemp(join(tmpdir(), 'sluice-deletes-'));
  const written: DataFile[] = [];
  try {
    for (const { partition, files } of groups.values()) {
      const local = join(tmp, `${randomUUID()}.parquet`);
      const writer = await ParquetFileWriter.open({ path: local, columns: POSITION_DELETE_COLUMNS, ...partition });
      for (const filePath of files.sort()) for (const pos of positions.get(filePath)!) writer.append([filePath, pos]);
      const file = await writer.close();
      const location = `${tableLocation}/${DATA_DIR}/deletes-${randomUUID()}.parquet`;
      await storage.write(location, await readFile(local));
      written.push({ ...file, filePath: location, fileFormat: 'parquet', columnStats: [] });
    }
    return written;
  } catch (err) {
    for (const f of written) await storage.delete(f.filePath).catch(() => false);
    throw err;
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}
