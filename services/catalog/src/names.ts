/**
 * Names of databases and tables: 1-128 characters of lower-case ASCII letters, digits and
 * `_`, not starting with a digit. Lower case only, so names compare the same in PostgreSQL,
 * on case-insensitive file systems and in SQL engines that fold case; no `.`, `/` or `..`,
 * so a name can never address a path outside its parent location.
 *
 * Names of sources and jobs are never paths nor SQL identifiers, and users name jobs like
 * `orders-to-lake`: lower-case letters, digits, `_` and `-`, starting with a letter or digit.
 * No `.` either, since a job name is a NATS subject token.
 */
import { invalidArgument } from '#shared/errors.js';

const NAME = /^[a-z_][a-z0-9_]{0,127}$/;

export function nameProblem(name: string): string | undefined {
  if (name === '') return 'is required';
  if (NAME.test(name)) return undefined;
  if (name.length > 128) return 'is longer than 128 characters';
  if (/[A-Z]/.test(name)) return 'must be lower case';
  return 'must match ^[a-z_][a-z0-9_]{0,127}$ (lower-case letters, digits, _; not starting with a digit)';
}

const RESOURCE_NAME = /^[a-z0-9][a-z0-9_-]{0,127}$/;

/** A source or job name, or INVALID_ARGUMENT naming the request field. */
export function validResourceName(name: string | undefined, field: string): string {
  const text = name ?? '';
  if (RESOURCE_NAME.test(text)) return text;
  const problem =
    text === ''
      ? 'is required'
      : text.length > 128
        ? 'is longer than 128 characters'
        : /[A-Z]/.test(text)
          ? 'must be lower case'
          : 'must match ^[a-z0-9][a-z0-9_-]{0,127}$ (lower-case letters, digits, _ and -)';
  throw invalidArgument(`${field} ${quotedPrefix(text)} ${problem}`, { field });
}

/** Returns the name, or throws INVALID_ARGUMENT naming the request field. */
export function validName(name: string | undefined, field: string): string {
  const problem = nameProblem(name ?? '');
  if (problem) throw invalidArgument(`${field} ${quotedPrefix(name ?? '')} ${problem}`, { field });
  return name as string;
}

/** Kafka's topic rule: 1-249 of letters, digits, `.`, `_`, `-`, and not `.` or `..`. */
export function validTopic(topic: string, field: string): string {
  if (!/^[A-Za-z0-9._-]{1,249}$/.test(topic) || topic === '.' || topic === '..') {
    throw invalidArgument(`${field} ${quotedPrefix(topic)} is not a valid Kafka topic name`, { field });
  }
  return topic;
}

/** A name as an error message quotes it: its first 64 characters at most. */
export function quotedPrefix(text: string): string {
  return text.length <= 64 ? JSON.stringify(text) : `${JSON.stringify(text.slice(0, 64))}… (${text.length} characters)`;
}
