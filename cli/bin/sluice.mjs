#!/usr/bin/env node
// The `sluice` bin: runs the compiled CLI from dist/ (`npm run build`), building it first if a
// fresh clone has not been built yet.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';

const main = new URL('../../dist/cli/src/main.js', import.meta.url);
if (!existsSync(main)) {
  execFileSync(process.execPath, [new URL('../../scripts/build.mjs', import.meta.url).pathname], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
}
await import(main.href);
