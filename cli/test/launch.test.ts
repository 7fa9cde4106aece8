import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { describe, it } from 'node:test';
import {
  ALLOCATOR_ENV,
  DIST_DIR,
  heapFlags,
  programArgs,
  programEnv,
  REPO_DIR,
  startupTimeoutMs,
  waitForListeningAddress,
} from '#cli/launch.js';

describe('startupTimeoutMs: the allowance grows with the processes starting together, doubled under CI', () => {
  const cases: [starting: number, env: Record<string, string | undefined>, expectedMs: number][] = [
    [1, {}, 30_000],
    [4, {}, 60_000],
    [0, {}, 30_000],
    [1, { CI: 'true' }, 60_000],
    [4, { CI: 'true' }, 120_000],
  ];
  for (const [starting, env, expectedMs] of cases)
    it(`${starting} starting${env.CI ? ' on CI' : ''}: ${expectedMs} ms`, () => assert.equal(startupTimeoutMs(starting, env), expectedMs));
});

describe('programArgs: the compiled entry point under dist/', () => {
  it('names the program under the repository dist/ directory (npm test builds first)', () => {
    assert.equal(DIST_DIR, `${REPO_DIR}/dist`);
    const [entry, ...args] = programArgs('commit', ['--flag']);
    assert.equal(entry, `${DIST_DIR}/services/commit/src/main.js`);
    assert.ok(existsSync(entry));
    assert.deepEqual(args, ['--flag']);
  });
});

describe('heapFlags: the services that move records get bounded heaps, unless NODE_OPTIONS says otherwise', () => {
  const cases: [program: Parameters<typeof heapFlags>[0], nodeOptions: string | undefined, expected: string[]][] = [
    ['transformation', undefined, ['--max-old-space-size=256', '--max-semi-space-size=2', '--single-threaded-gc']],
    ['ingestion', undefined, ['--max-old-space-size=256', '--single-threaded-gc']],
    ['commit', undefined, []],
    ['catalog', undefined, []],
    ['transformation', '--max-old-space-size=512', ['--max-semi-space-size=2', '--single-threaded-gc']],
    ['transformation', '--enable-source-maps --max-semi-space-size=16', ['--max-old-space-size=256', '--single-threaded-gc']],
    ['ingestion', '--enable-source-maps', ['--max-old-space-size=256', '--single-threaded-gc']],
  ];
  for (const [program, nodeOptions, expected] of cases)
    it(`${program}${nodeOptions ? ` with NODE_OPTIONS=${nodeOptions}` : ''}: ${expected.join(' ') || 'none'}`, () =>
      assert.deepEqual(heapFlags(program, nodeOptions === undefined ? {} : { NODE_OPTIONS: nodeOptions }), expected));

  it('programArgs puts them before the entry point', () =>
    assert.deepEqual(programArgs('transformation', ['--flag'], {}), [
      ...heapFlags('transformation', {}),
      `${DIST_DIR}/services/transformation/src/main.js`,
      '--flag',
    ]));
});

describe("programEnv: DuckDB's allocator settings, unless the environment gives its own", () => {
  it('adds them to an environment without them, and keeps the rest', () =>
    assert.deepEqual(programEnv({ PATH: '/bin' }), { ...ALLOCATOR_ENV, PATH: '/bin' }));
  it("keeps the environment's own value", () =>
    assert.equal(programEnv({ DUCKDB_JE_MALLOC_CONF: 'dirty_decay_ms:5000' }).DUCKDB_JE_MALLOC_CONF, 'dirty_decay_ms:5000'));

  // jemalloc names a setting it does not know on stderr when DuckDB's library loads, so this
  // proves both that DuckDB's jemalloc reads the variable and that ours are all valid.
  const loadDuckDB = (env: NodeJS.ProcessEnv) =>
    new Promise<string>((resolve, reject) => {
      const source = `require('@duckdb/node-api').DuckDBInstance.create(':memory:').then((db) => db.connect()).then((c) => c.run('SELECT 1'))`;
      const child = spawn(process.execPath, ['-e', source], { cwd: REPO_DIR, env, stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr.setEncoding('utf8').on('data', (text: string) => (stderr += text));
      child.on('error', reject);
      child.on('exit', (code) => (code === 0 ? resolve(stderr) : reject(new Error(`node exited with ${code}: ${stderr}`))));
    });
  it("DuckDB's jemalloc takes them without complaint, and names a setting it does not know", async () => {
    assert.equal(await loadDuckDB(programEnv({ PATH: process.env.PATH })), '');
    assert.match(
      await loadDuckDB(programEnv({ PATH: process.env.PATH, DUCKDB_JE_MALLOC_CONF: 'no_such_setting:1' })),
      /Invalid conf pair: no_such_setting:1/,
    );
  });
});

describe('waitForListeningAddress', () => {
  const program = (source: string) => spawn(process.execPath, ['-e', source], { stdio: ['ignore', 'pipe', 'ignore'] });

  it('resolves with the announced address, even when it arrives in pieces', async () => {
    // The program keeps running, as the dev broker does: its exit could otherwise be seen before its output.
    const child = program(
      `process.stdout.write('starting\\nlisten'); setTimeout(() => process.stdout.write('ing on 127.0.0.1:4242\\n'), 50); setInterval(() => {}, 1000)`,
    );
    try {
      assert.equal(await waitForListeningAddress(child, 'the test program', 30_000), '127.0.0.1:4242');
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('rejects naming the program when it exits first', async () => {
    const child = program('process.exit(3)');
    await assert.rejects(waitForListeningAddress(child, 'the test program', 30_000), {
      message: 'the test program exited (code 3) before it was listening',
    });
  });

  it('rejects naming the program and the wait when it never announces an address', async () => {
    const child = program('setInterval(() => {}, 1000)');
    try {
      await assert.rejects(waitForListeningAddress(child, 'the silent program', 100), {
        message: 'timed out after 100 ms waiting for the silent program to be listening',
      });
    } finally {
      child.kill('SIGKILL');
    }
  });
});
