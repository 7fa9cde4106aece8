import { SluiceError } from '#shared/errors.js';
import { TimeZoneError, zone, type Zone } from '#shared/time.js';
import { status } from '@grpc/grpc-js';

/**
 * Two kinds of failure leave the core:
 * - SpecError: the mapping spec or schema cannot work at all (found once, when a plan is
 *   compiled). It is an INVALID_ARGUMENT SluiceError naming the field, answered as it is.
 * - RecordError: one record cannot become a row. It is returned, never thrown out of the
 *   core, and carries a short reason code (for counters) and a message naming the column
 *   and the record's topic/partition/offset.
 */

export class SpecError extends SluiceError {
  constructor(
    message: string,
    readonly field?: string,
  ) {
    super(status.INVALID_ARGUMENT, message, field ? { field } : {});
    this.name = 'SpecError';
  }
}

/** Stable, low-cardinality reason codes: the keys of the per-job error counters. */
export type ErrorReason =
  | 'invalid_utf8'
  | 'too_large'
  /** More headers than MAX_RECORD_HEADERS (plan.ts). */
  | 'too_many_headers'
  | 'empty'
  | 'null_value'
  | 'invalid_json'
  | 'not_an_object'
  | 'nesting_too_deep'
  | 'invalid_csv'
  | 'unknown_field'
  /** Two fields of one record flatten to the same column name (`a.b` nested and a key "a.b"). */
  | 'field_collision'
  /** New fields or wider values (evolve.ts): applied by the session, never a refusal there. */
  | 'schema_change'
  | 'missing_field'
  | 'type_mismatch'
  | 'out_of_range'
  | 'partition'
  /** Change streams (changes.ts): a record that is not the envelope its format names. */
  | 'not_a_change'
  /** An envelope whose operation is unknown or not supported for upsert tables. */
  | 'unknown_op'
  /** A change without the image it needs (an update without after image, a delete naming no row). */
  | 'no_image'
  /** A change whose row has no value for a key column. */
  | 'no_key'
  /** Anything else that went wrong reading the record (a core bug if it ever shows). */
  | 'unreadable';

export interface RecordLocation {
  topic: string;
  partition: number;
  offset: number;
}

export class RecordError extends Error {
  topic = '';
  partition = -1;
  offset = -1;

  constructor(
    readonly reason: ErrorReason,
    /** What went wrong, without the record location (added by `at`). */
    readonly detail: string,
    readonly column?: string,
  ) {
    super(detail);
    this.name = 'RecordError';
  }

  /** Pins the error to a record; the message then names topic, partition and offset. */
  at(loc: RecordLocation): this {
    this.topic = loc.topic;
    this.partition = loc.partition;
    this.offset = loc.offset;
    this.message = `${this.detail} (topic ${loc.topic}, partition ${loc.partition}, offset ${loc.offset})`;
    return this;
  }
}

/** A value that could not be coerced into a column's type: `column "amount": "12x" is not a decimal(10,2)`. */
export function notA(column: string, value: unknown, typeName: string, why?: string): RecordError {
  const suffix = why ? ` (${why})` : '';
  return new RecordError('type_mismatch', `column "${column}": ${show(value)} is not a ${typeName}${suffix}`, column);
}

/**
 * A JSON integer beyond ±2^53 that JSON.parse rounded, met where it would be stored wrong
 * (a long, decimal or string column): the record is parsed again exactly (decode.ts). Only an
 * integer that is no integer literal (`1e20`) still arrives rounded then, and is refused.
 */
export class InexactNumber extends RecordError {
  constructor(column: string, value: unknown, typeName: string) {
    super(
      'out_of_range',
      `column "${column}": ${show(value)} is out of range for ${typeName} (a JSON number beyond ±2^53 written with an exponent or fraction loses precision; write it as an integer literal or a string)`,
      column,
    );
  }
}

export function outOfRange(column: string, value: unknown, typeName: string, why: string): RecordError {
  return new RecordError('out_of_range', `column "${column}": ${show(value)} is out of range for ${typeName} (${why})`, column);
}

/** A short, safe rendering of an offending value for messages (never a whole 10 MB payload). */
export function show(value: unknown): string {
  let s: string;
  if (typeof value === 'string') s = JSON.stringify(value.length > 64 ? `${value.slice(0, 64)}…` : value);
  else if (typeof value === 'bigint') s = value.toString();
  else if (value instanceof Uint8Array) s = `${value.length} bytes`;
  else if (Array.isArray(value)) s = 'an array';
  else if (value !== null && typeof value === 'object') s = 'an object';
  else s = String(value);
  return s;
}

/** A time zone by name, refused as a spec error naming the field that gave it. */
export function specZone(name: string, field: string): Zone {
  try {
    return zone(name);
  } catch (err) {
    if (err instanceof TimeZoneError) throw new SpecError(err.message, field);
    throw err;
  }
}
