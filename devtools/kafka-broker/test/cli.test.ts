import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { run } from './helpers.js';
import { tempDir } from '#test-support/temp.js';
import { programArgs } from '#cli/launch.js';

/** The compiled dev broker, as `sluice up` runs it. */
const node = (args: string[]) => [process.execPath, programArgs('dev-broker', args)] as const;

test('main prints exactly one listening line and exits cleanly on SIGTERM', async () => {
  const [cmd, args] = node(['--port', '0', '--partitions', '3']);
  const child = spawn(cmd, [...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const listening = new Promise<string>((resolve) =>
    child.stdout.on('data', (d) => {
      stdout += d;
      if (stdout.includes('\n')) resolve(stdout);
    }),
  );
  const line = await listening;
  assert.match(line, /^listening on 127\.0\.0\.1:\d+\n$/);
  const port = Number(line.trim().split(':').pop());
  const meta = await run('/usr/bin/kcat', ['-b', `127.0.0.1:${port}`, '-L', '-J', '-t', 'auto'], { timeoutMs: 20_000 });
  assert.equal(meta.code, 0, `kcat: ${meta.stderr}`);
  assert.equal(JSON.parse(meta.stdout).topics[0].partitions.length, 3, '--partitions sets the auto-created partition count');
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  child.kill('SIGTERM');
  assert.equal(await exited, 0, `broker stderr: ${stderr}`);
  assert.equal(stdout, line, 'nothing else on stdout');
});

test('bad arguments give one error line naming the flag and a non-zero exit', async () => {
  const dir = tempDir('dev-broker-cli');
  const file = join(dir.path, 'a-file');
  writeFileSync(file, '');
  const cases: [string[], RegExp][] = [
    [['--data-dir', join(file, 'sub')], /cannot use data directory .*a-file/],
    [['--port', 'abc'], /--port/],
    [['--port', '70000'], /--port/],
    [['--partitions', '0'], /--partitions/],
    [['--bogus'], /--bogus/],
  ];
  for (const [argv, pattern] of cases) {
    const [cmd, args] = node(argv);
    const res = await run(cmd, [...args], { timeoutMs: 15_000 });
    assert.notEqual(res.code, 0, argv.join(' '));
    assert.equal(res.stdout, '');
    const lines = res.stderr.trim().split('\n');
    assert.equal(lines.length, 1, res.stderr);
    assert.match(lines[0], pattern);
  }
  dir.remove();
});
