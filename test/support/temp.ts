import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TempDir {
  /** An empty directory under the system's temp directory: sluice-<prefix>-XXXXXX. */
  readonly path: string;
  /** Removes the directory and everything in it (nothing if it is already gone). */
  remove(): void;
}

/** A fresh directory of a test's own (a warehouse, a broker's data, a CLI's files). */
export function tempDir(prefix: string): TempDir {
  const path = mkdtempSync(join(tmpdir(), `sluice-${prefix}-`));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}
