/**
 * The services' JSON log lines as a person reads them in `sluice up`'s terminal:
 * `17:05:12.301 INFO  commit         snapshot committed  table=demo.orders files=1 records=100`.
 * The services themselves always log JSON (for collectors); only `sluice up` rewrites it, and
 * `sluice up --json` leaves it as it is. A line that is not a log record passes unchanged.
 */
const OWN_FIELDS = new Set(['level', 'time', 'service', 'msg', 'pid', 'hostname']);
const MAX_VALUE = 200;

export function humanLogLine(line: string): string {
  if (!line.startsWith('{')) return line;
  let record: Record<string, unknown>;
  try {
    record = JSON.parse(line);
  } catch {
    return line;
  }
  if (typeof record.msg !== 'string' && typeof record.level !== 'string') return line;
  const time = typeof record.time === 'string' ? record.time.slice(11, 23) : '';
  const level = String(record.level ?? '')
    .toUpperCase()
    .padEnd(5);
  const service = String(record.service ?? '').padEnd(14);
  const fields = Object.entries(record)
    .filter(([key]) => !OWN_FIELDS.has(key))
    .map(([key, value]) => `${key}=${fieldText(value)}`);
  return [time, level, service, String(record.msg ?? ''), ...(fields.length > 0 ? [` ${fields.join(' ')}`] : [])].join(' ').trimEnd();
}

function fieldText(value: unknown): string {
  const text = typeof value === 'string' ? (/[\s"=]/.test(value) || value === '' ? JSON.stringify(value) : value) : JSON.stringify(value);
  return text.length > MAX_VALUE ? `${text.slice(0, MAX_VALUE)}…` : text;
}

/** Feeds whole lines of a stream of chunks to `write`, each rewritten by humanLogLine. */
export function humanLogWriter(write: (text: string) => void): (chunk: string) => void {
  let pending = '';
  return (chunk) => {
    pending += chunk;
    const lines = pending.split('\n');
    pending = lines.pop() ?? '';
    if (lines.length > 0) write(`${lines.map(humanLogLine).join('\n')}\n`);
  };
}
