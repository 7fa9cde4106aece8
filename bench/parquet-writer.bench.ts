/**
 * The Parquet writer's cost per row on the transformation's fast path: token chunks of 4,096
 * rows (filled by the real scanner, services/transformation/src/core/token-scan.ts, from the
 * pipeline bench's records) through `ParquetFileWriter.appendTokens`, then `close()` (the COPY
 * to Parquet, the column sizes and statistics). Scanning happens before timing: what is
 * measured is the writer alone, including the work on DuckDB's threads.
 *
 * Per shape (narrow and wide, bench/pipeline/records.ts), best of BENCH_WRITER_RUNS files of
 * BENCH_WRITER_ROWS rows each, the shapes interleaved:
 * - cpu_us_per_row: process CPU (user + system, all threads: process.cpuUsage) over the
 *   appends and the close, per row;
 * - wall_us_per_row: elapsed time over the same;
 * - peak_rss_mb_over_start: the process's peak RSS (getrusage's maxrss) above its RSS before
 *   the first timed file, the token chunks already held: the largest over all runs of both
 *   shapes (BENCH_WRITER_SHAPES=narrow for the narrow shape's own).
 *
 * Run alone: `npm run bench -- parquet-writer` (BENCH_WRITER_ROWS, BENCH_WRITER_RUNS,
 * BENCH_WRITER_SHAPES=wide,narrow to change them).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ParquetFileWriter, writerColumns, type WriterColumn } from '#shared/parquet/writer.js';
import { TokenChunk } from '#shared/parquet/token-chunk.js';
import { compileTokenScanner, type RecordRanges } from '../services/transformation/src/core/token-scan.js';
import { SHAPES } from './pipeline/records.js';
import { jsonShapePlan, shapeSchema } from './support/shape-plan.js';

const ROWS = Number(process.env.BENCH_WRITER_ROWS ?? 200_000);
const RUNS = Number(process.env.BENCH_WRITER_RUNS ?? 5);
const CHUNK_ROWS = 4096;

export type ShapeName = 'narrow' | 'wide';

/** `rows` records of the shape scanned into token chunks of 4,096 rows (every record must be taken). */
export function tokenChunks(name: ShapeName, rows: number): { columns: WriterColumn[]; chunks: TokenChunk[] } {
  const shape = SHAPES[name];
  const schema = shapeSchema(name);
  const plan = jsonShapePlan(name);
  const scanner = compileTokenScanner(plan);
  if (scanner === null) throw new Error(`the ${name} shape has no token scanner`);
  const chunks: TokenChunk[] = [];
  let chunk = new TokenChunk(plan.columns.length);
  for (let i = 0; i < rows; i++) {
    const value = Buffer.from(shape.record(i));
    const rec: RecordRanges = {
      headers: [],
      valueBytes: value,
      valueStart: 0,
      valueEnd: value.length,
      keyBytes: value,
      keyStart: -1,
      keyEnd: -1,
    };
    if (!scanner.take(rec, chunk)) throw new Error(`record ${i} of the ${name} shape was declined`);
    if (chunk.rows === CHUNK_ROWS) {
      chunks.push(chunk);
      chunk = new TokenChunk(plan.columns.length);
    }
  }
  if (chunk.rows > 0) chunks.push(chunk);
  return { columns: writerColumns(schema), chunks };
}

export interface Measurement {
  cpuUs: number;
  wallUs: number;
  bytes: number;
}

/** One file through the writer: every chunk appended, then closed; CPU and wall time per row. */
export async function writeOnce(path: string, columns: WriterColumn[], chunks: readonly TokenChunk[]): Promise<Measurement> {
  const rows = chunks.reduce((n, c) => n + c.rows, 0);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const writer = await ParquetFileWriter.open({ path, columns });
  for (const chunk of chunks) await writer.appendTokens(chunk);
  const file = await writer.close();
  const wall = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  if (file.recordCount !== rows) throw new Error(`wrote ${file.recordCount} rows of ${rows}`);
  return { cpuUs: (cpu.user + cpu.system) / rows, wallUs: (wall * 1000) / rows, bytes: file.fileSizeInBytes };
}

const round = (x: number, digits = 2) => Number(x.toFixed(digits));

export default async function run(): Promise<Record<string, unknown>> {
  const shapes = (process.env.BENCH_WRITER_SHAPES ?? 'wide,narrow').split(',') as ShapeName[];
  const inputs = shapes.map((name) => ({ name, ...tokenChunks(name, ROWS) }));
  const dir = mkdtempSync(join(tmpdir(), 'sluice-writer-bench-'));
  const best = new Map<ShapeName, Measurement>();
  try {
    // A warm-up file per shape (DuckDB's first statements, the JIT), not counted.
    for (const input of inputs) await writeOnce(join(dir, `warm-${input.name}.parquet`), input.columns, input.chunks.slice(0, 4));
    const rssStart = process.memoryUsage.rss();
    let n = 0;
    for (let run = 0; run < RUNS; run++) {
      for (const input of inputs) {
        const path = join(dir, `${input.name}-${n++}.parquet`);
        const m = await writeOnce(path, input.columns, input.chunks);
        rmSync(path);
        const prev = best.get(input.name);
        if (!prev || m.cpuUs < prev.cpuUs) best.set(input.name, m);
        process.stderr.write(
          `parquet-writer: ${input.name} run ${run + 1}: cpu ${m.cpuUs.toFixed(2)} µs/row, wall ${m.wallUs.toFixed(2)} µs/row\n`,
        );
      }
    }
    const peakMb = (process.resourceUsage().maxRSS * 1024 - rssStart) / 1e6;
    const result: Record<string, unknown> = { rows: ROWS, runs: RUNS, peak_rss_mb_over_start: round(peakMb, 0) };
    for (const [name, m] of best) result[name] = { cpu_us_per_row: round(m.cpuUs), wall_us_per_row: round(m.wallUs), file_bytes: m.bytes };
    return result;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
