/**
 * The open Parquet data files of one stream for one table: one rolling writer per
 * partition value, files named `<table location>/data/<partition path>/<worker>-<n>.parquet`.
 *
 * Files are "unreported" from the moment they are opened until close() hands them to the
 * caller for a report; discard() deletes exactly those (open writers are dropped, rolled
 * files removed), never a file that has been handed over: once a report may have reached
 * the coordinator, a file may be in a snapshot and only orphan cleanup may remove it.
 *
 * A table this worker cannot write (its location, its columns, a partition path, a file name
 * already taken) is a FileSetError: FAILED_PRECONDITION, since the request was fine.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { unlink } from 'node:fs/promises';
import { DATA_DIR, dataFileName } from '#shared/data-files.js';
import { SluiceError } from '#shared/errors.js';
import type { Table } from '#shared/gen/sluice/v1/catalog.js';
import type { DataFile, PartitionValue } from '#shared/gen/sluice/v1/types.js';
import { RollingParquetWriter, writerColumns, type CellValue, type WriterColumn } from '#shared/parquet/writer.js';
import { joinLocation, normalizeLocation, schemeOf } from '#shared/storage/index.js';
import { status } from '@grpc/grpc-js';

export class FileSetError extends SluiceError {
  constructor(message: string, details: Record<string, string> = {}) {
    super(status.FAILED_PRECONDITION, message, details);
    this.name = 'FileSetError';
  }
}

export interface FileSetOptions {
  /** Table location as the catalog gives it: an absolute path or a file:// URI. */
  location: string;
  columns: readonly WriterColumn[];
  specId: number;
  workerId: string;
  /** Roll to a new file when the current one reaches about this size. */
  targetFileBytes: number;
}

export class PartitionedFiles {
  /** One rolling writer per partition key. */
  private readonly slots = new Map<string, RollingParquetWriter>();
  private readonly localRoot: string;
  private seq = 0;
  /** Paths of files opened and not yet handed over (local form). */
  private readonly unreported = new Set<string>();
  /** Local path → location as reported (the table location's form). */
  private readonly reported = new Map<string, string>();
  /** Files closed early by a schema change, handed over with the next close(). */
  private rolled: DataFile[] = [];

  constructor(private opts: FileSetOptions) {
    if (schemeOf(opts.location) !== 'file') {
      throw new FileSetError(
        `table location ${opts.location} is not on the local filesystem; this transformation worker writes file locations only`,
      );
    }
    this.localRoot = normalizeLocation(opts.location);
  }

  /** Appends rows of one partition value (key and path from the core's PartitionTuple). */
  async append(partition: { key: string; path: string; values: PartitionValue[] }, rows: readonly (readonly CellValue[])[]): Promise<void> {
    let writer = this.slots.get(partition.key);
    if (!writer) {
      writer = this.writerFor(partition.path, partition.values);
      this.slots.set(partition.key, writer);
    }
    await writer.appendAll(rows);
  }

  get isEmpty(): boolean {
    return this.slots.size === 0;
  }

  /** Estimated bytes of the rows in open files, held in memory until the files are written. */
  get openBytes(): number {
    let total = 0;
    for (const writer of this.slots.values()) total += writer.openBytes;
    return total;
  }

  /**
   * Writes out the open file holding the most rows' bytes (it stays unreported until the next
   * close(), like any rolled file); false when no file is open.
   */
  async rollLargest(): Promise<boolean> {
    let largest: RollingParquetWriter | null = null;
    for (const writer of this.slots.values()) if (writer.openBytes > (largest?.openBytes ?? 0)) largest = writer;
    if (largest === null) return false;
    await largest.rollOpenFile();
    return true;
  }

  private writerFor(partitionPath: string, values: PartitionValue[]): RollingParquetWriter {
    const dirParts = partitionPath === '' ? [DATA_DIR] : [DATA_DIR, partitionPath];
    // Validates the partition path segments (no `..`, no separators) before anything is created.
    let dir: string;
    try {
      dir = joinLocation(this.localRoot, ...dirParts);
    } catch (e) {
      throw new FileSetError(`partition path ${JSON.stringify(partitionPath)} cannot be a directory name: ${(e as Error).message}`);
    }
    const reportedDir = joinLocation(this.opts.location, ...dirParts);
    return new RollingParquetWriter(
      { columns: this.opts.columns, partition: values, specId: this.opts.specId },
      () => {
        // Called once per new file, synchronously: the rare path may afford sync syscalls.
        const name = dataFileName(this.opts.workerId, this.seq++);
        const path = `${dir}/${name}`;
        mkdirSync(dir, { recursive: true });
        // Iceberg files are immutable; a reused worker id must never overwrite a committed file.
        if (existsSync(path)) throw new FileSetError(`data file ${path} already exists; worker id ${this.opts.workerId} was used before`);
        this.unreported.add(path);
        this.reported.set(path, `${reportedDir}/${name}`);
        return path;
      },
      this.opts.targetFileBytes,
    );
  }

  /**
   * The table's schema evolved: closes the open files (written with the old columns; they
   * go out with the next close(), still deleted by discard() until then) so that rows from
   * now on go to new files with the new columns.
   */
  async changeColumns(columns: readonly WriterColumn[]): Promise<void> {
    for (const writer of this.slots.values()) this.rolled.push(...(await writer.close()));
    this.slots.clear();
    this.opts = { ...this.opts, columns };
  }

  /**
   * Closes every open file and hands them over: the caller reports them, and this set no
   * longer deletes them. Paths are rewritten to the table location's form.
   */
  async close(): Promise<DataFile[]> {
    const files: DataFile[] = this.rolled;
    this.rolled = [];
    for (const writer of this.slots.values()) files.push(...(await writer.close()));
    this.slots.clear();
    for (const f of files) {
      this.unreported.delete(f.filePath);
      f.filePath = this.reported.get(f.filePath) ?? f.filePath;
    }
    this.reported.clear();
    return files;
  }

  /** Drops open writers and deletes every file not handed over; returns the deleted paths. */
  async discard(): Promise<string[]> {
    for (const writer of this.slots.values()) await writer.abort().catch(() => undefined);
    this.slots.clear();
    this.rolled = [];
    const deleted: string[] = [];
    for (const path of this.unreported) {
      try {
        await unlink(path);
        deleted.push(path);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      }
    }
    this.unreported.clear();
    this.reported.clear();
    return deleted;
  }
}

/** The files of `table` (as the catalog returned it, with a schema) this worker writes; refused naming the table. */
export function tableFiles(table: Table, workerId: string, targetFileBytes: number): PartitionedFiles {
  const name = `${table.ref!.database}.${table.ref!.table}`;
  try {
    return new PartitionedFiles({
      location: table.location,
      columns: writerColumns(table.schema!),
      specId: table.partitionSpec?.specId ?? 0,
      workerId,
      targetFileBytes,
    });
  } catch (e) {
    throw new FileSetError(`table ${name}: ${(e as Error).message}`, { table: name });
  }
}
