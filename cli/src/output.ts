/**
 * What the CLI prints: tables for people, JSON for scripts (`--json`), and failures as one
 * line on stderr with a non-zero exit code — never a stack trace.
 */
import { status } from '@grpc/grpc-js';
import { ConfigError } from '#shared/config.js';
import { grpcCode, grpcMessage } from '#shared/errors.js';
import { JobSpecError } from './spec-reader.js';

/** A failure the user can act on; its message is printed as is. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

export const usageError = (message: string) => new CliError(`${message} (see sluice --help)`, 2);

export interface Output {
  readonly json: boolean;
  /** Writes a result: the value as JSON with --json, else the human rendering. */
  result(value: unknown, human: () => string): void;
  /** Progress and notes for people, on stderr so stdout stays parseable. */
  note(text: string): void;
}

export function createOutput(json: boolean, stdout = process.stdout, stderr = process.stderr): Output {
  return {
    json,
    result(value, human) {
      stdout.write(json ? `${JSON.stringify(value, jsonReplacer, 2)}\n` : `${human()}\n`);
    },
    note(text) {
      if (!json) stderr.write(`${text}\n`);
    },
  };
}

function jsonReplacer(_key: string, value: unknown): unknown {
  if (typeof value === 'bigint') return Number.isSafeInteger(Number(value)) ? Number(value) : value.toString();
  if (value instanceof Uint8Array) return Buffer.from(value).toString('base64');
  return value;
}

/** A plain text table with left-aligned columns. */
export function table(headers: string[], rows: unknown[][]): string {
  const cells = [
    headers,
    ...rows.map((r) =>
      r.map((c) => (c === null || c === undefined ? '' : typeof c === 'object' ? JSON.stringify(c, jsonReplacer) : String(c))),
    ),
  ];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  return cells
    .map((r) =>
      r
        .map((c, i) => (c ?? '').padEnd(widths[i]))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

const CODE_NAMES: Partial<Record<status, string>> = {
  [status.UNAVAILABLE]: 'unavailable',
  [status.DEADLINE_EXCEEDED]: 'timed out',
};

/**
 * The TLS error in the details of an UNAVAILABLE call ("No connection established. Last error:
 * Error: self-signed certificate in certificate chain (…)"), or undefined when it is not one.
 */
export function tlsFailure(details: string): string | undefined {
  const last = (details.split('Last error: ')[1] ?? details).replace(/^Error: /, '').split(/\s*\(\d{4}-\d\d-\d\dT|\. Resolution note:/)[0];
  // OpenSSL's own line ("…:SSL routines:ssl3_read_bytes:tlsv13 alert certificate required:…"): its reason.
  const reason = (/SSL routines:[^:]*:([^:]+)/.exec(last)?.[1] ?? last).trim();
  return /certificate|SSL|TLS|handshake|alert/i.test(reason) ? reason : undefined;
}

/** The one line printed for an error, and the exit code. */
export function describeError(err: unknown, target?: string): { line: string; exitCode: number } {
  if (err instanceof CliError) return { line: err.message, exitCode: err.exitCode };
  if (err instanceof JobSpecError) return { line: `invalid job spec: ${err.message}`, exitCode: 2 };
  if (err instanceof ConfigError) return { line: err.message, exitCode: 2 };
  const code = grpcCode(err);
  if (code !== undefined) {
    const tls = code === status.UNAVAILABLE ? tlsFailure(grpcMessage(err)) : undefined;
    if (tls !== undefined) {
      const hint = 'check SLUICE_TLS_CA or --tls-ca, and under mutual TLS --tls-cert and --tls-key';
      return { line: `the TLS handshake with ${target ?? 'a Sluice service'} failed: ${tls} (${hint})`, exitCode: 3 };
    }
    if (code === status.UNAVAILABLE || code === status.DEADLINE_EXCEEDED) {
      return { line: `${target ?? 'a Sluice service'} is ${CODE_NAMES[code]} (is the mesh running? try: sluice up)`, exitCode: 3 };
    }
    return { line: grpcMessage(err), exitCode: 1 };
  }
  return { line: err instanceof Error ? err.message : String(err), exitCode: 1 };
}
