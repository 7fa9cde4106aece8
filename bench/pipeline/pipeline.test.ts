import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { DuckDBInstance } from '@duckdb/node-api';
import { copySql } from './baseline.js';
import { percentile } from './percentile.js';
import { PeakRss, parseProc, sampleProc } from './procfs.js';
import { eventJson, SHAPES, type Shape } from './records.js';

describe('percentile (nearest rank)', () => {
  const cases: [number[], number, number][] = [
    [[10], 0.5, 10],
    [[1, 2, 3, 4], 0.5, 2],
    [[1, 2, 3, 4], 0.99, 4],
    [Array.from({ length: 100 }, (_, i) => i + 1), 0.99, 99],
    [Array.from({ length: 100 }, (_, i) => i + 1), 0.5, 50],
    [[5, 6], 0.01, 5],
  ];
  for (const [list, p, want] of cases) it(`p${p * 100} of ${list.length} values is ${want}`, () => assert.equal(percentile(list, p), want));
  it('is NaN for no values', () => assert.ok(Number.isNaN(percentile([], 0.5))));
});

describe('parseProc', () => {
  const status = 'Name:\tnode\nVmHWM:\t  204800 kB\nVmRSS:\t  102400 kB\n';
  const cases: [string, string, number][] = [
    ['plain name', '1234 (node) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 11 0 100 0 0', 3],
    // The command name may hold spaces and parentheses; fields are counted after the last ')'.
    ['name with ") ("', '1234 (odd) (name x) R 1 1234 1234 0 -1 4194560 100 0 0 0 100 100 0 0 20 0 11 0 100 0 0', 2],
  ];
  for (const [what, stat, cpu] of cases) {
    it(`${what}: CPU seconds from utime + stime`, () => {
      const sample = parseProc(stat, status);
      assert.equal(sample.cpuSeconds, cpu);
      assert.equal(sample.rssBytes, 102400 * 1024);
      assert.equal(sample.peakRssBytes, 204800 * 1024);
    });
  }
  it('reads this process, and nothing for a pid that does not exist', () => {
    const self = sampleProc(process.pid);
    assert.ok(self && self.peakRssBytes >= self.rssBytes && self.rssBytes > 0);
    assert.equal(sampleProc(2 ** 22 + 7), undefined);
  });
});

describe('PeakRss', () => {
  it("a phase's peak starts from the reset, and the run's keeps what came before it", async (t) => {
    // A process that touches 200 MiB, frees it (a large buffer is unmapped when collected),
    // then says so and waits.
    const source = `let b = Buffer.alloc(200 << 20, 1); b = null; gc(); console.log('freed'); setInterval(() => {}, 1000);`;
    const child = spawn(process.execPath, ['--expose-gc', '-e', source], { stdio: ['ignore', 'pipe', 'inherit'] });
    t.after(() => child.kill('SIGKILL'));
    await once(child.stdout!, 'data');
    const peaks = new PeakRss(() => ({ child: child.pid! }));
    if (!peaks.startPhase()) return t.skip('the kernel refuses to reset peak RSS (clear_refs)');
    assert.ok(peaks.run().child >= 200, `the run's peak keeps the 200 MiB touched before the phase: ${peaks.run().child} MiB`);
    assert.ok(peaks.phase().child < 150, `the phase's peak is what the process holds since: ${peaks.phase().child} MiB`);
  });
});

describe('record shapes and the kcat + DuckDB baseline SQL', () => {
  /** A JSON object's leaves at the shape's flatten level, named as Sluice names them ("." → "_"). */
  const flattened = (value: Record<string, unknown>, level: number, prefix = ''): string[] =>
    Object.entries(value).flatMap(([k, v]) =>
      level > 1 && v !== null && typeof v === 'object'
        ? flattened(v as Record<string, unknown>, level - 1, `${prefix}${k}_`)
        : [`${prefix}${k}`],
    );
  const sizes: Record<Shape['name'], [number, number]> = { narrow: [140, 160], wide: [550, 650], csv: [70, 100] };

  for (const shape of Object.values(SHAPES)) {
    it(`${shape.name}: records of the stated size carry exactly the benchmark columns`, () => {
      let bytes = 0;
      for (let i = 0; i < 1_000_000; i += 97) bytes += Buffer.byteLength(shape.record(i));
      const average = bytes / Math.ceil(1_000_000 / 97);
      const [low, high] = sizes[shape.name];
      assert.ok(average > low && average < high, `${average} bytes on average`);
      const names = shape.columns.map((c) => c.name);
      for (const i of [0, 1, 99_999, 999_999]) {
        const text = shape.record(i);
        assert.ok(!text.includes('\n'), 'one line per message');
        if (shape.source.format === 'CSV') assert.equal(text.split(',').length, names.length);
        else assert.deepEqual(flattened(JSON.parse(text), shape.flattenLevel), names);
      }
    });

    it(`${shape.name}: copySql turns the lines into Parquet with the table types (real DuckDB, real files)`, async () => {
      const dir = await mkdtemp(join(tmpdir(), 'sluice-bench-test-'));
      try {
        await writeFile(join(dir, "it's.lines"), `${[0, 1, 2].map(shape.record).join('\n')}\n`);
        const instance = await DuckDBInstance.create(':memory:');
        const connection = await instance.connect();
        await connection.run(copySql(shape, join(dir, "it's.lines"), join(dir, 'out.parquet')));
        const reader = await connection.runAndReadAll(
          `SELECT id, ok, epoch_ms(ts)::BIGINT AS ms, typeof(ts) AS ts_type FROM read_parquet('${join(dir, 'out.parquet')}') ORDER BY id`,
        );
        const columns = await connection.runAndReadAll(
          `SELECT name FROM parquet_schema('${join(dir, 'out.parquet')}') WHERE num_children IS NULL`,
        );
        const rows = reader.getRowObjectsJson();
        const names = columns.getRowObjectsJson().map((r) => r.name);
        connection.closeSync();
        instance.closeSync();
        assert.deepEqual(
          names,
          shape.columns.map((c) => c.name),
        );
        assert.deepEqual(
          rows.map((r) => [r.id, r.ok, r.ms, r.ts_type]),
          [0, 1, 2].map((i) => {
            const e = JSON.parse(eventJson(i)) as { ok: boolean; ts: number };
            return [String(i), e.ok, String(e.ts), 'TIMESTAMP WITH TIME ZONE'];
          }),
        );
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });
  }
});
