/**
 * How a transformation worker names the data files it writes, in one place: the writer
 * (services/transformation/src/files.ts) and the commit service, which admits a reported file
 * only if its name says the reporting worker wrote it (services/commit/src/report-files.ts).
 *
 * `<table location>/data/<partition path>/<fileSafe(worker id)>-<n>.parquet`
 */

/** The directory under a table's location that holds its data files. */
export const DATA_DIR = 'data';

/** A worker id as a file-name segment: anything outside [A-Za-z0-9._-] becomes `_`. */
export const fileSafe = (s: string): string => s.replace(/[^A-Za-z0-9._-]/g, '_') || '_';

/** The name of worker `workerId`'s `seq`-th data file. */
export const dataFileName = (workerId: string, seq: number): string => `${fileSafe(workerId)}-${seq}.parquet`;

/** True when `name` (a file name, no directory) is one that `dataFileName(workerId, n)` gives for some n. */
export function isDataFileNameOf(name: string, workerId: string): boolean {
  const prefix = `${fileSafe(workerId)}-`;
  return name.startsWith(prefix) && /^(0|[1-9][0-9]*)\.parquet$/.test(name.slice(prefix.length));
}
