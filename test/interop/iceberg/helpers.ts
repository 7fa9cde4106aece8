/**
 * What the Iceberg interop tests share: the `sluice` CLI pointed at a test mesh, records
 * appended to the dev broker, waiting for a job to commit, and one canonical rendering of a
 * row so that Sluice's own read path (`sluice query`, DuckDB) and Iceberg's Java library can be
 * compared value by value.
 */
import assert from 'node:assert/strict';
import type { IcebergField, IcebergTableJson } from '#test-support/iceberg-reader.js';
import { runSluice, runSluiceJson } from '#test-support/cli.js';
import type { TestMesh } from '#test-support/mesh.js';
import { waitFor } from '#test-support/wait.js';

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** One `sluice` process, as a user runs it, pointed at the mesh. */
export const sluice = (mesh: TestMesh, ...args: string[]): Promise<Run> => runSluice(mesh.clientEnv, ...args);

/** `sluice … --json`, which must succeed; its parsed output. */
export const sluiceJson = <T = any>(mesh: TestMesh, ...args: string[]): Promise<T> => runSluiceJson<T>(mesh.clientEnv, ...args);

export interface QueryJson {
  columns: string[];
  rows: Record<string, unknown>[];
  tables: { table: string; snapshotId: number | null; files: number }[];
}

export interface HistoryJson {
  currentSnapshotId: number;
  snapshots: { snapshotId: number; parentSnapshotId?: number; timestampMs: number; summary: Record<string, string> }[];
}

interface JobStatusJson {
  state: string;
  stateReason?: string;
  partitions: { partition: number; highWatermark: number; committedOffset: number }[];
}

/** Waits until the job has committed every record of its topic (the dev broker's high watermarks). */
export async function committedThrough(mesh: TestMesh, job: string): Promise<void> {
  let last: JobStatusJson | undefined;
  try {
    await waitFor(
      `job ${job} to commit every record`,
      async () => {
        mesh.assertNoCrash();
        const status = (last = await sluiceJson<JobStatusJson>(mesh, 'job', 'status', job));
        if (status.state === 'JOB_STATE_FAILED') throw new Error(`job ${job} failed: ${status.stateReason}`);
        return (
          status.partitions.length > 0 &&
          status.partitions.every((p) => p.committedOffset === p.highWatermark || (p.highWatermark === 0 && p.committedOffset === -1))
        );
      },
      { timeoutMs: 60_000, intervalMs: 300 },
    );
  } catch (err) {
    throw new Error(`${(err as Error).message}; the last status was ${JSON.stringify(last)}`);
  }
}

/** Appends JSON records to one partition of the dev broker's topic, with record timestamps when given. */
export function produce(mesh: TestMesh, topic: string, records: { value: unknown; timestamp?: number }[], partition = 0): void {
  mesh.broker.append(
    topic,
    partition,
    records.map((r) => ({
      value: typeof r.value === 'string' ? r.value : JSON.stringify(r.value),
      ...(r.timestamp === undefined ? {} : { timestamp: r.timestamp }),
    })),
  );
}

const MICROS_TEXT = /^(\d{4}-\d{2}-\d{2})[ T](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}(?::?\d{2})?)?$/;

/**
 * A timestamp's text in one form, `YYYY-MM-DDTHH:MM:SS.ffffff` (+ `Z` for timestamptz, in UTC),
 * from DuckDB's rendering (`2024-05-01 09:30:00.123+00`) or Iceberg's
 * (`2024-05-01T09:30:00.123000Z`). Pure.
 */
export function canonicalTimestamp(text: string, withZone: boolean): string {
  const m = MICROS_TEXT.exec(text);
  if (!m) throw new Error(`not a timestamp: ${JSON.stringify(text)}`);
  const [, date, hh, mm, ss, fraction = '', zone = ''] = m;
  const micros = fraction.padEnd(6, '0').slice(0, 6);
  if (!withZone) return `${date}T${hh}:${mm}:${ss}.${micros}`;
  const offset = zone === '' || zone === 'Z' ? 'Z' : zone.length === 3 ? `${zone}:00` : zone.replace(/^([+-]\d{2})(\d{2})$/, '$1:$2');
  const utc = new Date(`${date}T${hh}:${mm}:${ss}${offset}`).toISOString().slice(0, 19);
  return `${utc}.${micros}Z`;
}

/** A time of day as `HH:MM:SS.ffffff`, from `08:00:00` (DuckDB) or `08:00:00.000000` (Iceberg). Pure. */
export function canonicalTime(text: string): string {
  const m = /^(\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?$/.exec(text);
  if (!m) throw new Error(`not a time: ${JSON.stringify(text)}`);
  return `${m[1]}.${(m[2] ?? '').padEnd(6, '0').slice(0, 6)}`;
}

/**
 * One value in a form both readers agree on when they agree on the value: numbers as numbers
 * (decimals too), timestamps by canonicalTimestamp, binary as base64, everything else as given. Pure.
 */
export function canonicalValue(type: IcebergField['type'], value: unknown): unknown {
  if (value === null || value === undefined) return null;
  if (typeof type !== 'string') return typeof value === 'string' ? value : JSON.stringify(value);
  if (type === 'timestamptz' || type === 'timestamp') return canonicalTimestamp(String(value), type === 'timestamptz');
  if (type === 'time') return canonicalTime(String(value));
  if (type.startsWith('decimal')) return Number(value);
  if (type === 'long' || type === 'int') return Number(value);
  // Both give binary as base64 (sluice query --json since it stopped passing DuckDB's `\x` escapes on).
  return value;
}

const byJson = (a: unknown, b: unknown) => {
  const x = JSON.stringify(a);
  const y = JSON.stringify(b);
  return x < y ? -1 : x > y ? 1 : 0;
};

/** Rows with every value canonical, sorted by their JSON text (readers return files in any order). Pure. */
export function canonicalRows(fields: readonly IcebergField[], rows: readonly Record<string, unknown>[]): Record<string, unknown>[] {
  return rows.map((row) => Object.fromEntries(fields.map((f) => [f.name, canonicalValue(f.type, row[f.name])]))).sort(byJson);
}

/** `sluice query SELECT * …` at the snapshot Iceberg read, canonical, beside Iceberg's rows, canonical. */
export async function bothReaders(
  mesh: TestMesh,
  iceberg: IcebergTableJson,
): Promise<{ sluice: Record<string, unknown>[]; iceberg: Record<string, unknown>[] }> {
  const args = ['query', `SELECT * FROM ${iceberg.table}`];
  if (iceberg.snapshotId !== null) args.push('--snapshot', String(iceberg.snapshotId));
  const query = await sluiceJson<QueryJson>(mesh, ...args);
  assert.equal(query.tables[0]?.snapshotId ?? null, iceberg.snapshotId, 'both readers read the same snapshot');
  const fields = iceberg.readSchema.fields;
  return { sluice: canonicalRows(fields, query.rows), iceberg: canonicalRows(fields, iceberg.rows) };
}
