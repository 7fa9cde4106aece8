/**
 * Per-process CPU time and memory from Linux /proc, for the processes of the mesh: how much
 * of a core each service used during a phase (which one saturates), and its peak RSS.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';

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

/**
 * CPU seconds of the process's main thread alone (/proc/<pid>/task/<pid>/stat): the JavaScript
 * side of a service, apart from its other threads (DuckDB's workers, the collector's helpers,
 * libuv's pool). Undefined once the process has exited.
 */
export function mainThreadCpuSeconds(pid: number): number | undefined {
  try {
    return parseProc(readFileSync(`/proc/${pid}/task/${pid}/stat`, 'utf8'), '').cpuSeconds;
  } catch {
    return undefined;
  }
}

/**
 * CPU seconds of this process (all threads, so DuckDB's workers too) plus its reaped
 * children (fields 16 and 17 of /proc/self/stat: a child's time is added when it exits).
 */
export function selfAndChildrenCpuSeconds(): number {
  const fields = readFileSync('/proc/self/stat', 'utf8');
  const afterName = fields.slice(fields.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(afterName[11]) + Number(afterName[12]) + Number(afterName[13]) + Number(afterName[14]);
  return ticks / TICKS_PER_SECOND;
}

export interface CpuUse {
  cpuSeconds: number;
  /** Of cpuSeconds, the main thread's (the rest is the process's other threads). */
  mainThreadCpuSeconds: number;
  /** CPU seconds per wall-clock second over the window: 1.0 is one core fully busy. */
  cores: number;
  /** The busiest one-second interval: near 1.0 (or above, with GC threads), a core is saturated. */
  peakCores: number;
}

const PEAK_INTERVAL_MS = 1000;

/** CPU use of named processes between construction and end(), sampled each second for peaks. */
export class CpuWindow {
  private readonly first = new Map<string, number>();
  private readonly firstMain = new Map<string, number>();
  private readonly last = new Map<string, number>();
  private readonly peak = new Map<string, number>();
  private readonly startedAt = performance.now();
  private lastAt = this.startedAt;
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly pids: Record<string, number>) {
    for (const [name, pid] of Object.entries(pids)) {
      const cpu = sampleProc(pid)?.cpuSeconds ?? 0;
      this.first.set(name, cpu);
      this.firstMain.set(name, mainThreadCpuSeconds(pid) ?? 0);
      this.last.set(name, cpu);
      this.peak.set(name, 0);
    }
    this.timer = setInterval(() => this.tick(), PEAK_INTERVAL_MS);
    this.timer.unref();
  }

  private tick(): void {
    const now = performance.now();
    const seconds = (now - this.lastAt) / 1000;
    this.lastAt = now;
    for (const [name, pid] of Object.entries(this.pids)) {
      const cpu = sampleProc(pid)?.cpuSeconds ?? this.last.get(name)!;
      this.peak.set(name, Math.max(this.peak.get(name)!, (cpu - this.last.get(name)!) / seconds));
      this.last.set(name, cpu);
    }
  }

  end(): Record<string, CpuUse> {
    clearInterval(this.timer);
    const wall = (performance.now() - this.startedAt) / 1000;
    const use: Record<string, CpuUse> = {};
    for (const [name, pid] of Object.entries(this.pids)) {
      const cpuSeconds = (sampleProc(pid)?.cpuSeconds ?? this.last.get(name)!) - this.first.get(name)!;
      const mainSeconds = (mainThreadCpuSeconds(pid) ?? this.firstMain.get(name)!) - this.firstMain.get(name)!;
      use[name] = {
        cpuSeconds: round(cpuSeconds, 2),
        mainThreadCpuSeconds: round(mainSeconds, 2),
        cores: round(cpuSeconds / wall, 2),
        peakCores: round(this.peak.get(name)!, 2),
      };
    }
    return use;
  }
}

/** Peak RSS (VmHWM) and current RSS of each named process in MiB. */
export function rssMiB(pids: Record<string, number>): { peak: Record<string, number>; now: Record<string, number> } {
  const samples = Object.entries(pids).map(([name, pid]) => [name, sampleProc(pid)] as const);
  const mib = (bytes: number | undefined) => round((bytes ?? 0) / (1 << 20), 1);
  return {
    peak: Object.fromEntries(samples.map(([name, s]) => [name, mib(s?.peakRssBytes)])),
    now: Object.fromEntries(samples.map(([name, s]) => [name, mib(s?.rssBytes)])),
  };
}

/**
 * Resets each process's peak-RSS mark (VmHWM) to its current RSS (`5` into clear_refs), so a
 * phase's peak is its own; false where the kernel refuses (not the owner, an old kernel).
 */
function resetPeakRss(pids: Record<string, number>): boolean {
  try {
    for (const pid of Object.values(pids)) writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

/**
 * Peak RSS per process over a run, and of chosen phases apart: VmHWM is reset at a phase's
 * start (where the kernel allows it), after folding the peak so far into the run's.
 */
export class PeakRss {
  private readonly overRun: Record<string, number> = {};

  constructor(private readonly pids: () => Record<string, number>) {}

  /** Starts a phase; false when the kernel refused the reset (its peak is then the run's so far). */
  startPhase(): boolean {
    this.fold();
    return resetPeakRss(this.pids());
  }

  /** Each process's peak since the phase started, in MiB. */
  phase(): Record<string, number> {
    return rssMiB(this.pids()).peak;
  }

  /** Each process's peak over the run so far, in MiB. */
  run(): Record<string, number> {
    this.fold();
    return { ...this.overRun };
  }

  private fold(): void {
    for (const [name, mib] of Object.entries(rssMiB(this.pids()).peak)) this.overRun[name] = Math.max(this.overRun[name] ?? 0, mib);
  }
}

export const round = (value: number, digits: number) => Number(value.toFixed(digits));
