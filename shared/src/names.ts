/**
 * Names of databases and tables: 1-128 characters of lower-case ASCII letters, digits and
 * `_`, not starting with a digit. Lower case only, so names compare the same in PostgreSQL,
 * on case-insensitive file systems and in SQL engines that fold case; no `.`, `/` or `..`,
 * so a name can never address a path outside its parent location.
 *
 * Names of sources and jobs are never paths nor SQL identifiers, and users name jobs like
 * `orders-to-lake`: lower-case letters, digits, `_` and `-`, starting with a letter or digit.
 * No `.` either, since a job name is a NATS subject token.
 *
 * The catalog, the shared job rules (job-rules.ts) and the CLI's spec files all check names
 * here, and every message quotes at most a short prefix of the name (a 1 MB name is refused
 * with 64 characters of it, never echoed whole).
 */
import { invalidArgument } from './errors.js';

/** The longest database, table, source or job name. */
export const MAX_NAME_LENGTH = 128;

export const IDENTIFIER = /^[a-z_][a-z0-9_]{0,127}$/;
export const RESOURCE_NAME = /^[a-z0-9][a-z0-9_-]{0,127}$/;
/** Kafka's topic rule: 1-249 of letters, digits, `.`, `_`, `-` (and not `.` or `..`). */
export const TOPIC = /^[A-Za-z0-9._-]{1,249}$/;

/** What is wrong with a database or table name, or undefined. */
export function nameProblem(name: string): string | undefined {
  if (name === '') return 'is required';
  if (IDENTIFIER.test(name)) return undefined;
  if (name.length > MAX_NAME_LENGTH) return `is longer than ${MAX_NAME_LENGTH} characters`;
  if (/[A-Z]/.test(name)) return 'must be lower case';
  return 'must match ^[a-z_][a-z0-9_]{0,127}$ (lower-case letters, digits, _; not starting with a digit)';
}

/** What is wrong with a source or job name, or undefined. */
export function resourceNameProblem(name: string): string | undefined {
  if (name === '') return 'is required';
  if (RESOURCE_NAME.test(name)) return undefined;
  if (name.length > MAX_NAME_LENGTH) return `is longer than ${MAX_NAME_LENGTH} characters`;
  if (/[A-Z]/.test(name)) return 'must be lower case';
  return 'must match ^[a-z0-9][a-z0-9_-]{0,127}$ (lower-case letters, digits, _ and -)';
}

/** What is wrong with a Kafka topic name, or undefined. */
export function topicProblem(topic: string): string | undefined {
  if (topic === '') return 'is required';
  if (TOPIC.test(topic) && topic !== '.' && topic !== '..') return undefined;
  return 'is not a valid Kafka topic name';
}

/** A source or job name, or INVALID_ARGUMENT naming the request field. */
export function validResourceName(name: string | undefined, field: string): string {
  return checked(name ?? '', field, resourceNameProblem);
}

/** Returns the name, or throws INVALID_ARGUMENT naming the request field. */
export function validName(name: string | undefined, field: string): string {
  return checked(name ?? '', field, nameProblem);
}

export function validTopic(topic: string, field: string): string {
  return checked(topic, field, topicProblem);
}

function checked(text: string, field: string, problemOf: (text: string) => string | undefined): string {
  const problem = problemOf(text);
  if (problem) throw invalidArgument(`${field} ${quotedPrefix(text)} ${problem}`, { field });
  return text;
}

/** A name as an error message quotes it: its first 64 characters at most. */
export function quotedPrefix(text: string): string {
  return text.length <= 64 ? JSON.stringify(text) : `${JSON.stringify(text.slice(0, 64))}… (${text.length} characters)`;
}
