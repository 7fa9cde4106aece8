#!/usr/bin/env node
/**
 * `npm run lock:prune`: removes from package-lock.json the optional dependencies that have no
 * entry of their own. The registry these machines reach serves only the linux-x64 builds of
 * platform packages (@bufbuild/buf-*, @duckdb/node-bindings-*), so `npm install` cannot record
 * the others, and `npm ci` then refuses the lock as "missing" them. Run after `npm install`.
 */
import { readFileSync, writeFileSync } from 'node:fs';

const path = new URL('../package-lock.json', import.meta.url);
const lock = JSON.parse(readFileSync(path, 'utf8'));
const packages = lock.packages ?? {};
const removed = [];
for (const [location, entry] of Object.entries(packages)) {
  const optional = entry.optionalDependencies;
  if (!optional) continue;
  for (const name of Object.keys(optional)) {
    const nested = `${location}/node_modules/${name}`;
    if (!(nested in packages) && !(`node_modules/${name}` in packages)) {
      delete optional[name];
      removed.push(`${location || '(root)'} → ${name}`);
    }
  }
  if (Object.keys(optional).length === 0) delete entry.optionalDependencies;
}
writeFileSync(path, `${JSON.stringify(lock, null, 2)}\n`);
console.log(
  removed.length
    ? `pruned ${removed.length} unavailable optional dependencies:\n  ${removed.join('\n  ')}`
    : 'package-lock.json has no unavailable optional dependencies',
);
