/**
 * What a test process leaves running or on disk if it exits without stopping it (a test that
 * failed before its after() ran): child processes are killed and directories removed on exit,
 * by one hook. Killed itself (kill -9), the process runs no hook; mesh.ts and kafka.ts cover
 * that case their own ways (stdin pipes, a watchdog).
 */
import type { ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';

const children = new Set<ChildProcess>();
const dirs = new Set<string>();
let installed = false;

function install(): void {
  if (installed) return;
  installed = true;
  process.once('exit', () => {
    for (const child of children) child.kill('SIGKILL');
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });
}

/** SIGKILLs `child` if this process exits while it still runs. */
export function killOnExit(child: ChildProcess): void {
  install();
  children.add(child);
  child.once('exit', () => children.delete(child));
}

/** Removes `dir` if this process exits first; the returned function forgets it (its owner removed it). */
export function removeOnExit(dir: string): () => void {
  install();
  dirs.add(dir);
  return () => dirs.delete(dir);
}
