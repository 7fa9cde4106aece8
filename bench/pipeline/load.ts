/**
 * Loads the topic with `kcat -P` (librdkafka), one process per partition so the partitions
 * are even. kafkajs produces ~16k msgs/s here, which would spend a minute of the benchmark's
 * budget on loading; librdkafka does 1M in a few seconds. Loading is not what is measured.
 */
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';

const CHUNK = 5000;

type Kcat = ChildProcessByStdio<Writable, null, Readable>;

function kcatProducer(broker: string, topic: string, partition: number): { child: Kcat; done: Promise<void> } {
  const child = spawn('kcat', ['-P', '-b', broker, '-t', topic, '-p', String(partition), '-X', 'linger.ms=5'], {
    stdio: ['pipe', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-2000)));
  const done = new Promise<void>((resolve, reject) => {
    child.once('error', (err) => reject(new Error(`cannot run kcat (is it installed?): ${err.message}`)));
    child.once('close', (code) =>
      code === 0 ? resolve() : reject(new Error(`kcat -P exited with code ${code}: ${stderr.trim().split('\n').pop() ?? ''}`)),
    );
  });
  done.catch(() => {});
  return { child, done };
}

/** Writes records 0..count-1 (one JSON line each, no newlines inside) in chunks, partition by chunk. */
export async function loadTopic(
  broker: string,
  topic: string,
  partitions: number,
  count: number,
  record: (i: number) => string,
): Promise<{ seconds: number; bytes: number }> {
  const t0 = performance.now();
  const producers = Array.from({ length: partitions }, (_, p) => kcatProducer(broker, topic, p));
  let bytes = 0;
  for (let start = 0, chunk = 0; start < count; start += CHUNK, chunk++) {
    let text = '';
    for (let i = start; i < Math.min(count, start + CHUNK); i++) text += `${record(i)}\n`;
    bytes += text.length - Math.min(CHUNK, count - start);
    const { child, done } = producers[chunk % partitions];
    if (!child.stdin.write(text)) await Promise.race([new Promise((resolve) => child.stdin.once('drain', resolve)), done]);
  }
  for (const { child } of producers) child.stdin.end();
  await Promise.all(producers.map((p) => p.done));
  return { seconds: Number(((performance.now() - t0) / 1000).toFixed(2)), bytes };
}
