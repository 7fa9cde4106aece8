/**
 * Change-data-capture envelopes into row changes: one parsed Kafka record of a CDC stream
 * becomes the list of upserts and deletes it holds, for five envelope formats (Debezium,
 * Alibaba DTS as decoded by dts_binlog_parser, Canal flat messages, Maxwell, and plain keyed
 * messages on a compacted topic). Pure functions: no I/O, no state between records.
 *
 * Shared conventions:
 * - an upsert carries the row the table takes (the after image), a delete an image that names
 *   the deleted row (at least its key columns);
 * - an update that changes the row's key is a delete of the old key followed by an upsert of
 *   the new row, so a table keyed by its identifier columns never keeps the old row;
 * - records that hold no row change (DDL, bootstrap markers, logical messages, tombstones
 *   after a Debezium delete) give [];
 * - anything else that cannot be read is a RecordError with a short reason code.
 */
import { parseJson, stringifyExact } from './decode.js';
import { notA, outOfRange, RecordError, type ErrorReason } from './errors.js';

/** Reason codes of the refusals below (members of ErrorReason). */
type ChangeErrorReason = Extract<ErrorReason, 'not_a_change' | 'unknown_op' | 'no_image'>;

export type ChangeFormat = 'debezium' | 'dts' | 'canal' | 'maxwell' | 'keyed';
export const CHANGE_FORMATS: readonly ChangeFormat[] = ['debezium', 'dts', 'canal', 'maxwell', 'keyed'];

export interface Change {
  op: 'upsert' | 'delete';
  /** upsert: the row the table takes (the after image). delete: an image naming the deleted row (before image, or the key). Plain JSON object: field name → value. */
  image: Record<string, unknown>;
  /** Where the change stands in the source database's order when the envelope says (Debezium source.lsn, DTS recordID, Canal id); undefined otherwise. */
  sourcePosition?: bigint;
}

export interface ChangeInput {
  /** The parsed JSON value (JSON.parse result, integers may be bigint), or null when the Kafka value is null (a tombstone). */
  value: unknown;
  /** The Kafka key: parsed as JSON when it is JSON, else its text; null when the record has no key. Called only when needed. */
  key: () => unknown;
  /** The table's identifier (key) columns, top-level field names, in order (1 or more). */
  keyColumns: readonly string[];
}

type Image = Record<string, unknown>;

/** The changes one record holds, in the order they apply; [] when the record holds none. Throws RecordError. */
export function decodeChanges(format: ChangeFormat, input: ChangeInput): Change[] {
  switch (format) {
    case 'debezium':
      return debeziumChanges(input);
    case 'dts':
      return dtsChanges(input);
    case 'canal':
      return canalChanges(input);
    case 'maxwell':
      return maxwellChanges(input);
    case 'keyed':
      return keyedChanges(input);
    default: {
      const unknown: never = format;
      throw new Error(`unknown change format ${String(unknown)}`);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Debezium

/**
 * Debezium change event value (PostgreSQL, MySQL and the other relational connectors):
 *   { before: {row} | null, after: {row} | null, source: {..., lsn?}, op: "c"|"r"|"u"|"d"|"t"|"m", ts_ms }
 * With Kafka Connect's JsonConverter and schemas.enable=true the value is wrapped as
 *   { schema: {type: "struct", fields: [{field: "before", fields: [...]}, {field: "after", ...}, ...]}, payload: {...} }
 * and the field schemas' `name` tells how logical types (decimals, dates, timestamps) are
 * encoded. `c` creates, `r` is a snapshot read, `u` updates, `d` deletes (followed by a
 * tombstone, a null value with the same key), `t` truncates a table, `m` is a logical decoding
 * message. The key is { id: 1 } or, with schemas, { schema, payload: { id: 1 } }; a delete
 * whose before image lacks the key columns (REPLICA IDENTITY NOTHING) is named by the key.
 */
function debeziumChanges(input: ChangeInput): Change[] {
  const { value, keyColumns } = input;
  if (value === null) return []; // the tombstone after a delete: the delete event already said it
  const outer = asObject(value, 'debezium value');
  const wrapped = 'payload' in outer && 'schema' in outer && !('op' in outer);
  if (wrapped && outer.payload === null) return [];
  const payload = wrapped ? asObject(outer.payload, 'debezium payload') : outer;
  const fields = wrapped ? envelopeFieldSchemas(outer.schema) : undefined;
  const op = payload.op;
  if (op === undefined)
    fail(
      'not_a_change',
      'debezium payload has no "op" field (a value already unwrapped by ExtractNewRecordState is a plain row: use the keyed format)',
    );
  const position = integerOf(isObject(payload.source) ? payload.source.lsn : undefined);
  const image = (side: 'before' | 'after'): Image | undefined => {
    const v = payload[side];
    if (v === null || v === undefined) return undefined;
    return convertConnect(asObject(v, `debezium ${side} image`), fields?.get(side));
  };

  switch (op) {
    case 'c':
    case 'r':
    case 'u': {
      const what = op === 'c' ? 'create (op c)' : op === 'r' ? 'snapshot read (op r)' : 'update (op u)';
      const after = image('after') ?? fail('no_image', `debezium ${what} has no after image`);
      const before = op === 'u' ? image('before') : undefined;
      const out: Change[] = [];
      if (before && keysDiffer(before, after, keyColumns)) out.push({ op: 'delete', image: before });
      out.push({ op: 'upsert', image: after });
      return withPosition(out, position);
    }
    case 'd': {
      const before = image('before');
      if (before && keyOf(before, keyColumns)) return withPosition([{ op: 'delete', image: before }], position);
      return withPosition([{ op: 'delete', image: debeziumKeyImage(input) }], position);
    }
    case 't':
      return fail(
        'unknown_op',
        'debezium truncate (op t) is not supported for upsert tables (it would delete every row); leave "t" in the connector\'s skipped.operations',
      );
    case 'm':
      return [];
    default:
      return fail('unknown_op', `debezium op ${showOp(op)} is not one of c, r, u, d, t, m`);
  }
}

/** The row a Debezium delete names through the record key, when its before image cannot. */
function debeziumKeyImage(input: ChangeInput): Image {
  const cols = columnList(input.keyColumns);
  const key = input.key();
  if (key === null || key === undefined)
    fail('no_image', `debezium delete (op d) has no before image with the key column(s) ${cols}, and the record has no key`);
  let payload: unknown = key;
  let fields: Map<string, FieldSchema> | undefined;
  if (isObject(key) && 'payload' in key && 'schema' in key) {
    payload = key.payload;
    fields = structFields(key.schema);
  }
  const image = imageFromKey(payload, input.keyColumns, 'debezium delete (op d) key');
  if (!keyOf(image, input.keyColumns))
    fail('no_image', `debezium delete (op d) has no before image with the key column(s) ${cols}, and the record key does not name them`);
  return convertConnect(image, fields);
}

interface FieldSchema {
  name?: unknown;
  parameters?: unknown;
  [k: string]: unknown;
}

/** The field schemas of the before and after structs of a JsonConverter envelope schema. */
function envelopeFieldSchemas(schema: unknown): Map<string, Map<string, FieldSchema>> {
  const out = new Map<string, Map<string, FieldSchema>>();
  if (!isObject(schema) || !Array.isArray(schema.fields)) return out;
  for (const f of schema.fields) {
    if (isObject(f) && (f.field === 'before' || f.field === 'after')) {
      const fields = structFields(f);
      if (fields) out.set(f.field, fields);
    }
  }
  return out;
}

function structFields(schema: unknown): Map<string, FieldSchema> | undefined {
  if (!isObject(schema) || !Array.isArray(schema.fields)) return undefined;
  const out = new Map<string, FieldSchema>();
  for (const f of schema.fields) if (isObject(f) && typeof f.field === 'string') out.set(f.field, f);
  return out;
}

/** A row image with its Kafka Connect logical-type values made plain (decimal text, ISO dates); a new object. */
function convertConnect(row: Image, fields: Map<string, FieldSchema> | undefined): Image {
  if (!fields) return row;
  const out: Image = {};
  for (const [column, v] of Object.entries(row)) {
    const name = fields.get(column)?.name;
    out[column] = v === null || typeof name !== 'string' ? v : logicalValue(column, v, name, fields.get(column));
  }
  return out;
}

function logicalValue(column: string, v: unknown, name: string, schema: FieldSchema | undefined): unknown {
  switch (name) {
    case 'org.apache.kafka.connect.data.Decimal': {
      if (typeof v === 'number' || typeof v === 'bigint') return v; // JsonConverter decimal.format=NUMERIC
      const params = schema?.parameters;
      const scale = Number(isObject(params) ? params.scale : undefined);
      if (!Number.isInteger(scale)) throw notA(column, v, name, 'its schema has no integer "scale" parameter');
      return decimalText(column, v, scale, name);
    }
    case 'io.debezium.data.VariableScaleDecimal':
      if (!isObject(v) || !Number.isInteger(Number(v.scale))) throw notA(column, v, name, 'expected {scale, value}');
      return decimalText(column, v.value, Number(v.scale), name);
    case 'io.debezium.time.Date':
    case 'org.apache.kafka.connect.data.Date':
      return epochText(column, v, name, 'days');
    case 'io.debezium.time.Timestamp':
    case 'org.apache.kafka.connect.data.Timestamp':
      return epochText(column, v, name, 3);
    case 'io.debezium.time.MicroTimestamp':
      return epochText(column, v, name, 6);
    case 'io.debezium.time.NanoTimestamp':
      return epochText(column, v, name, 9);
    default:
      return v; // io.debezium.time.ZonedTimestamp (ISO text already) and everything else stay as written
  }
}

/** Base64 big-endian two's-complement unscaled bytes → decimal text with `scale` fraction digits. */
function decimalText(column: string, v: unknown, scale: number, typeName: string): string {
  if (typeof v !== 'string' || !BASE64.test(v)) throw notA(column, v, typeName, 'expected base64 bytes');
  const bytes = Buffer.from(v, 'base64');
  let unscaled = 0n;
  for (const b of bytes) unscaled = (unscaled << 8n) | BigInt(b);
  if (bytes.length > 0 && bytes[0] & 0x80) unscaled -= 1n << BigInt(bytes.length * 8);
  if (scale <= 0) return (unscaled * 10n ** BigInt(-scale)).toString();
  const negative = unscaled < 0n;
  const digits = (negative ? -unscaled : unscaled).toString().padStart(scale + 1, '0');
  return `${negative ? '-' : ''}${digits.slice(0, -scale)}.${digits.slice(-scale)}`;
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/**
 * An epoch count as zone-less ISO text: days → "2019-11-14"; milli-, micro- or nanoseconds
 * (3, 6 or 9 fraction digits) → "2019-11-14T10:00:00.000" with that many fraction digits.
 */
function epochText(column: string, v: unknown, typeName: string, unit: 'days' | 3 | 6 | 9): string {
  if (typeof v === 'number' && Number.isInteger(v) && !Number.isSafeInteger(v))
    throw outOfRange(column, v, typeName, 'an integer beyond ±2^53 arrives rounded; the record must be parsed exactly');
  const n = integerOf(v);
  if (n === undefined) throw notA(column, v, typeName, 'expected an integer');
  const perSecond = unit === 'days' ? 1n : 10n ** BigInt(unit);
  const seconds = unit === 'days' ? n * 86_400n : n >= 0n ? n / perSecond : -((-n + perSecond - 1n) / perSecond); // floor
  const ms = seconds * 1000n;
  if (ms > 8_640_000_000_000_000n || ms < -8_640_000_000_000_000n)
    throw outOfRange(column, v, typeName, 'beyond the dates JavaScript can represent');
  const iso = new Date(Number(ms)).toISOString(); // YYYY-MM-DDTHH:MM:SS.000Z
  if (unit === 'days') return iso.slice(0, iso.indexOf('T'));
  return `${iso.slice(0, -5)}.${(n - seconds * perSecond).toString().padStart(unit, '0')}`;
}

// ---------------------------------------------------------------------------------------------
// Alibaba DTS

/**
 * Alibaba DTS record as the EMR dts_binlog_parser UDF decodes it from DTS Avro:
 *   { recordID: 1, source: {"sourceType": "MySQL", ...}, dbTable: "db.table",
 *     recordType: "INIT"|"INSERT"|"UPDATE"|"DELETE", recordTimestamp, extraTags, fields: [...],
 *     beforeImages: {"id": "1", ...}, afterImages: {...} }
 * The images are JSON text (or objects) whose values are all strings; the missing side is {}.
 * INIT rows are the initial load. Field names are matched case-insensitively (Spark shows
 * them as recordid, beforeimages, ...). recordID orders the changes.
 */
function dtsChanges(input: ChangeInput): Change[] {
  const record = asObject(input.value, 'dts value');
  const type = fieldOf(record, 'recordType');
  const position = integerOf(fieldOf(record, 'recordID'));
  const before = () => dtsImage(fieldOf(record, 'beforeImages'), 'beforeImages');
  const after = () => dtsImage(fieldOf(record, 'afterImages'), 'afterImages');
  switch (type) {
    case 'INIT':
    case 'INSERT':
      return withPosition([{ op: 'upsert', image: after() ?? fail('no_image', `dts ${type} has no afterImages`) }], position);
    case 'UPDATE': {
      const image = after() ?? fail('no_image', 'dts UPDATE has no afterImages');
      const old = before();
      const out: Change[] = [];
      if (old && keysDiffer(old, image, input.keyColumns)) out.push({ op: 'delete', image: old });
      out.push({ op: 'upsert', image });
      return withPosition(out, position);
    }
    case 'DELETE':
      return withPosition([{ op: 'delete', image: before() ?? fail('no_image', 'dts DELETE has no beforeImages') }], position);
    default:
      return fail('unknown_op', `dts recordType ${showOp(type)} is not one of INIT, INSERT, UPDATE, DELETE`);
  }
}

/** A DTS image: JSON text or an object; undefined when absent or empty. */
function dtsImage(raw: unknown, side: string): Image | undefined {
  if (raw === null || raw === undefined || (typeof raw === 'string' && raw.trim() === '')) return undefined;
  const image = asObject(typeof raw === 'string' ? parseJson(raw, `dts ${side}`) : raw, `dts ${side}`);
  return Object.keys(image).length === 0 ? undefined : image;
}

/** A field by name, else by the same name in any case. */
function fieldOf(record: Image, name: string): unknown {
  if (name in record) return record[name];
  const lower = name.toLowerCase();
  for (const k of Object.keys(record)) if (k.toLowerCase() === lower) return record[k];
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// Canal

/**
 * Canal flat message (canal.instance with flatMessage=true, as the Kafka producer writes it):
 *   { id: 9, database, table, pkNames: ["id"], isDdl: false, type: "INSERT"|"UPDATE"|"DELETE"|...,
 *     es: binlog ms, ts: build ms, sql, sqlType: {...}, mysqlType: {...},
 *     data: [{row}, ...], old: [{changed columns' previous values}, ...] | null }
 * One message holds every row of one binlog event; values are strings or null. For an UPDATE,
 * data[i] is the new row and old[i] only the columns that changed. DDL messages have
 * isDdl: true and a type such as CREATE, ALTER, ERASE, QUERY. `id` is the canal batch id,
 * shared by the rows of one message.
 */
function canalChanges(input: ChangeInput): Change[] {
  const msg = asObject(input.value, 'canal value');
  const type = msg.type;
  if (msg.isDdl === true) return [];
  if (typeof type !== 'string') return fail('not_a_change', `canal message has no "type" string (found ${describe(type)})`);
  if (CANAL_NOT_ROWS.has(type)) return [];
  if (type !== 'INSERT' && type !== 'UPDATE' && type !== 'DELETE')
    return fail('unknown_op', `canal type ${showOp(type)} is not one of INSERT, UPDATE, DELETE (nor a DDL type)`);
  if (!Array.isArray(msg.data)) return fail('not_a_change', `canal message has no "data" array (found ${describe(msg.data)})`);
  const rows = msg.data.map((r, i) => asObject(r, `canal data[${i}]`));
  const olds = msg.old === null || msg.old === undefined ? undefined : msg.old;
  if (olds !== undefined && (!Array.isArray(olds) || (type === 'UPDATE' && olds.length !== rows.length)))
    fail(
      'not_a_change',
      `canal ${type} has ${rows.length} row(s) in "data" but "old" is ${Array.isArray(olds) ? `${olds.length} long` : describe(olds)}`,
    );
  const out: Change[] = [];
  rows.forEach((row, i) => {
    if (type === 'INSERT') out.push({ op: 'upsert', image: row });
    else if (type === 'DELETE') out.push({ op: 'delete', image: row });
    else {
      const old = olds ? asObject(olds[i] ?? {}, `canal old[${i}]`) : {};
      const before = { ...row, ...old };
      if (keysDiffer(before, row, input.keyColumns)) out.push({ op: 'delete', image: before });
      out.push({ op: 'upsert', image: row });
    }
  });
  return withPosition(out, integerOf(msg.id));
}

/** Canal event types that are no row change (CanalEntry.EventType). */
const CANAL_NOT_ROWS = new Set([
  'CREATE',
  'ALTER',
  'ERASE',
  'QUERY',
  'TRUNCATE',
  'RENAME',
  'CINDEX',
  'DINDEX',
  'GTID',
  'XACOMMIT',
  'XAROLLBACK',
  'MHEARTBEAT',
]);

// ---------------------------------------------------------------------------------------------
// Maxwell

/**
 * Maxwell's daemon message, one per row:
 *   { database, table, type: "insert"|"update"|"delete"|"bootstrap-insert"|..., ts: seconds,
 *     xid, commit: true?, position: "binlog.000006:800911", data: {row}, old: {changed columns' previous values} }
 * `data` is the whole row (after an insert or update, as it was before a delete); `old`, only on
 * updates, holds the previous values of the columns that changed, so data merged with old is
 * the row before. A bootstrap is bootstrap-start, bootstrap-insert rows, bootstrap-complete;
 * DDL (with --output_ddl) comes as table-create, table-alter, database-create, ...
 */
function maxwellChanges(input: ChangeInput): Change[] {
  const msg = asObject(input.value, 'maxwell value');
  const type = msg.type;
  if (typeof type !== 'string') return fail('not_a_change', `maxwell message has no "type" string (found ${describe(type)})`);
  if ((type.includes('-') && type !== 'bootstrap-insert') || type === 'ddl') return [];
  if (type !== 'insert' && type !== 'bootstrap-insert' && type !== 'update' && type !== 'delete')
    return fail(
      'unknown_op',
      `maxwell type ${showOp(type)} is not one of insert, update, delete, bootstrap-insert (nor a bootstrap or DDL marker)`,
    );
  if (msg.data === null || msg.data === undefined) return fail('no_image', `maxwell ${type} has no "data" object`);
  const row = asObject(msg.data, `maxwell ${type} data`);
  if (type === 'delete') return [{ op: 'delete', image: row }];
  if (type !== 'update') return [{ op: 'upsert', image: row }];
  const old = msg.old === null || msg.old === undefined ? {} : asObject(msg.old, 'maxwell update old');
  const before = { ...row, ...old };
  return keysDiffer(before, row, input.keyColumns)
    ? [
        { op: 'delete', image: before },
        { op: 'upsert', image: row },
      ]
    : [{ op: 'upsert', image: row }];
}

// ---------------------------------------------------------------------------------------------
// Keyed (plain messages on a compacted topic)

/**
 * Plain keyed messages, compacted-topic style: the value is the whole row, and a null value
 * (a tombstone) deletes the row its key names. The key is a JSON object of the key columns, or
 * a single value (number or text) when the table has one key column.
 */
function keyedChanges(input: ChangeInput): Change[] {
  const { value } = input;
  if (value === null) return [{ op: 'delete', image: keyedTombstoneImage(input) }];
  if (!isObject(value)) return fail('not_a_change', `keyed value is ${describe(value)}, expected a JSON object or null (a tombstone)`);
  return [{ op: 'upsert', image: value }];
}

function keyedTombstoneImage(input: ChangeInput): Image {
  const key = input.key();
  if (key === null || key === undefined)
    fail('no_image', 'keyed tombstone (null value) has no key: a tombstone without a key names no row');
  return imageFromKey(key, input.keyColumns, 'keyed tombstone key');
}

// ---------------------------------------------------------------------------------------------
// Shared helpers

/** The image a record key names: the key object itself, or {column: key} for a single value and one key column. */
function imageFromKey(key: unknown, keyColumns: readonly string[], what: string): Image {
  if (isObject(key)) return key;
  if (typeof key !== 'string' && typeof key !== 'number' && typeof key !== 'bigint')
    return fail('no_image', `${what} is ${describe(key)}, expected a JSON object or a single value`);
  if (keyColumns.length !== 1)
    fail(
      'no_image',
      `${what} is a single value, but the table has ${keyColumns.length} key columns (${columnList(keyColumns)}); the key must be a JSON object naming them`,
    );
  return { [keyColumns[0]]: key };
}

/** The values of the key columns in an image, in order; undefined when one is missing. */
function keyOf(image: Image, keyColumns: readonly string[]): unknown[] | undefined {
  const values = keyColumns.map((c) => image[c]);
  return values.some((v) => v === undefined) ? undefined : values;
}

/** Whether two images name different rows: both carry every key column and the values differ as JSON (1 and 1n are equal). */
function keysDiffer(before: Image, after: Image, keyColumns: readonly string[]): boolean {
  const a = keyOf(before, keyColumns);
  const b = keyOf(after, keyColumns);
  return a !== undefined && b !== undefined && stringifyExact(a) !== stringifyExact(b);
}

/** An integer as a bigint: a bigint, a safe integer number or a string of digits; undefined otherwise. */
function integerOf(v: unknown): bigint | undefined {
  if (typeof v === 'bigint') return v;
  if (typeof v === 'number' && Number.isSafeInteger(v)) return BigInt(v);
  if (typeof v === 'string' && /^-?\d+$/.test(v)) return BigInt(v);
  return undefined;
}

function withPosition(changes: Change[], position: bigint | undefined): Change[] {
  if (position !== undefined) for (const c of changes) c.sourcePosition = position;
  return changes;
}

function isObject(v: unknown): v is Image {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function asObject(v: unknown, what: string): Image {
  if (!isObject(v)) fail('not_a_change', `${what} is ${describe(v)}, expected a JSON object`);
  return v;
}

/** What a JSON value is, for messages: "an array", "a string", "null", ... */
function describe(v: unknown): string {
  if (v === null) return 'null';
  if (v === undefined) return 'missing';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'bigint') return 'a number';
  return typeof v === 'object' ? 'an object' : `a ${typeof v}`;
}

/** An op/type field for messages: "x" when text, else what it is. */
function showOp(v: unknown): string {
  return typeof v === 'string' ? JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v) : describe(v);
}

function columnList(columns: readonly string[]): string {
  return columns.map((c) => `"${c}"`).join(', ');
}

function fail(reason: ChangeErrorReason, message: string): never {
  throw new RecordError(reason, message);
}
