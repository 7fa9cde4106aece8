/**
 * kcat, the independent librdkafka client (Debian's package), as tests run it: arguments in,
 * stdin from a string, its output decoded as UTF-8 once whole.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';

export const KCAT = process.env.KCAT ?? '/usr/bin/kcat';

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** kcat with the given arguments against brokers; stdin from input. Killed after 30 s. */
export async function kcat(brokers: string, args: string[], input = ''): Promise<RunResult> {
  const child = spawn(KCAT, ['-b', brokers, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (t: string) => (stdout += t));
  child.stderr!.setEncoding('utf8').on('data', (t: string) => (stderr += t));
  child.stdin!.end(input);
  const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
  // 'close', not 'exit': the output may still be arriving when the process has exited.
  const [code] = (await once(child, 'close')) as [number | null];
  clearTimeout(timer);
  return { code, stdout, stderr };
}
