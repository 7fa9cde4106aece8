import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { DuckDBInstance } from '@duckdb/node-api';
import { copySql } from './baseline.js';
import { percentile } from './percentile.js';
import { parseProc, sampleProc } from './procfs.js';
import { COLUMNS, eventJson } from './records.js';

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

describe('records and the kcat + DuckDB baseline SQL', () => {
  it('events are JSON objects of ~150 bytes on average with exactly the benchmark columns', () => {
    let bytes = 0;
    for (let i = 0; i < 1_000_000; i += 97) bytes += eventJson(i).length;
    const average = bytes / Math.ceil(1_000_000 / 97);
    assert.ok(average > 140 && average < 160, `${average} bytes on average`);
    for (const i of [0, 1, 99_999, 999_999])
      assert.deepEqual(
        Object.keys(JSON.parse(eventJson(i))),
        COLUMNS.map((c) => c.name),
      );
  });

  it('copySql turns JSON lines into Parquet with the table types (real DuckDB, real files)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sluice-bench-test-'));
    try {
      await writeFile(join(dir, "it's.jsonl"), `${[0, 1, 2].map(eventJson).join('\n')}\n`);
      const instance = await DuckDBInstance.create(':memory:');
      const connection = await instance.connect();
      await connection.run(copySql(join(dir, "it's.jsonl"), join(dir, 'out.parquet')));
      const reader = await connection.runAndReadAll(
        `SELECT id, "user", ok, epoch_ms(ts)::BIGINT AS ms, typeof(ts) AS ts_type FROM read_parquet('${join(dir, 'out.parquet')}') ORDER BY id`,
      );
      const rows = reader.getRowObjectsJson();
      connection.closeSync();
      instance.closeSync();
      assert.deepEqual(
        rows.map((r) => [r.id, r.user, r.ok, r.ms, r.ts_type]),
        [0, 1, 2].map((i) => {
          const e = JSON.parse(eventJson(i)) as { user: string; ok: boolean; ts: number };
          return [String(i), e.user, e.ok, String(e.ts), 'TIMESTAMP WITH TIME ZONE'];
        }),
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
