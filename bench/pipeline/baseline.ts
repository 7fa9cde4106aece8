/**
 * The "hand-written" baseline: what an engineer gets with two good tools and a shell line —
 * `kcat -C -e` dumps the topic's values one per line into a file, then DuckDB turns that
 * file (JSON lines or CSV, by the shape) into one zstd Parquet file with the same columns as
 * the Sluice table. No exactly-once,
 * no catalog, no Iceberg metadata: a floor for the cost of moving the bytes.
 */
import { spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { DuckDBInstance } from '@duckdb/node-api';
import { selfAndChildrenCpuSeconds } from './procfs.js';
import type { Shape } from './records.js';

export interface BaselineResult {
  kcatSeconds: number;
  duckdbSeconds: number;
  totalSeconds: number;
  rowsPerSec: number;
  /** CPU seconds of kcat and DuckDB together: comparable with the mesh's even on a busy machine. */
  cpuSeconds: number;
  lineBytes: number;
  parquetRows: number;
}

function kcatToFile(broker: string, topic: string, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn('kcat', ['-C', '-e', '-q', '-b', broker, '-t', topic, '-o', 'beginning', '-f', '%s\n'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const out = createWriteStream(path);
    let bytes = 0;
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (bytes += chunk.length));
    child.stdout.pipe(out);
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.once('error', (err) => reject(new Error(`cannot run kcat (is it installed?): ${err.message}`)));
    child.once('close', (code) => {
      if (code !== 0) return reject(new Error(`kcat exited with code ${code}: ${stderr.trim().split('\n')[0] ?? ''}`));
      out.end(() => resolve(bytes));
    });
  });
}

const quote = (text: string) => `'${text.replace(/'/g, "''")}'`;

/** The COPY statement: read the lines with the table's column types, write zstd Parquet. */
export function copySql(shape: Shape, linesPath: string, parquetPath: string): string {
  const select = shape.columns.map((c) => c.duckdbSelect).join(', ');
  return `COPY (SELECT ${select} FROM ${shape.reader(linesPath)}) TO ${quote(parquetPath)} (FORMAT parquet, COMPRESSION zstd)`;
}

export async function runBaseline(shape: Shape, broker: string, topic: string, dir: string, expectedRows: number): Promise<BaselineResult> {
  const linesPath = `${dir}/kcat-${topic}.lines`;
  const parquetPath = `${dir}/kcat-${topic}.parquet`;
  const cpu0 = selfAndChildrenCpuSeconds();
  const t0 = performance.now();
  const lineBytes = await kcatToFile(broker, topic, linesPath);
  const t1 = performance.now();
  const instance = await DuckDBInstance.create(':memory:');
  const connection = await instance.connect();
  try {
    await connection.run(copySql(shape, linesPath, parquetPath));
    const t2 = performance.now();
    // Between cpu0 and here this process only waited for kcat and ran the COPY.
    const cpuSeconds = selfAndChildrenCpuSeconds() - cpu0;
    const reader = await connection.runAndReadAll(`SELECT count(*)::INTEGER AS n FROM read_parquet(${quote(parquetPath)})`);
    const parquetRows = (reader.getRowObjects()[0] as { n: number }).n;
    if (parquetRows !== expectedRows) throw new Error(`kcat + DuckDB baseline wrote ${parquetRows} rows, expected ${expectedRows}`);
    const totalSeconds = (t2 - t0) / 1000;
    return {
      kcatSeconds: secs(t1 - t0),
      duckdbSeconds: secs(t2 - t1),
      totalSeconds: secs(t2 - t0),
      rowsPerSec: Math.round(expectedRows / totalSeconds),
      cpuSeconds: Number(cpuSeconds.toFixed(2)),
      lineBytes,
      parquetRows,
    };
  } finally {
    connection.closeSync();
    instance.closeSync();
    // Deleted at once, their dirty pages are dropped: left behind, the kernel wrote them back
    // (640 MB of lines for the wide shape) some 30 s later, under the next phase's
    // measurements, stalling its disk writes and PostgreSQL's commits.
    await Promise.all([rm(linesPath, { force: true }), rm(parquetPath, { force: true })]);
  }
}

const secs = (ms: number) => Number((ms / 1000).toFixed(2));
