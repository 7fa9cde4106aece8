#!/usr/bin/env node
// `npm run build`: compiles the services, shared code, the CLI and the dev broker to dist/, so
// that every process starts as plain JavaScript instead of compiling TypeScript at each start.
// Incremental: a build with nothing changed takes a few seconds. dist/ mirrors the source tree,
// so the subpath imports (#shared/…, #kafka-broker/…) keep their targets in dist/package.json,
// and the files read at run time (catalog migrations, protos) are copied beside the code.
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const dist = join(root, 'dist');
const started = performance.now();

const tsc = join(root, 'node_modules', '.bin', 'tsc');
try {
  execFileSync(tsc, ['-p', join(root, 'tsconfig.build.json')], { cwd: root, stdio: 'inherit' });
} catch {
  process.stderr.write('build: the TypeScript compiler reported errors (above); dist/ is not up to date\n');
  process.exit(1);
}

const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const imports = Object.fromEntries(Object.entries(pkg.imports).filter(([name]) => !name.startsWith('#test-support')));
writeFileSync(join(dist, 'package.json'), `${JSON.stringify({ type: 'module', private: true, imports }, null, 2)}\n`);

for (const asset of ['proto', 'services/catalog/migrations']) {
  rmSync(join(dist, asset), { recursive: true, force: true });
  mkdirSync(join(dist, asset), { recursive: true });
  cpSync(join(root, asset), join(dist, asset), { recursive: true });
}
process.stderr.write(`build: dist/ ready in ${Math.round(performance.now() - started)} ms\n`);
