/**
 * The storage seam: everything Sluice writes (Parquet data files, Avro manifests,
 * metadata.json) goes through this interface, so the local filesystem used in development
 * and tests and an S3-compatible store in production are interchangeable.
 */

export interface FileInfo {
  /** The file's location in the form the storage was asked about (URI or absolute path). */
  location: string;
  size: number;
  modifiedMs: number;
}

export interface WriteOptions {
  /**
   * When false (the default) the write fails with `already-exists` if the file is there:
   * Iceberg files are immutable, and a second writer must never silently replace one.
   */
  overwrite?: boolean;
}

export interface Storage {
  /** Writes the whole file so that readers see either nothing or all of it. */
  write(location: string, data: Uint8Array, options?: WriteOptions): Promise<void>;
  /** Reads the whole file; `not-found` if it does not exist. */
  read(location: string): Promise<Uint8Array>;
  /**
   * Reads `length` bytes from `offset` (fewer at the end of the file); `not-found` if it does
   * not exist. For readers that need only part of a file, such as a Parquet footer.
   */
  readRange(location: string, offset: number, length: number): Promise<Uint8Array>;
  exists(location: string): Promise<boolean>;
  /** Size and modification time, or undefined if there is no such file. */
  stat(location: string): Promise<FileInfo | undefined>;
  /**
   * Every file below a directory-like prefix, recursively, in lexical order. The prefix is
   * treated as a directory (`/wh/a` lists `/wh/a/...`, never `/wh/ab`).
   */
  list(prefix: string): Promise<FileInfo[]>;
  /** Deletes one file; returns false if it was already gone. */
  delete(location: string): Promise<boolean>;
}
