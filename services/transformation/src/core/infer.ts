/**
 * Schema inference from sampled messages (InferSchema), and previews of what a mapping
 * makes of samples (PreviewMapping).
 *
 * Inference proposes the columns the data path (plan.ts) fills for the source's format:
 * - TEXT and BINARY (and JSON at flatten level 0, kept whole): `key` and `value` columns,
 *   string (binary for BINARY), as seed 002's tables have them;
 * - CSV: the `csv.columns` (or c1..cN by position when the source names none), typed from
 *   the samples' text;
 * - JSON at a flatten level ≥ 1 and FLATTEN: the flattened fields (seed 000), typed from the
 *   JSON values; objects and arrays below the level are JSON text (string);
 * - with include_fixed_columns, `topic`, `partition` and `offset` first.
 * Types: whole numbers are long; numbers written with the same count of decimal places in
 * every sample are decimal(P,S) (any disagreement, an exponent or a whole number among
 * them makes them double); ISO-8601 strings are date, timestamp (no offset) or timestamptz
 * (with an offset or Z). Conflicts widen: date → timestamp → timestamptz, numbers to double,
 * anything else to string. Every column is optional, as `sluice job create` creates it, so a
 * later record without a field is a NULL rather than a refused record.
 *
 * JSON numbers are read from their literal text (never through a double), so 64-bit
 * integers and decimal scales are exact. Two fields that flatten to one column name (a key
 * `a.b` and a nested `a.b`) are refused, naming both.
 */
import { type Field, type KafkaRecord, type MappingSpec, MessageFormat, MessageMode, type Schema } from '#shared/gen/sluice/v1/types.js';
import type { PrimitiveType } from '#shared/iceberg/single-value.js';
import { daysInMonth, formatLocal } from '#shared/time.js';
import type { RowValue } from './coerce.js';
import { parseCsvRecord } from './csv.js';
import { decodeText, parseJson } from './decode.js';
import { RecordError, SpecError } from './errors.js';
import { columnName, MAX_FLATTEN_LEVEL, pathStep } from './flatten.js';
import { partitionOf, type Plan, transformRecord } from './plan.js';
import type { RecordContext } from './row.js';
import { human } from './partition.js';

type Kind = 'long' | 'decimal' | 'double' | 'boolean' | 'string' | 'date' | 'timestamp' | 'timestamptz' | 'binary';

/** What the samples say a column is; a decimal carries its scale and its widest whole part. */
export interface Inferred {
  kind: Kind;
  scale: number;
  intDigits: number;
}

export interface InferredColumn {
  name: string;
  path: string;
  /** Iceberg type text as Iceberg writes it: `long`, `decimal(18, 2)`, `timestamptz`… */
  type: string;
  /** Always false: the table takes every inferred column as optional (see above). */
  required: boolean;
  sample: string;
}

export interface InferResult {
  schema: Schema;
  fields: InferredColumn[];
  warnings: string[];
}

export type InferMapping = Pick<MappingSpec, 'format' | 'flattenLevel' | 'mode'> &
  Partial<Pick<MappingSpec, 'csv' | 'includeFixedColumns'>>;

const typed = (kind: Kind): Inferred => ({ kind, scale: 0, intDigits: 0 });

/** Decimals get at least 18 digits (an int64 in Parquet) and at most Iceberg's 38. */
const MIN_PRECISION = 18;
const MAX_PRECISION = 38;

export function typeText(t: Inferred): string {
  return t.kind === 'decimal' ? `decimal(${Math.max(MIN_PRECISION, t.intDigits + t.scale)}, ${t.scale})` : t.kind;
}

const NUMERIC: ReadonlySet<Kind> = new Set(['long', 'decimal', 'double']);
const TEMPORAL: readonly Kind[] = ['date', 'timestamp', 'timestamptz'];

/** The type that holds the values of both: see the module comment. */
export function widen(a: Inferred, b: Inferred): Inferred {
  if (a.kind === b.kind) {
    if (a.kind !== 'decimal') return a;
    if (a.scale !== b.scale) return typed('double');
    return a.intDigits >= b.intDigits ? a : b;
  }
  if (NUMERIC.has(a.kind) && NUMERIC.has(b.kind)) return typed('double');
  const ta = TEMPORAL.indexOf(a.kind);
  const tb = TEMPORAL.indexOf(b.kind);
  if (ta >= 0 && tb >= 0) return ta > tb ? a : b;
  return typed('string');
}

const INT_LITERAL = /^[+-]?\d+$/;
const FIXED_LITERAL = /^[+-]?(\d+)\.(\d+)$/;
const FLOAT_LITERAL = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

export const beyondInt64 = (literal: string): boolean => {
  const n = BigInt(literal);
  return n < INT64_MIN || n > INT64_MAX;
};

/** A number from its literal text (a JSON number, or a CSV field that is one). */
export function typeOfNumber(literal: string): Inferred {
  if (INT_LITERAL.test(literal)) return beyondInt64(literal) ? typed('double') : typed('long');
  const fixed = FIXED_LITERAL.exec(literal);
  if (fixed) {
    const intDigits = fixed[1].replace(/^0+/, '').length;
    const scale = fixed[2].length;
    if (intDigits + scale <= MAX_PRECISION) return { kind: 'decimal', scale, intDigits };
  }
  return typed('double');
}

const DATE_TEXT = /^(\d{4})-(\d{2})-(\d{2})$/;
const DATE_TIME_TEXT = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,]\d{1,9})?)?(Z|z|[+-]\d{2}(?::?\d{2})?)?$/;

/** ISO-8601 text: a date, a date-time without offset (timestamp) or with one (timestamptz); else null. */
export function temporalOf(s: string): Inferred | null {
  const date = DATE_TEXT.exec(s);
  if (date) return validDate(date) ? typed('date') : null;
  const ts = DATE_TIME_TEXT.exec(s);
  if (!ts || !validDate(ts) || Number(ts[4]) > 23 || Number(ts[5]) > 59 || Number(ts[6] ?? 0) > 59) return null;
  return typed(ts[7] === undefined ? 'timestamp' : 'timestamptz');
}

function validDate(m: RegExpExecArray): boolean {
  const month = Number(m[2]);
  const day = Number(m[3]);
  return month >= 1 && month <= 12 && day >= 1 && day <= daysInMonth(Number(m[1]), month);
}

/** A JSON string value: a date or time when it is ISO-8601, else string (digits in quotes stay text). */
export const typeOfString = (s: string): Inferred => temporalOf(s) ?? typed('string');

/**
 * A CSV field's text: whole numbers (without leading zeros, which make codes) are long,
 * decimals by their places, true/false boolean, ISO-8601 dates and times, anything else string.
 */
export function typeOfText(text: string): Inferred {
  const s = text.trim();
  if (INT_LITERAL.test(s)) return /^[+-]?0\d/.test(s) ? typed('string') : typeOfNumber(s.replace(/^\+/, ''));
  if (FLOAT_LITERAL.test(s)) return typeOfNumber(s.replace(/^\+/, ''));
  if (/^(true|false)$/i.test(s)) return typed('boolean');
  return typeOfString(s);
}

interface Candidate {
  name: string;
  path: string;
  /** The keys leading to the field, to tell a key `a.b` from a nested `a.b` when both make `a_b`. */
  keys: readonly string[];
  type: Inferred | null;
  /** Declared, not inferred: TEXT/BINARY parts and the fixed columns. */
  locked: boolean;
  fixed: boolean;
  sample: string;
  warned: boolean;
}

const MAX_SAMPLE_CHARS = 1000;
const describeKeys = (keys: readonly string[]) => keys.map((k) => (k.includes('.') || k === '' ? JSON.stringify(k) : k)).join('.');

/** The columns found so far, in the order first seen, with their widened types. */
class Candidates {
  private readonly byName = new Map<string, Candidate>();

  constructor(
    private readonly warnings: string[],
    private readonly level: number,
  ) {}

  declare(name: string, kind: Kind, fixed: boolean): void {
    this.byName.set(name, { name, path: name, keys: [name], type: typed(kind), locked: true, fixed, sample: '', warned: false });
  }

  observe(name: string, path: string, keys: readonly string[], type: Inferred | null, sample: string): void {
    let c = this.byName.get(name);
    if (!c) {
      c = { name, path, keys, type: null, locked: false, fixed: false, sample: '', warned: false };
      this.byName.set(name, c);
    } else if (c.fixed) {
      throw new SpecError(
        `field ${describeKeys(keys)} would be column "${name}", which includeFixedColumns fills with the record's Kafka ${name}; rename the field or leave includeFixedColumns off`,
        name,
      );
    } else if (!c.locked && describeKeys(c.keys) !== describeKeys(keys)) {
      throw new SpecError(
        `fields ${describeKeys(c.keys)} and ${describeKeys(keys)} both become column "${name}" at flatten level ${this.level}; a table cannot keep both (map one elsewhere with mapping.fields, or change the flatten level)`,
        name,
      );
    }
    if (type === null) return;
    if (c.sample === '') c.sample = sample.length > MAX_SAMPLE_CHARS ? `${sample.slice(0, MAX_SAMPLE_CHARS)}…` : sample;
    if (c.locked) return;
    if (c.type === null) {
      c.type = type;
      return;
    }
    const wide = widen(c.type, type);
    if (wide.kind === 'string' && c.type.kind !== type.kind && !c.warned) {
      c.warned = true;
      this.warnings.push(`field "${path}" is ${typeText(c.type)} in one sample and ${typeText(type)} in another; typed string`);
    }
    c.type = wide;
  }

  columns(): InferredColumn[] {
    return [...this.byName.values()].map((c) => {
      if (c.type === null) this.warnings.push(`field "${c.path}" is null in every sample; typed string`);
      return { name: c.name, path: c.path, type: typeText(c.type ?? typed('string')), required: false, sample: c.sample };
    });
  }
}

const isWholePart = (format: MessageFormat, level: number) =>
  format === MessageFormat.MESSAGE_FORMAT_TEXT ||
  format === MessageFormat.MESSAGE_FORMAT_BINARY ||
  format === MessageFormat.MESSAGE_FORMAT_UNSPECIFIED ||
  (format === MessageFormat.MESSAGE_FORMAT_JSON && level === 0);

/**
 * A sample nested too deeply is the caller's mistake, not a record to skip with a warning:
 * InferSchema answers INVALID_ARGUMENT naming the sample (the data path refuses such records
 * as `nesting_too_deep`).
 */
function refuseSample(e: unknown, samples: readonly KafkaRecord[], rec: KafkaRecord): void {
  if (e instanceof RecordError && e.reason === 'nesting_too_deep')
    throw new SpecError(`samples.${samples.indexOf(rec)} (offset ${rec.offset}): ${e.detail}`, 'samples');
}

export function inferSchema(samples: readonly KafkaRecord[], mapping: InferMapping, maxBytes = 8 * 1024 * 1024): InferResult {
  const warnings: string[] = [];
  const format = mapping.format;
  // As the data path reads it (plan.ts): unset is 1 (seed 000's default), and FLATTEN maps top-level keys at least.
  const level = Math.max(format === MessageFormat.MESSAGE_FORMAT_FLATTEN ? 1 : 0, Math.min(MAX_FLATTEN_LEVEL, mapping.flattenLevel ?? 1));
  const candidates = new Candidates(warnings, level);
  if (mapping.includeFixedColumns) {
    candidates.declare('topic', 'string', true);
    candidates.declare('partition', 'long', true);
    candidates.declare('offset', 'long', true);
  }
  const part = mapping.mode === MessageMode.MESSAGE_MODE_KEY ? 'key' : 'value';
  const skip = (rec: KafkaRecord, why: string) => warnings.push(`offset ${rec.offset}: skipped, ${why}`);
  const reasonOf = (e: unknown) => (e instanceof Error ? e.message : String(e));

  if (isWholePart(format, level)) {
    const binary = format === MessageFormat.MESSAGE_FORMAT_BINARY;
    // Which parts the job fills (plan.ts modeOf): both under DEFAULT (TEXT/BINARY's unset mode), else the mode's.
    const both =
      mapping.mode === MessageMode.MESSAGE_MODE_DEFAULT ||
      (mapping.mode === MessageMode.MESSAGE_MODE_UNSPECIFIED && format !== MessageFormat.MESSAGE_FORMAT_JSON);
    const reads = (p: 'key' | 'value') => both || p === part;
    candidates.declare('key', binary ? 'binary' : 'string', false);
    candidates.declare('value', binary ? 'binary' : 'string', false);
    for (const rec of samples) {
      for (const p of ['key', 'value'] as const) {
        const bytes = p === 'key' ? rec.key : rec.value;
        if (!bytes) continue;
        if (binary) {
          candidates.observe(p, p, [p], typed('binary'), bytes.toString('base64'));
          continue;
        }
        try {
          const text = decodeText(bytes, p, maxBytes);
          if (format === MessageFormat.MESSAGE_FORMAT_JSON && p === part) parseJson(text, p);
          candidates.observe(p, p, [p], typed('string'), text);
        } catch (e) {
          refuseSample(e, samples, rec);
          if (reads(p)) warnings.push(`offset ${rec.offset}: ${reasonOf(e)}; the job would refuse this record`);
        }
      }
    }
  } else if (format === MessageFormat.MESSAGE_FORMAT_CSV) {
    inferCsv(samples, mapping, part, maxBytes, candidates, skip, warnings);
  } else {
    let parsed = 0;
    for (const rec of samples) {
      const bytes = part === 'key' ? rec.key : rec.value;
      let leaves: JsonLeaf[] | string;
      try {
        if (!bytes) throw new RecordError('null_value', `${part} is null`);
        const text = decodeText(bytes, part, maxBytes);
        parseJson(text, part);
        leaves = jsonLeaves(text, Math.max(1, level));
      } catch (e) {
        refuseSample(e, samples, rec);
        skip(rec, reasonOf(e));
        continue;
      }
      if (typeof leaves === 'string') {
        skip(rec, `${part} is ${leaves}, flattening needs a JSON object`);
        continue;
      }
      parsed++;
      for (const leaf of leaves) {
        const type = typeOfLeaf(leaf);
        if (leaf.kind === 'number' && INT_LITERAL.test(leaf.text) && beyondInt64(leaf.text) && type.kind === 'double')
          warnings.push(`field "${leaf.path}" has ${leaf.text}, beyond 64 bits; typed double`);
        candidates.observe(leaf.name, leaf.path, leaf.keys, type.kind === 'null' ? null : type, sampleOf(leaf));
      }
    }
    if (parsed === 0 && samples.length > 0) warnings.push('no sample could be parsed as a JSON object; nothing inferred');
  }

  const fields = candidates.columns();
  const schemaFields: Field[] = fields.map((f, i) => ({
    id: i + 1,
    name: f.name,
    required: false,
    type: { kind: { $case: 'primitive', value: f.type } },
    doc: '',
  }));
  return { schema: { schemaId: 0, fields: schemaFields, identifierFieldIds: [] }, fields, warnings };
}

function inferCsv(
  samples: readonly KafkaRecord[],
  mapping: InferMapping,
  part: 'key' | 'value',
  maxBytes: number,
  candidates: Candidates,
  skip: (rec: KafkaRecord, why: string) => void,
  warnings: string[],
): void {
  const names = mapping.csv?.columns?.length ? mapping.csv.columns : null;
  const dialect = { delimiter: mapping.csv?.delimiter || ',', quote: mapping.csv?.quote || '"' };
  const rows: (string | null)[][] = [];
  for (const rec of samples) {
    const bytes = part === 'key' ? rec.key : rec.value;
    try {
      if (!bytes) throw new RecordError('null_value', `${part} is null`);
      const text = decodeText(bytes, part, maxBytes);
      if (text.length === 0) throw new RecordError('empty', `${part} is empty`);
      const fields = parseCsvRecord(text, dialect);
      if (names && fields.length !== names.length)
        throw new RecordError('invalid_csv', `${fields.length} CSV fields where csv.columns names ${names.length} (${names.join(', ')})`);
      rows.push(fields);
    } catch (e) {
      skip(rec, e instanceof Error ? e.message : String(e));
    }
  }
  const widths = new Set(rows.map((r) => r.length));
  const width = names?.length ?? Math.max(0, ...widths);
  if (!names && width > 0) {
    warnings.push(`the source names no csv.columns: columns are named c1..c${width} by position; name them with csv.columns`);
    if (widths.size > 1)
      warnings.push(`samples have ${[...widths].sort((a, b) => a - b).join(' or ')} CSV fields; the job refuses records of another width`);
  }
  for (let i = 0; i < width; i++) {
    const name = names?.[i] ?? `c${i + 1}`;
    candidates.observe(name, name, [name], null, '');
    for (const row of rows) {
      const v = row[i];
      if (v !== null && v !== undefined) candidates.observe(name, name, [name], typeOfText(v), v);
    }
  }
}

/** One flattened field of a JSON document, with its value's literal text. */
export interface JsonLeaf {
  name: string;
  path: string;
  keys: string[];
  kind: 'number' | 'string' | 'boolean' | 'null' | 'nested';
  text: string;
}

function typeOfLeaf(leaf: JsonLeaf): Inferred | { kind: 'null' } {
  switch (leaf.kind) {
    case 'number':
      return typeOfNumber(leaf.text);
    case 'string':
      return typeOfString(JSON.parse(leaf.text) as string);
    case 'boolean':
      return typed('boolean');
    case 'null':
      return { kind: 'null' };
    case 'nested':
      return typed('string');
  }
}

const sampleOf = (leaf: JsonLeaf): string => (leaf.kind === 'string' ? (JSON.parse(leaf.text) as string) : leaf.text);

/**
 * The fields of a JSON object flattened at `level`, named as flatten.ts names them (seed 000),
 * each with its value's literal text, so numbers keep every digit. The text must be valid
 * JSON (checked by the caller); when it is not an object, says what it is instead.
 */
export function jsonLeaves(text: string, level: number): JsonLeaf[] | string {
  const s = new JsonScanner(text);
  s.space();
  const first = text[s.i];
  if (first !== '{') return first === '[' ? 'an array' : first === '"' ? 'a JSON string' : first === 'n' ? 'null' : 'a JSON scalar';
  const out: JsonLeaf[] = [];
  s.object(level, '', [], out);
  return out;
}

/** Walks valid JSON text; recursion is bounded by the flatten level, deeper values are skipped over. */
class JsonScanner {
  i = 0;
  constructor(private readonly text: string) {}

  space(): void {
    const t = this.text;
    while (this.i < t.length && (t[this.i] === ' ' || t[this.i] === '\n' || t[this.i] === '\r' || t[this.i] === '\t')) this.i++;
  }

  object(level: number, prefix: string, keys: string[], out: JsonLeaf[]): void {
    const t = this.text;
    this.i++; // {
    this.space();
    if (t[this.i] === '}') {
      this.i++;
      return;
    }
    for (;;) {
      this.space();
      const keyStart = this.i;
      this.skipString();
      const key = JSON.parse(t.slice(keyStart, this.i)) as string;
      this.space();
      this.i++; // :
      this.space();
      const name = columnName(prefix, key);
      const path = [...keys, key];
      if (level > 1 && t[this.i] === '{') this.object(level - 1, name, path, out);
      else {
        const start = this.i;
        const kind = this.skipValue();
        out.push({ name, path: path.map(pathStep).join('.'), keys: path, kind, text: t.slice(start, this.i) });
      }
      this.space();
      if (t[this.i++] === '}') return; // else ,
    }
  }

  private skipString(): void {
    const t = this.text;
    this.i++;
    while (t[this.i] !== '"') this.i += t[this.i] === '\\' ? 2 : 1;
    this.i++;
  }

  private skipValue(): JsonLeaf['kind'] {
    const t = this.text;
    const c = t[this.i];
    if (c === '"') {
      this.skipString();
      return 'string';
    }
    if (c === '{' || c === '[') {
      let depth = 0;
      do {
        const d = t[this.i];
        if (d === '"') {
          this.skipString();
          continue;
        }
        if (d === '{' || d === '[') depth++;
        else if (d === '}' || d === ']') depth--;
        this.i++;
      } while (depth > 0);
      return 'nested';
    }
    if (c === 't' || c === 'f') {
      this.i += c === 't' ? 4 : 5;
      return 'boolean';
    }
    if (c === 'n') {
      this.i += 4;
      return 'null';
    }
    while (this.i < t.length && /[-+0-9.eE]/.test(t[this.i])) this.i++;
    return 'number';
  }
}

export interface PreviewRow {
  rowJson: string;
  error: string;
  offset: number;
  partition: number;
  partitionPath: string;
}

/** The rows a plan makes of the samples, rendered readably (timestamps ISO, decimals as text, bytes base64). */
export function previewRows(plan: Plan, samples: readonly KafkaRecord[], ctx: RecordContext): PreviewRow[] {
  return samples.map((rec) => {
    const row = transformRecord(plan, rec, ctx);
    if (row instanceof RecordError)
      return { rowJson: '', error: row.message, offset: rec.offset, partition: rec.partition, partitionPath: '' };
    const obj: Record<string, unknown> = {};
    for (const c of plan.columns) obj[c.name] = display(c.type, row[c.index]);
    let partitionPath = '';
    try {
      partitionPath = partitionOf(plan, row).path;
    } catch (e) {
      return {
        rowJson: '',
        error: e instanceof Error ? e.message : String(e),
        offset: rec.offset,
        partition: rec.partition,
        partitionPath: '',
      };
    }
    return { rowJson: JSON.stringify(obj), error: '', offset: rec.offset, partition: rec.partition, partitionPath };
  });
}

export function display(t: PrimitiveType, v: RowValue): unknown {
  if (v === null) return null;
  switch (t.kind) {
    case 'timestamp':
      return formatLocal(Math.floor((v as number) / 1000)).replace(' ', 'T') + micros(v as number);
    case 'timestamptz':
      return `${formatLocal(Math.floor((v as number) / 1000)).replace(' ', 'T') + micros(v as number)}Z`;
    case 'date':
    case 'decimal':
    case 'binary':
    case 'fixed':
      return human(t, v);
    case 'long':
      return typeof v === 'bigint' ? v.toString() : v;
    case 'float':
    case 'double':
      return Number.isFinite(v as number) ? v : String(v);
    default:
      return v;
  }
}

function micros(v: number): string {
  const us = ((v % 1_000_000) + 1_000_000) % 1_000_000;
  return us === 0 ? '' : `.${String(us).padStart(6, '0')}`;
}
