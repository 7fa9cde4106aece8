import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';

// `npm ci` refuses a lock that names an optional dependency without an entry for it; the
// registry here has only linux-x64 platform packages, so `npm install` leaves such names behind.
test('package-lock.json names no optional dependency it has no entry for (run npm run lock:prune)', async () => {
  const lock = JSON.parse(await readFile(new URL('../../package-lock.json', import.meta.url), 'utf8'));
  const packages: Record<string, { optionalDependencies?: Record<string, string> }> = lock.packages;
  const dangling: string[] = [];
  for (const [location, entry] of Object.entries(packages)) {
    for (const name of Object.keys(entry.optionalDependencies ?? {})) {
      if (!(`${location}/node_modules/${name}` in packages) && !(`node_modules/${name}` in packages))
        dangling.push(`${location} → ${name}`);
    }
  }
  assert.deepEqual(dangling, []);
});
