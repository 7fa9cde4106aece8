/**
 * `npm run bench [-- <name>... | --all]`: runs benchmarks, each in its own process (so one
 * does not warm or load another), writes bench/results.json and prints a summary.
 *
 * Without names it runs the end-to-end pipeline benchmark and the component ones the issues
 * name (dev broker drain, transformation core, Transform stream), within ~10 minutes on 2
 * cores. Speed targets are ratios measured inside one run, never absolute numbers.
 */
import { spawn } from 'node:child_process';
import { readdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const benchDir = fileURLToPath(new URL('.', import.meta.url));
const root = fileURLToPath(new URL('..', import.meta.url));
const available = readdirSync(benchDir)
  .filter((f) => f.endsWith('.bench.ts'))
  .map((f) => f.slice(0, -'.bench.ts'.length))
  .sort();
const DEFAULT = ['pipeline', 'dev-broker', 'transform-core', 'transform-stream'].filter((n) => available.includes(n));

const args = process.argv.slice(2);
const names = args.includes('--all') ? available : args.length > 0 ? args : DEFAULT;
for (const name of names) {
  if (!available.includes(name)) {
    process.stderr.write(`bench: no benchmark "${name}"; available: ${available.join(', ')}\n`);
    process.exit(2);
  }
}

/** Runs one benchmark module in a child process; its default export's result comes back as JSON. */
function runOne(name: string): Promise<Record<string, unknown>> {
  const script = `const m = await import(${JSON.stringify(`./bench/${name}.bench.ts`)}); const r = await m.default(); process.stdout.write('\\n@@RESULT@@' + JSON.stringify(r) + '\\n'); process.exit(0);`;
  return new Promise((resolve) => {
    const started = performance.now();
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      cwd: root,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (chunk) => (out += chunk));
    child.on('exit', (code) => {
      const seconds = Number(((performance.now() - started) / 1000).toFixed(1));
      const line = out.split('\n').find((l) => l.startsWith('@@RESULT@@'));
      if (code !== 0 || !line) resolve({ error: `exited with code ${code}`, seconds });
      else resolve({ ...JSON.parse(line.slice('@@RESULT@@'.length)), seconds });
    });
  });
}

const results: Record<string, unknown> = {
  machine: { cores: (await import('node:os')).cpus().length, node: process.version },
  startedAt: new Date().toISOString(),
};
for (const name of names) {
  process.stderr.write(`bench: ${name}…\n`);
  results[name] = await runOne(name);
  process.stderr.write(`bench: ${name} ${JSON.stringify(results[name])}\n`);
}
writeFileSync(`${benchDir}results.json`, `${JSON.stringify(results, null, 2)}\n`);

function flatten(prefix: string, value: unknown, out: [string, string][]): void {
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    for (const [k, v] of Object.entries(value)) flatten(prefix ? `${prefix}.${k}` : k, v, out);
  } else
    out.push([prefix, typeof value === 'number' ? value.toLocaleString('en-US', { maximumFractionDigits: 2 }) : JSON.stringify(value)]);
}
const rows: [string, string][] = [];
for (const name of names) flatten(name, results[name], rows);
const width = Math.max(...rows.map(([k]) => k.length));
process.stdout.write(`${rows.map(([k, v]) => `${k.padEnd(width)}  ${v}`).join('\n')}\nwritten to bench/results.json\n`);
