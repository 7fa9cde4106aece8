/**
 * The open Parquet data files of one stream for one table: one rolling writer per
 * partition value, files named `<table location>/data/<partition path>/<worker>-<n>.parquet`.
 *
 * DuckDB writes local files. For a table in object storage (`s3://`) they are written to a
 * spool directory and uploaded by close(), whole, before they are handed over, so a report
 * never names an object that is not complete; the spool copy is deleted once uploaded.
 *
 * Files are "unreported" from the moment they are opened until close() hands them to the
 * caller for a report; discard() deletes exactly those (open writers are dropped, rolled
 * files removed), never a file that has been handed over: once a report may have reached
 * the coordinator, a file may be in a snapshot and only orphan cleanup may remove it.
 *
 * A table this worker cannot write (its location, its columns, a partition path, a file name
 * already taken) is a FileSetError: FAILED_PRECONDITION, since the request was fine.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync } from 'node:fs';
import { readFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { DATA_DIR, dataFileName } from '#shared/data-files.js';
import { SluiceError } from '#shared/errors.js';
import type { Table } from '#shared/gen/sluice/v1/catalog.js';
import type { DataFile, PartitionValue } from '#shared/gen/sluice/v1/types.js';
import type { TokenChunk } from '#shared/parquet/token-chunk.js';
import { RollingParquetWriter, writerColumns, type CellValue, type WriterColumn } from '#shared/parquet/writer.js';
import { joinLocation, normalizeLocation, schemeOf, type Storage } from '#shared/storage/index.js';
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
  /** Where uploads go (and come from, for a location that is not local). */
  storage: Storage;
  /** Local directory for the files of a table in object storage until they are uploaded. */
  spoolDir: string;
}

export class PartitionedFiles {
  /** One rolling writer per partition key. */
  private readonly slots = new Map<string, RollingParquetWriter>();
  private readonly localRoot: string;
  /** The table lives in object storage: files are spooled locally and uploaded at close(). */
  private readonly remote: boolean;
  private seq = 0;
  /** Paths of files opened and not yet handed over (local form). */
  private readonly unreported = new Set<string>();
  /** Local path → location as reported (the table location's form). */
  private readonly reported = new Map<string, string>();
  /** Files closed early by a schema change, handed over with the next close(). */
  private rolled: DataFile[] = [];

  constructor(private opts: FileSetOptions) {
    this.remote = schemeOf(opts.location) !== 'file';
    // One spool directory per table location and worker, so streams never share files.
    const spoolName = `${createHash('sha256').update(opts.location).digest('hex').slice(0, 16)}-${opts.workerId}`;
    this.localRoot = this.remote ? join(opts.spoolDir, spoolName) : normalizeLocation(opts.location);
  }

  /** Appends rows of one partition value (key and path from the core's PartitionTuple). */
  async append(partition: { key: string; path: string; values: PartitionValue[] }, rows: readonly (readonly CellValue[])[]): Promise<void> {
    await this.slot(partition).appendAll(rows);
  }

  private slot(partition: { key: string; path: string; values: PartitionValue[] }): RollingParquetWriter {
    let writer = this.slots.get(partition.key);
    if (!writer) {
      writer = this.writerFor(partition.path, partition.values);
      this.slots.set(partition.key, writer);
    }
    return writer;
  }

  /** Appends a chunk of token rows (the fast path's, token-chunk.ts) of one partition value. */
  async appendTokens(partition: { key: string; path: string; values: PartitionValue[] }, chunk: TokenChunk): Promise<void> {
    await this.slot(partition).appendTokens(chunk);
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
   * Starts writing out the open file holding the most rows' bytes (it stays unreported until
   * the next close(), like any rolled file); false when no file is open. written() waits for it.
   */
  async rollLargest(): Promise<boolean> {
    let largest: RollingParquetWriter | null = null;
    for (const writer of this.slots.values()) if (writer.openBytes > (largest?.openBytes ?? 0)) largest = writer;
    if (largest === null) return false;
    await largest.rollOpenFile();
    return true;
  }

  /** Waits until none of the set's rolled files is being written. Never throws (the next use does). */
  async written(): Promise<void> {
    for (const writer of this.slots.values()) await writer.written();
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
    return (await this.closeByPartition()).flatMap((g) => g.files);
  }

  /**
   * close(), with the files grouped by the partition key their rows were appended under, each
   * group's files in the order its rows were (rows appended to one partition fill its files
   * in order; files a schema change closed early come first, under a null key).
   */
  async closeByPartition(): Promise<{ key: string | null; files: DataFile[] }[]> {
    const groups: { key: string | null; files: DataFile[] }[] = this.rolled.length > 0 ? [{ key: null, files: this.rolled }] : [];
    this.rolled = [];
    for (const [key, writer] of this.slots) groups.push({ key, files: await writer.close() });
    this.slots.clear();
    const files = groups.flatMap((g) => g.files);
    if (this.remote) await this.upload(files);
    for (const f of files) {
      this.unreported.delete(f.filePath);
      f.filePath = this.reported.get(f.filePath) ?? f.filePath;
    }
    this.reported.clear();
    return groups;
  }

  /**
   * Uploads spooled files to their locations, each whole, then deletes the spool copies. On a
   * failure the objects uploaded so far are deleted again and the spool copies stay
   * unreported (discard() removes them): nothing half-done is handed over.
   */
  private async upload(files: readonly DataFile[]): Promise<void> {
    const uploaded: string[] = [];
    try {
      for (const f of files) {
        const location = this.reported.get(f.filePath) ?? f.filePath;
        await this.opts.storage.write(location, await readFile(f.filePath));
        uploaded.push(location);
      }
    } catch (e) {
      for (const location of uploaded) await this.opts.storage.delete(location).catch(() => false);
      throw new FileSetError(`uploading data files to ${this.opts.location}: ${(e as Error).message}`);
    }
    for (const f of files) await unlink(f.filePath).catch(() => undefined);
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

/** How a stream's files are written: target size, the storage they go to, the spool for object storage. */
export interface FileSettings {
  targetFileBytes: number;
  storage: Storage;
  spoolDir: string;
}

/** The files of `table` (as the catalog returned it, with a schema) this worker writes; refused naming the table. */
export function tableFiles(table: Table, workerId: string, settings: FileSettings): PartitionedFiles {
  const name = `${table.ref!.database}.${table.ref!.table}`;
  try {
    return new PartitionedFiles({
      location: table.location,
      columns: writerColumns(table.schema!),
      specId: table.partitionSpec?.specId ?? 0,
      workerId,
      ...settings,
    });
  } catch (e) {
    throw new FileSetError(`table ${name}: ${(e as Error).message}`, { table: name });
  }
}
