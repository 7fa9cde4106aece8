/**
 * Per-process CPU time and memory from Linux /proc, for the processes of the mesh: how much
 * of a core each service used during a phase (which one saturates), and its peak RSS.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

/** Clock ticks per second of /proc/<pid>/stat times (100 on practically every Linux). */
const TICKS_PER_SECOND = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

export interface ProcSample {
  /** User + system CPU seconds since the process started (all its threads). */
  cpuSeconds: number;
  rssBytes: number;
  /** VmHWM: the kernel's own peak-RSS mark, so no spike between samples is missed. */
  peakRssBytes: number;
}

/** Parses the text of /proc/<pid>/stat and /proc/<pid>/status; exported for its test table. */
export function parseProc(statText: string, statusText: string): ProcSample {
  // The command name (field 2) is in parentheses and may itself hold spaces or parentheses.
  const afterName = statText.slice(statText.lastIndexOf(')') + 2).split(' ');
  // afterName[0] is field 3 (state); utime and stime are fields 14 and 15.
  const ticks = Number(afterName[11]) + Number(afterName[12]);
  const kb = (key: string) => {
    const match = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(statusText);
    return match ? Number(match[1]) * 1024 : 0;
  };
  return { cpuSeconds: ticks / TICKS_PER_SECOND, rssBytes: kb('VmRSS'), peakRssBytes: kb('VmHWM') };
}

/** The process's current sample, or undefined once it has exited. */
export function sampleProc(pid: number): ProcSample | undefined {
  try {
    return parseProc(readFileSync(`/proc/${pid}/stat`, 'utf8'), readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return undefined;
  }
}

export interface CpuUse {
  cpuSeconds: number;
  /** CPU seconds per wall-clock second: 1.0 is one core fully busy. */
  cores: number;
}

/** CPU use of named processes between two points in time. */
export class CpuWindow {
  private readonly start = new Map<string, number>();
  private readonly startedAt = performance.now();

  constructor(private readonly pids: Record<string, number>) {
    for (const [name, pid] of Object.entries(pids)) this.start.set(name, sampleProc(pid)?.cpuSeconds ?? 0);
  }

  end(): Record<string, CpuUse> {
    const wall = (performance.now() - this.startedAt) / 1000;
    const use: Record<string, CpuUse> = {};
    for (const [name, pid] of Object.entries(this.pids)) {
      const cpuSeconds = (sampleProc(pid)?.cpuSeconds ?? 0) - (this.start.get(name) ?? 0);
      use[name] = { cpuSeconds: round(cpuSeconds, 2), cores: round(cpuSeconds / wall, 2) };
    }
    return use;
  }
}

/** Peak RSS of each named process in MiB, read just before the processes stop. */
export function peakRssMiB(pids: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(pids).map(([name, pid]) => [name, round((sampleProc(pid)?.peakRssBytes ?? 0) / (1 << 20), 1)]));
}

export const round = (value: number, digits: number) => Number(value.toFixed(digits));
