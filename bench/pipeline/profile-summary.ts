/**
 * `npx tsx bench/pipeline/profile-summary.ts <dir>`: where the CPU went in the .cpuprofile
 * files PIPELINE_BENCH_CPU_PROF wrote — per process, the busy share of the main thread and
 * the functions with the most self time, grouped by package or source file.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

interface CpuProfile {
  nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number } }[];
  samples: number[];
  timeDeltas: number[];
}

/** A package name for node_modules code, a repository path for ours, the frame name for natives. */
export function area(url: string, functionName: string): string {
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return pkg[1];
  const ours = /\/((?:services|shared|cli)\/.+)$/.exec(url);
  if (ours) return ours[1];
  if (url.startsWith('node:')) return 'node internals';
  return functionName || '(native)';
}

function summarize(profile: CpuProfile, top: number): string[] {
  const frames = new Map(profile.nodes.map((n) => [n.id, n.callFrame]));
  const selfUs = new Map<string, number>();
  const areaUs = new Map<string, number>();
  let totalUs = 0;
  let idleUs = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const us = profile.timeDeltas[i] ?? 0;
    const frame = frames.get(profile.samples[i])!;
    totalUs += us;
    if (frame.functionName === '(idle)') {
      idleUs += us;
      continue;
    }
    // The inspector's own Profiler.start/stop call (building the profile): not the service's work.
    if (frame.functionName === 'dispatch' && frame.url === '') {
      totalUs -= us;
      continue;
    }
    const where = area(frame.url, frame.functionName);
    const key = `${frame.functionName || '(anonymous)'}  ${where}`;
    selfUs.set(key, (selfUs.get(key) ?? 0) + us);
    areaUs.set(where, (areaUs.get(where) ?? 0) + us);
  }
  const busyUs = totalUs - idleUs;
  const pct = (us: number) => `${((100 * us) / busyUs).toFixed(1).padStart(5)}%`;
  const rank = (m: Map<string, number>) => [...m].sort((a, b) => b[1] - a[1]).slice(0, top);
  return [
    `main thread busy ${(busyUs / 1e6).toFixed(2)} s of ${(totalUs / 1e6).toFixed(2)} s (${((100 * busyUs) / totalUs).toFixed(0)}%)`,
    '  by area:',
    ...rank(areaUs).map(([k, us]) => `    ${pct(us)}  ${k}`),
    '  by function (self time):',
    ...rank(selfUs).map(([k, us]) => `    ${pct(us)}  ${k}`),
  ];
}

const dir = process.argv[2];
if (!dir) {
  process.stderr.write('usage: npx tsx bench/pipeline/profile-summary.ts <directory of .cpuprofile files>\n');
  process.exit(2);
}
for (const file of readdirSync(dir)
  .filter((f) => f.endsWith('.cpuprofile'))
  .sort()) {
  const profile = JSON.parse(readFileSync(join(dir, file), 'utf8')) as CpuProfile;
  process.stdout.write(`${[`== ${file}`, ...summarize(profile, 15), ''].join('\n')}\n`);
}
