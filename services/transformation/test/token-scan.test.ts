/**
 * The token scanner (core/token-scan.ts) against the reference path (transformRecord, plan.ts):
 * a corpus of messy records through both, requiring identical rows and identical refusals.
 *
 * For each plan of the table below, a deterministic corpus: clean generated records (values
 * in the forms the scanner reads), records with 1-3 random mutations of them (unicode, invalid
 * UTF-8, BOM, huge numbers, floats at the edges, numbers as strings and strings as numbers,
 * nulls, missing, extra, dotted, colliding and duplicate keys, nesting at and beyond the
 * flatten level, arrays, whitespace, trailing garbage and commas, invalid JSON, JSON that is
 * not an object, timestamps and dates valid and not, CSV quoting, field counts, line ends and
 * control characters, ...), every special value of the pools in every column in turn, the
 * core tests' cases, and tombstones, empty values and header limits. Then for every record:
 *
 * - if the scanner takes it, the reference makes a row of it (no RecordError, no SchemaGrowth,
 *   no field counted as unmapped), and the chunk grew by one row; if it declines, the chunk is
 *   exactly as it was;
 * - the reference rows of the taken records go through ParquetFileWriter.append into one file,
 *   the token rows through appendTokens (flushed in chunks of varying size, a few thousand rows
 *   mostly) into another; read back with DuckDB, the files hold the same rows, value for value
 *   (-0, NaN and infinities told apart), and the DataFiles' column stats agree;
 * - every clean generated record is taken (a scanner that declines everything fails), and
 *   some messy ones are declined.
 *
 * Partitioned plans (PARTITIONED) go through TokenRows instead: the same corpus, with the
 * partition source columns drawn from pools of values (edges of the transforms, unicode, many
 * partitions), and besides the above:
 *
 * - if TokenRows takes a record, the reference makes a row of it and partitionOf gives it a
 *   tuple (a throw is a refusal, `partition`); a second TokenRows drained after every record
 *   gives each taken record's tuple, which must equal the reference's (key, path and values);
 * - the reference rows go into one file per tuple key through append, TokenRows is drained at
 *   random intervals into one file per tuple key through appendTokens: the same keys on both
 *   sides, the same rows in the same order in each, the same column stats, and every tuple a
 *   drain hands over equal to the reference's.
 */
import assert from 'node:assert/strict';
import { isUtf8 } from 'node:buffer';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  type DuckDBConnection,
  DuckDBDateValue,
  DuckDBInstance,
  DuckDBTimestampTZValue,
  DuckDBTimestampValue,
  type DuckDBValue,
} from '@duckdb/node-api';
import {
  ChangeFormat,
  type DataFile,
  type FieldMapping,
  type KafkaRecord,
  type MappingSpec,
  MessageFormat,
  type PartitionSpec,
  MessageMode,
  SchemaEvolution,
} from '#shared/gen/sluice/v1/types.js';
import { TokenChunk } from '#shared/parquet/token-chunk.js';
import { ParquetFileWriter, writerColumns } from '#shared/parquet/writer.js';
import { field, mapping, schema } from '#test-support/builders.js';
import { RecordError } from '../src/core/errors.js';
import type { PartitionTuple } from '../src/core/partition.js';
import { compilePlan, MAX_RECORD_HEADERS, partitionOf, transformRecord } from '../src/core/plan.js';
import type { RecordContext, Row } from '../src/core/row.js';
import { compileTokenScanner, type RecordRanges, TokenRows, type TokenScanner } from '../src/core/token-scan.js';
import { RunCursor } from '../src/run-cursor.js';
import { recordRuns } from '#shared/record-runs.js';

// ---------------------------------------------------------------------------------------------
// The plans

type Type = 'long' | 'int' | 'double' | 'boolean' | 'string' | 'date' | 'timestamp' | 'timestamptz';
type EpochUnit = 'epoch_s' | 'epoch_ms' | 'epoch_us';

interface Col {
  name: string;
  type: Type;
  required?: boolean;
  /** Where a JSON record holds it; default [name]. */
  path?: string[];
  /** How numbers are read into a time column (a CSV field mapping's format); default epoch_ms. */
  unit?: EpochUnit;
  /** Its clean values (text in the case's format), when not the type's generator's: a partition source's pool. */
  clean?: (r: Rng, c: Case, col: Col) => string;
}

interface Case {
  name: string;
  format: 'json' | 'csv';
  cols: Col[];
  mapping: Partial<MappingSpec>;
  /** Generated records (clean and mutated), besides the systematic and fixed ones. */
  generated: number;
  seed: number;
  /** The part parsed (KEY mode reads the key). */
  part?: 'key' | 'value';
  maxRecordBytes?: number;
  /** CSV: the line's fields in order, each a column's name, or null for a field no column reads. */
  csv?: { delimiter: string; quote: string; fields: (string | null)[] };
  /** The table's partition spec: transforms of columns (by name; `byName` names the source instead of its id). */
  partition?: { source: string; transform: string; name: string; byName?: boolean }[];
  /** Partitioned: more partitions than TokenRows keeps chunks for in one drain. */
  crowd?: boolean;
  /** JSON: records with a timestamp of every form in each time column; default 300. */
  timestampForms?: number;
}

const WIDE: Col[] = [
  { name: 'id', type: 'long', required: true },
  { name: 'ts', type: 'timestamptz' },
  { name: 'event', type: 'string' },
  { name: 'amount', type: 'double' },
  { name: 'currency', type: 'string' },
  { name: 'ok', type: 'boolean' },
  ...['id', 'name', 'tier', 'email'].map((k): Col => ({ name: `user_${k}`, type: 'string', path: ['user', k] })),
  ...['os', 'model', 'app_version', 'locale'].map((k): Col => ({ name: `device_${k}`, type: 'string', path: ['device', k] })),
  { name: 'geo_country', type: 'string', path: ['geo', 'country'] },
  { name: 'geo_city', type: 'string', path: ['geo', 'city'] },
  { name: 'geo_lat', type: 'double', path: ['geo', 'lat'] },
  { name: 'geo_lon', type: 'double', path: ['geo', 'lon'] },
  { name: 'geo_n', type: 'int', path: ['geo', 'n'] },
  { name: 'session', type: 'string' },
  { name: 'page', type: 'string' },
  { name: 'referrer', type: 'string' },
  { name: 'user_agent', type: 'string' },
];

const TIMES: Col[] = [
  { name: 'id', type: 'long' },
  { name: 't', type: 'timestamp' },
  { name: 'tz', type: 'timestamptz' },
  { name: 'd', type: 'date' },
  { name: 'label', type: 'string' },
];

const CSV_COMMA_COLS: Col[] = [
  { name: 'id', type: 'long', required: true },
  { name: 'name', type: 'string' },
  { name: 'amount', type: 'double' },
  { name: 'ok', type: 'boolean' },
  { name: 'n', type: 'int' },
  { name: 'ts', type: 'timestamptz' },
  { name: 'day', type: 'date' },
  { name: 'note', type: 'string' },
  // Not in the CSV line: always null.
  { name: 'extra', type: 'string' },
];

const CASES: Case[] = [
  {
    name: 'JSON level 1',
    format: 'json',
    cols: [
      { name: 'id', type: 'long', required: true },
      { name: 'name', type: 'string' },
      { name: 'amount', type: 'double' },
      { name: 'ok', type: 'boolean' },
      { name: 'n', type: 'int' },
      { name: 'ts', type: 'timestamptz' },
      { name: 'day', type: 'date', required: true },
      { name: 'a_b', type: 'string' },
      { name: 'user_id', type: 'string' },
      { name: 'größe', type: 'string' },
    ],
    mapping: { format: MessageFormat.MESSAGE_FORMAT_JSON, flattenLevel: 1 },
    generated: 10_000,
    seed: 1,
  },
  {
    name: 'JSON level 2 (wide)',
    format: 'json',
    cols: WIDE,
    mapping: { format: MessageFormat.MESSAGE_FORMAT_JSON, flattenLevel: 2, timeZone: 'UTC' },
    generated: 3000,
    seed: 2,
  },
  {
    name: 'JSON level 3',
    format: 'json',
    cols: [
      { name: 'id', type: 'long' },
      { name: 'a_b_c', type: 'string', path: ['a', 'b', 'c'] },
      { name: 'a_b_d', type: 'long', path: ['a', 'b', 'd'] },
      { name: 'a_x', type: 'double', path: ['a', 'x'] },
      { name: 'top', type: 'boolean' },
    ],
    mapping: { format: MessageFormat.MESSAGE_FORMAT_JSON, flattenLevel: 3 },
    generated: 1500,
    seed: 3,
  },
  {
    name: 'FLATTEN',
    format: 'json',
    cols: [
      { name: 'id', type: 'long', required: true },
      { name: 'name', type: 'string' },
      { name: 'score', type: 'double' },
      { name: 'flag', type: 'boolean' },
      { name: 'at', type: 'timestamptz' },
      { name: 'born', type: 'date' },
      { name: 'n', type: 'int' },
    ],
    mapping: { format: MessageFormat.MESSAGE_FORMAT_FLATTEN, flattenLevel: 1, mode: MessageMode.MESSAGE_MODE_VALUE },
    generated: 2000,
    seed: 4,
    maxRecordBytes: 512,
  },
  {
    name: 'JSON level 1, schema evolution NONE (count)',
    format: 'json',
    cols: [
      { name: 'id', type: 'long' },
      { name: 'name', type: 'string' },
      { name: 'v', type: 'double' },
      { name: 'ok', type: 'boolean' },
      { name: 'n', type: 'int' },
      { name: 'a_b', type: 'string' },
    ],
    mapping: { format: MessageFormat.MESSAGE_FORMAT_JSON, flattenLevel: 1, schemaEvolution: SchemaEvolution.SCHEMA_EVOLUTION_NONE },
    generated: 2000,
    seed: 5,
  },
  {
    name: 'JSON level 2, schema evolution NONE (count)',
    format: 'json',
    cols: WIDE.slice(0, 12),
    mapping: { format: MessageFormat.MESSAGE_FORMAT_JSON, flattenLevel: 2, schemaEvolution: SchemaEvolution.SCHEMA_EVOLUTION_NONE },
    generated: 1000,
    seed: 6,
  },
  {
    name: 'JSON timestamps in Europe/Berlin',
    format: 'json',
    cols: TIMES,
    mapping: { format: MessageFormat.MESSAGE_FORMAT_JSON, flattenLevel: 1, timeZone: 'Europe/Berlin' },
    generated: 2500,
    seed: 7,
  },
  {
    name: 'JSON timestamps in UTC',
    format: 'json',
    cols: TIMES,
    mapping: { format: MessageFormat.MESSAGE_FORMAT_JSON, flattenLevel: 1, timeZone: 'UTC' },
    generated: 2500,
    seed: 8,
  },
  {
    name: 'JSON level 1 in the key (KEY mode)',
    format: 'json',
    part: 'key',
    cols: [
      { name: 'id', type: 'long' },
      { name: 'name', type: 'string' },
      { name: 'ts', type: 'timestamptz' },
    ],
    mapping: { format: MessageFormat.MESSAGE_FORMAT_JSON, flattenLevel: 1, mode: MessageMode.MESSAGE_MODE_KEY },
    generated: 800,
    seed: 9,
  },
  {
    name: 'CSV with ","',
    format: 'csv',
    cols: CSV_COMMA_COLS,
    mapping: {
      format: MessageFormat.MESSAGE_FORMAT_CSV,
      csv: { delimiter: ',', quote: '"', columns: ['id', 'name', 'amount', 'ok', 'n', 'ts', 'day', 'skip', 'note'] },
    },
    csv: { delimiter: ',', quote: '"', fields: ['id', 'name', 'amount', 'ok', 'n', 'ts', 'day', null, 'note'] },
    generated: 3000,
    seed: 10,
  },
  {
    name: 'CSV with ";", quote \', in America/New_York',
    format: 'csv',
    cols: [
      { name: 'id', type: 'long', required: true },
      { name: 'label', type: 'string' },
      { name: 'price', type: 'double' },
      { name: 'active', type: 'boolean', required: true },
      { name: 'at', type: 'timestamp' },
      { name: 'at_tz', type: 'timestamptz' },
      { name: 'day', type: 'date' },
      { name: 'qty', type: 'int' },
    ],
    mapping: {
      format: MessageFormat.MESSAGE_FORMAT_CSV,
      csv: { delimiter: ';', quote: "'", columns: [] },
      timeZone: 'America/New_York',
    },
    csv: { delimiter: ';', quote: "'", fields: ['id', 'label', 'price', 'active', 'at', 'at_tz', 'day', 'qty'] },
    generated: 2500,
    seed: 11,
  },
  {
    name: 'CSV with field mappings (epoch_s, epoch_us)',
    format: 'csv',
    cols: [
      { name: 'id', type: 'long', required: true },
      { name: 'ts', type: 'timestamptz', unit: 'epoch_s' },
      { name: 'name', type: 'string' },
      { name: 'us', type: 'timestamp', unit: 'epoch_us' },
      // Mapped by nothing: always null.
      { name: 'unmapped', type: 'string' },
    ],
    mapping: {
      format: MessageFormat.MESSAGE_FORMAT_CSV,
      csv: { delimiter: ',', quote: '"', columns: ['id', 't', 'name', 'u', 'junk'] },
      fields: [
        fieldMapping('id', 'id'),
        fieldMapping('ts', 't', 'epoch_s'),
        fieldMapping('name', 'name'),
        fieldMapping('us', 'u', 'epoch_us'),
      ],
    },
    csv: { delimiter: ',', quote: '"', fields: ['id', 'ts', 'name', 'us', null] },
    generated: 2000,
    seed: 12,
  },
];

function fieldMapping(column: string, path: string, format = ''): FieldMapping {
  return { column, path, type: '', format };
}

// ---------------------------------------------------------------------------------------------
// Deterministic randomness

class Rng {
  private a: number;
  constructor(seed: number) {
    this.a = (seed * 0x9e3779b9) >>> 0;
  }
  /** mulberry32 */
  next(): number {
    this.a = (this.a + 0x6d2b79f5) >>> 0;
    let t = this.a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  /** An integer in [lo, hi]. */
  range(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)];
  }
  weighted<T>(xs: readonly (readonly [number, T])[]): T {
    let total = 0;
    for (const [w] of xs) total += w;
    let r = this.next() * total;
    for (const [w, x] of xs) if ((r -= w) < 0) return x;
    return xs[xs.length - 1][1];
  }
  shuffle<T>(xs: readonly T[]): T[] {
    const out = [...xs];
    for (let i = out.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      [out[i], out[j]] = [out[j], out[i]];
    }
    return out;
  }
}

/** `n` random digits, the first not 0 unless n is 1. */
function digits(r: Rng, n: number): string {
  let s = n > 1 ? String(r.range(1, 9)) : String(r.int(10));
  while (s.length < n) s += String(r.int(10));
  return s;
}

/** Words of a list written as one line. */
const words = (line: string): string[] => line.split(' ');

const pad = (n: number, w: number) => String(n).padStart(w, '0');

// ---------------------------------------------------------------------------------------------
// Values: the clean forms the scanner reads, and pools of messy ones

const ASCII = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789    .-_/:@#$%&*()+=!?<>[]{}|~^`';,";
const UNICODE_PIECES = [
  'ü',
  'ß',
  'é',
  'e\u0301',
  'ñ',
  '日本',
  '中文',
  '한국어',
  'Ω',
  'ж',
  'ع',
  '😀',
  '🇩🇪',
  '👩‍👩‍👧',
  '\u{10ffff}',
  '\u{1d11e}',
  '\u00a0',
  '\u200b',
  '\ufeff',
  '\u2028',
  '\u2029',
  '\u007f',
  '\u0085',
  '\ufffd',
  'ǅ',
  '\u0300',
  '\uffff',
];

/** Random text without the given characters (and never a control character). */
function text(r: Rng, avoid: string, max = 16): string {
  const n = r.int(max + 1);
  let s = '';
  for (let i = 0; i < n; i++) {
    const piece = r.chance(0.15) ? r.pick(UNICODE_PIECES) : ASCII[r.int(ASCII.length)];
    if (![...piece].some((ch) => avoid.includes(ch))) s += piece;
  }
  return s;
}

function cleanDouble(r: Rng): string {
  switch (r.int(6)) {
    case 0:
      return JSON.stringify((r.next() - 0.5) * 10 ** r.range(-12, 25));
    case 1:
      return `${r.chance(0.3) ? '-' : ''}${digits(r, r.range(1, 6))}.${digits(r, r.range(1, 12))}`;
    case 2:
      return `${r.chance(0.3) ? '-' : ''}${r.range(1, 9)}${r.chance(0.5) ? `.${digits(r, r.range(1, 16))}` : ''}${r.pick(['e', 'E'])}${r.pick(['', '+', '-'])}${r.range(0, 300)}`;
    case 3:
      return String(r.range(-100000, 100000));
    case 4:
      return r.pick([
        '0',
        '-0',
        '0.0',
        '-0.0',
        '0.1',
        '5e-324',
        '4.9e-324',
        '1E5',
        '1e+5',
        '1e-5',
        '1.7976931348623157e308',
        '2.2250738585072014e-308',
        '2.2250738585072011e-308',
        '0.30000000000000004',
        '3.141592653589793238462643383279502884197',
        '123456789012345678901234567890',
        '9007199254740993',
        '0e0',
        '100e-2',
        '8.0e1',
      ]);
    default:
      return JSON.stringify(Math.round(r.next() * 1e6) / 100);
  }
}

function cleanLong(r: Rng): string {
  const n = r.weighted([
    [5, 1],
    [5, r.range(2, 6)],
    [5, r.range(7, 12)],
    [3, r.range(13, 15)],
  ]);
  return `${r.chance(0.2) ? '-' : ''}${digits(r, n)}`;
}

function cleanInt(r: Rng): string {
  return r.chance(0.5) ? String(r.range(-1000, 1000)) : String(Math.floor(r.next() * 2 ** 32) - 2 ** 31);
}

function ymd(r: Rng, lo: number, hi: number): string {
  const y = r.range(lo, hi);
  const m = r.range(1, 12);
  const dim = m === 2 ? ((y % 4 === 0 && y % 100 !== 0) || y % 400 === 0 ? 29 : 28) : [4, 6, 9, 11].includes(m) ? 30 : 31;
  return `${pad(y, 4)}-${pad(m, 2)}-${pad(r.range(1, dim), 2)}`;
}

const MICROS: Record<EpochUnit, number> = { epoch_s: 1_000_000, epoch_ms: 1000, epoch_us: 1 };

interface TimeRead {
  instants: boolean;
  wallClock: boolean;
  unit: EpochUnit;
}

/** Whether the case's zone is UTC (the mapping's default): timestamps then take instants and wall clocks alike. */
const inUtc = (c: Case) => !c.mapping.timeZone || c.mapping.timeZone === 'UTC';

function timeRead(c: Case, col: Col): TimeRead {
  return {
    instants: col.type === 'timestamptz' || inUtc(c),
    wallClock: col.type === 'timestamp' || inUtc(c),
    unit: col.unit ?? 'epoch_ms',
  };
}

/**
 * A clean epoch number in the column's unit: its microseconds safe, and at most 15 characters
 * with the sign (the scanner reads epoch text of up to 15 characters: a negative one of 15
 * digits is declined as text, taken as a JSON number).
 */
function cleanEpoch(r: Rng, unit: EpochUnit): string {
  const max = Math.min(999_999_999_999_999, Math.floor(Number.MAX_SAFE_INTEGER / MICROS[unit]));
  const n = r.chance(0.6) ? Math.floor(r.next() * 2 * 10 ** (String(max).length - 1)) : Math.floor(r.next() * max);
  if (r.chance(0.8)) return String(n);
  return `-${String(n).length > 14 ? Math.floor(n / 10) : n}`;
}

/** A clean ISO timestamp: yyyy-mm-dd[T ]hh:mm:ss[.f{1,9}][Z], microseconds safe. */
function cleanIso(r: Rng, read: TimeRead): string {
  const zulu = read.instants && (!read.wallClock || r.chance(0.5));
  const frac = r.chance(0.5) ? '' : `.${Array.from({ length: r.range(1, 9) }, () => r.int(10)).join('')}`;
  const time = `${pad(r.range(0, 23), 2)}:${pad(r.range(0, 59), 2)}:${pad(r.range(0, 59), 2)}`;
  return `${ymd(r, 1700, 2250)}${r.pick(['T', 'T', ' '])}${time}${frac}${zulu ? 'Z' : ''}`;
}

function cleanTime(r: Rng, read: TimeRead): { text: string; number: boolean } {
  if (read.instants && r.chance(0.4)) return { text: cleanEpoch(r, read.unit), number: true };
  return { text: cleanIso(r, read), number: false };
}

/** A clean JSON value of the column: one the scanner takes. */
function cleanJson(r: Rng, c: Case, col: Col): string {
  if (col.clean) return col.clean(r, c, col);
  switch (col.type) {
    case 'long':
      return cleanLong(r);
    case 'int':
      return cleanInt(r);
    case 'double':
      return cleanDouble(r);
    case 'boolean':
      return r.pick(['true', 'false']);
    case 'string':
      return r.chance(0.03) ? r.pick(['true', 'false']) : JSON.stringify(text(r, '"\\'));
    case 'date':
      return r.chance(0.3) ? String(r.range(-9_999_999, 9_999_999)) : `"${ymd(r, 1, 9999)}"`;
    case 'timestamp':
    case 'timestamptz': {
      const t = cleanTime(r, timeRead(c, col));
      return t.number && r.chance(0.7) ? t.text : `"${t.text}"`;
    }
  }
}

/** A clean CSV field of the column: one the scanner takes. */
function cleanCsv(r: Rng, c: Case, col: Col): string {
  if (col.clean) return col.clean(r, c, col);
  const { delimiter, quote } = c.csv!;
  switch (col.type) {
    case 'long':
      return cleanLong(r);
    case 'int':
      return cleanInt(r);
    case 'double':
      return cleanDouble(r);
    case 'boolean':
      return r.pick(['true', 'false', '1', '0']);
    case 'string':
      return text(r, delimiter + quote);
    case 'date':
      return ymd(r, 1, 9999);
    case 'timestamp':
    case 'timestamptz':
      return cleanTime(r, timeRead(c, col)).text;
  }
}

/** Number literals (JSON text; some are not JSON). */
const NUMBERS = words(
  `0 -0 1 -1 0.0 -0.0 0.1 -0.1 5e-324 -5e-324 2.4703282292062327e-324 2.4703282292062328e-324 1e400 -1e400 1e-400 -1e-400 1E5 1e+5 1e-5 1E-5 1.5E+300 1.7976931348623157e308 1.7976931348623158e308 1.7976931348623159e308 2.2250738585072014e-308 0.30000000000000004 3.141592653589793238462643383279502884197 123456789012345678901234567890 0.000000000000000000000000000001 9007199254740991 -9007199254740991 9007199254740992 9007199254740993 -9007199254740993 9223372036854775807 -9223372036854775808 9223372036854775808 -9223372036854775809 18446744073709551616 99999999999999999999 1234567890123456 123456789012345 999999999999999 -999999999999999 1000000000000000 100000000000000 2147483647 2147483648 -2147483648 -2147483649 4294967296 9999999999 10000000000 1.0 2.50 100e-2 1e0 0e0 0E-0 0e1000 1e15 1e16 12.5e1 -12.5E-1 1689298380000 1689298380 1689298380000000 19552 2932896 2932897 9999999 10000000 -719528 -9999999 -10000000 1.5 -1.5 00 01 -01 +1 .5 1. -.5 NaN Infinity -Infinity 0x10 1_000 1e 1e+ --1 - 1.5.5 ١ １`,
).concat(['- 1']);

function hugeInteger(r: Rng): string {
  if (r.chance(0.5))
    return r.pick([
      '9007199254740991',
      '9007199254740992',
      '9007199254740993',
      '-9007199254740991',
      '-9007199254740992',
      '-9007199254740993',
      '9223372036854775807',
      '9223372036854775808',
      '-9223372036854775808',
      '-9223372036854775809',
      '18446744073709551615',
      '100000000000000000000',
      '999999999999999',
      '1000000000000000',
      '-1000000000000000',
    ]);
  return `${r.chance(0.3) ? '-' : ''}${digits(r, r.range(16, 20))}`;
}

/** JSON string literals (some not valid JSON), as they stand in the record. */
const STRINGS = [
  '""',
  '" "',
  '"a"',
  '"1"',
  '"-1"',
  '"0"',
  '"-0"',
  '"01"',
  '"+1"',
  '"1.5"',
  '"1e5"',
  '" 42 "',
  '"42 "',
  '"\\t42"',
  '"0x1"',
  '"NaN"',
  '"Infinity"',
  '"-Infinity"',
  '"+Infinity"',
  '"null"',
  '"true"',
  '"false"',
  '"TRUE"',
  '" true "',
  '"yes"',
  '"t"',
  '"1689298380000"',
  '"-1689298380000"',
  '"0001689298380000"',
  '"0000000000001"',
  '"19552"',
  '"9007199254740993"',
  '"9223372036854775807"',
  '"9223372036854775808"',
  '"-9223372036854775808"',
  '"123456789012345"',
  '"1234567890123456"',
  '"12345678901234567890"',
  '"2147483648"',
  '"\\u0031"',
  '"\\u0074rue"',
  '"\\n"',
  '"\\r\\n"',
  '"\\t"',
  '"\\""',
  '"\\\\"',
  '"\\/"',
  '"\\u0000"',
  '"\\u0001"',
  '"\\u0002"',
  '"\\b\\f"',
  '"a\tb"',
  '"a\nb"',
  '"a\u0001b"',
  '"\u007f"',
  `"${'x'.repeat(600)}"`,
  '"unterminated',
  "'single'",
  '"a"b"',
  '"\\x41"',
  '"\\u12"',
  '"\\U0041"',
];

const UNICODE_STRINGS = [
  '"ü"',
  '"日本語"',
  '"😀"',
  '"🇩🇪"',
  '"e\u0301"',
  '"\u0301"',
  '"\ufeff"',
  '"\u2028"',
  '"\u00a0"',
  '"\u{10ffff}"',
  '"\uffff"',
  '"👩‍👩‍👧"',
  '"\\u00fc"',
  '"\\u0041"',
  '"\\ud83d\\ude00"',
  '"\\uD834\\uDD1E"',
  '"\\ud800"',
  '"\\udc00"',
  '"\\ud800x"',
  '"\\udc00\\ud800"',
  '"\\uFFFF"',
  '"\\ufeff"',
  '"a\\u0301"',
  '"\\u2028"',
];

const LITERALS = words(`true false null TRUE True False NULL Null tru fals nul nulll truex undefined None`);

const STRUCTS = [
  '{}',
  '{ }',
  '{"x":1}',
  '{"a":{"b":{"c":1}}}',
  '[]',
  '[1,2]',
  '[{"a":1}]',
  '[null]',
  '{"id":1}',
  '{"":""}',
  '{"x":9007199254740993}',
  '{"a":[1,{"b":"😀"}]}',
  '[[[[]]]]',
  '{"id":',
  '[',
];

const DATE_TEXTS = [
  '2023-07-14',
  '2023-02-30',
  '2023-02-29',
  '2024-02-29',
  '1900-02-29',
  '2000-02-29',
  '2023-13-01',
  '2023-00-10',
  '2023-07-00',
  '2023-07-32',
  '2023-04-31',
  '20230714',
  '2023-7-14',
  '2023-07-4',
  ' 2023-07-14',
  '2023-07-14 ',
  '0000-01-01',
  '0001-01-01',
  '9999-12-31',
  '1970-01-01',
  '1969-12-31',
  '2023/07/14',
  '2023-07-14T00:00:00Z',
  '2023-07-14Z',
  '+2023-07-14',
  '-2023-07-14',
  '２０２３-07-14',
  '10000-01-01',
  '2023-07-14\u0000',
];

function dateText(r: Rng): string {
  return r.chance(0.5) ? r.pick(DATE_TEXTS) : ymd(r, 1, 9999);
}

const EPOCHS = words(
  `0 -0 1 -1 1689298380000 -1689298380000 1689298380000.0 1689298380000.5 1.689298380e12 9007199254740 -9007199254740 9007199254741 -9007199254741 9007199254 9007199255 -9007199255 9007199254740991 9007199254740992 9007199254740993 999999999999999 -999999999999999 1000000000000000 123456789012345 1e3 1E3 00 +5 0001689298380000 0000000000001`,
);

function timestampText(r: Rng): string {
  const y = r.pick(['2023', '2023', '2023', '1970', '1969', '2000', '1900', '1700', '1600', '2250', '2300', '0000', '0001', '9999', '23']);
  const mo = r.pick(['07', '07', '07', '01', '02', '03', '10', '12', '13', '00', '7']);
  const d = r.pick(['14', '14', '14', '01', '26', '28', '29', '30', '31', '32', '00', '4']);
  if (r.chance(0.08)) return `${y}-${mo}-${d}`;
  const sep = r.pick(['T', 'T', 'T', ' ', ' ', 't', '_', '  ']);
  const time = r.pick([
    '01:33:00',
    '01:33:00',
    '00:00:00',
    '23:59:59',
    '02:30:00',
    '03:30:00',
    '24:00:00',
    '23:60:00',
    '23:59:60',
    '12:00',
    '12',
    '1:02:03',
    '12:00:0',
  ]);
  const frac = r.chance(0.5) ? '' : `${r.chance(0.9) ? '.' : ','}${Array.from({ length: r.range(0, 11) }, () => r.int(10)).join('')}`;
  const zone = r.pick([
    '',
    '',
    '',
    'Z',
    'Z',
    'Z',
    'z',
    '+00:00',
    '+02:00',
    '-05:30',
    '+0530',
    '+05',
    ' UTC',
    'UTC',
    ' Z',
    '+24:00',
    '-00:00',
    'GMT',
  ]);
  return `${y}-${mo}-${d}${sep}${time}${frac}${zone}`;
}

type Category = 'num' | 'huge' | 'double' | 'str' | 'unicode' | 'lit' | 'date' | 'ts' | 'epoch' | 'struct' | 'quoted';

const CATEGORIES: Record<Type, readonly (readonly [number, Category])[]> = {
  long: [
    [5, 'num'],
    [3, 'huge'],
    [1, 'double'],
    [2, 'str'],
    [1, 'lit'],
    [1, 'struct'],
    [1, 'epoch'],
  ],
  int: [
    [5, 'num'],
    [2, 'huge'],
    [1, 'double'],
    [2, 'str'],
    [1, 'lit'],
    [1, 'struct'],
  ],
  double: [
    [5, 'num'],
    [2, 'huge'],
    [4, 'double'],
    [2, 'str'],
    [1, 'lit'],
    [1, 'struct'],
  ],
  boolean: [
    [4, 'lit'],
    [3, 'num'],
    [3, 'str'],
    [1, 'struct'],
  ],
  string: [
    [4, 'str'],
    [4, 'unicode'],
    [2, 'num'],
    [1, 'huge'],
    [2, 'lit'],
    [2, 'struct'],
    [1, 'date'],
  ],
  date: [
    [5, 'date'],
    [3, 'num'],
    [2, 'str'],
    [2, 'ts'],
    [1, 'lit'],
  ],
  timestamp: [
    [6, 'ts'],
    [4, 'epoch'],
    [2, 'str'],
    [1, 'date'],
    [1, 'num'],
    [1, 'lit'],
  ],
  timestamptz: [
    [6, 'ts'],
    [4, 'epoch'],
    [2, 'str'],
    [1, 'date'],
    [1, 'num'],
    [1, 'lit'],
  ],
};

/** A messy JSON value for a column of this type: mostly of forms near the type, some of others. */
function messyJson(r: Rng, type: Type): string {
  const category = r.chance(0.8) ? r.weighted(CATEGORIES[type]) : r.weighted(CATEGORIES[r.pick(TYPES)]);
  switch (category) {
    case 'num':
      return r.pick(NUMBERS);
    case 'huge':
      return hugeInteger(r);
    case 'double':
      return cleanDouble(r);
    case 'str':
    case 'quoted':
      return r.pick(STRINGS);
    case 'unicode':
      return r.pick(UNICODE_STRINGS);
    case 'lit':
      return r.pick(LITERALS);
    case 'date':
      return r.chance(0.8)
        ? JSON.stringify(dateText(r))
        : r.pick(['19552', '-1', '0', '-0', '2932896', '9999999', '10000000', '19552.5', '1e3']);
    case 'ts':
      return JSON.stringify(timestampText(r));
    case 'epoch': {
      const e = r.pick(EPOCHS);
      return r.chance(0.6) ? e : `"${e}"`;
    }
    case 'struct':
      return r.pick(STRUCTS);
  }
}

const TYPES: readonly Type[] = ['long', 'int', 'double', 'boolean', 'string', 'date', 'timestamp', 'timestamptz'];

/** CSV text of fields (quoting and control characters included; some change the field count). */
function csvStrings(c: Case): string[] {
  const { delimiter: d, quote: q } = c.csv!;
  const other = d === ',' ? ';' : ',';
  return [
    ' ',
    '  ',
    'a',
    ` a `,
    `${q}a${q}`,
    `${q}${q}`,
    `${q}a${d}b${q}`,
    `${q}say ${q}${q}hi${q}${q}${q}`,
    `${q}unterminated`,
    `a${q}b`,
    `${q}a${q}b`,
    `${q}line1\nline2${q}`,
    `${q}1${q}`,
    `a${other}b`,
    '"',
    "'",
    '\\',
    '\\n',
    'a\tb',
    '\t1',
    '1\t',
    'a\u0000b',
    'a\u0001b',
    'a\u0002b',
    'a\u001fb',
    'a\u007fb',
    'NULL',
    'null',
    'N/A',
    '-',
    '+1',
    ' 1',
    '1 ',
    'TRUE',
    'True',
    ' true',
    'yes',
    't',
    '2',
    '-1',
    '1.0',
    'NaN',
    'Infinity',
    '-Infinity',
    'inf',
    'x'.repeat(600),
    `1${d}5`,
    '日本語',
    '😀',
    'e\u0301',
    '\ufeff',
    '\u2028',
  ];
}

function messyCsv(r: Rng, c: Case, type: Type): string {
  const category = r.chance(0.8) ? r.weighted(CATEGORIES[type]) : r.weighted(CATEGORIES[r.pick(TYPES)]);
  switch (category) {
    case 'num':
      return r.pick(NUMBERS);
    case 'huge':
      return hugeInteger(r);
    case 'double':
      return cleanDouble(r);
    case 'str':
    case 'quoted':
    case 'struct':
      return r.pick(csvStrings(c));
    case 'unicode':
      return r.pick(UNICODE_PIECES) + text(r, '', 4);
    case 'lit':
      return r.pick(LITERALS);
    case 'date':
      return dateText(r);
    case 'ts':
      return timestampText(r);
    case 'epoch':
      return r.pick(EPOCHS);
  }
}

// ---------------------------------------------------------------------------------------------
// JSON documents: built, mutated, then written out

interface Entry {
  /** The key as it stands between its quotes (escapes written out). */
  key: string;
  /** A JSON value's text, or an object's members. */
  value: Node;
  col?: Col;
}
type Node = string | Entry[];

function put(doc: Entry[], path: readonly string[], value: Node, col?: Col): void {
  let obj = doc;
  for (const key of path.slice(0, -1)) {
    let e = obj.find((x) => x.key === key && typeof x.value !== 'string');
    if (e === undefined) {
      e = { key, value: [] };
      obj.push(e);
    }
    obj = e.value as Entry[];
  }
  obj.push({ key: path[path.length - 1], value, col });
}

function cleanDoc(r: Rng, c: Case): Entry[] {
  const doc: Entry[] = [];
  for (const col of r.chance(0.3) ? r.shuffle(c.cols) : c.cols) {
    if (!col.required && r.chance(0.08)) continue;
    put(doc, col.path ?? [col.name], !col.required && r.chance(0.05) ? 'null' : cleanJson(r, c, col), col);
  }
  return doc;
}

const write = (node: Node, ws: () => string): string =>
  typeof node === 'string'
    ? node
    : `{${ws()}${node.map((e) => `"${e.key}"${ws()}:${ws()}${write(e.value, ws)}`).join(`${ws()},${ws()}`)}${ws()}}`;

interface Place {
  parent: Entry[];
  entry: Entry;
}

function places(doc: Entry[], leaves: boolean, out: Place[] = []): Place[] {
  for (const entry of doc) {
    if (typeof entry.value === 'string') {
      if (leaves) out.push({ parent: doc, entry });
    } else {
      if (!leaves) out.push({ parent: doc, entry });
      places(entry.value, leaves, out);
    }
  }
  return out;
}

function objects(doc: Entry[], out: Entry[][] = []): Entry[][] {
  out.push(doc);
  for (const e of doc) if (typeof e.value !== 'string') objects(e.value, out);
  return out;
}

/** The document without the column's entries (at any depth). */
function without(doc: Entry[], col: Col): Entry[] {
  return doc.flatMap((e) => (e.col === col ? [] : typeof e.value === 'string' ? [e] : [{ ...e, value: without(e.value, col) }]));
}

const UNKNOWN_KEYS = [
  'unknown',
  'ID',
  'Id',
  ' id',
  'id ',
  '',
  '__proto__',
  'constructor',
  'toString',
  'a.b.c',
  'x.y',
  'größe2',
  'ünknown',
  '😀',
  '0',
  '1',
  'user',
  'geo',
  'a',
  'b',
  'user.id.x',
  'e\u0301',
];

/** `key` with one of its characters written as an escape (`\u0069`, or `\/` for a slash). */
function escapeKey(r: Rng, key: string): string {
  if (key.length === 0) return '\\u0041';
  const i = r.int(key.length);
  const code = key.charCodeAt(i);
  return `${key.slice(0, i)}\\u${code.toString(16).padStart(4, '0')}${key.slice(i + 1)}`;
}

interface JsonRecord {
  doc: Entry[];
  ws: (() => string) | null;
  text: ((t: string) => string)[];
  bytes: ((b: Buffer) => Buffer)[];
  whole: Buffer | null | undefined;
}

const JSON_WS = [' ', '\n', '\t', '\r\n', '  ', '\r', ' \n '];
const BAD_WS = ['\f', '\v', '\u00a0', '\u2028', '\u3000', '\u0000', '\ufeff'];
const BAD_UTF8 = [
  [0xff],
  [0xfe],
  [0x80],
  [0xbf],
  [0xc0, 0xaf],
  [0xc1, 0xbf],
  [0xe0, 0x80, 0xaf],
  [0xed, 0xa0, 0x80],
  [0xed, 0xbf, 0xbf],
  [0xf4, 0x90, 0x80, 0x80],
  [0xf5, 0x80, 0x80, 0x80],
  [0xf8, 0x88, 0x80, 0x80, 0x80],
  [0xe2, 0x82],
  [0xf0, 0x9f, 0x98],
  [0xc3],
];
const BOM = Buffer.from([0xef, 0xbb, 0xbf]);

function insertBytes(r: Rng, b: Buffer, bytes: readonly number[], at = r.int(b.length + 1)): Buffer {
  return Buffer.concat([b.subarray(0, at), Buffer.from(bytes), b.subarray(at)]);
}

/** Somewhere inside a string of the text (just after a quote), or anywhere. */
function stringPosition(r: Rng, b: Buffer): number {
  const quotes: number[] = [];
  for (let i = 0; i < b.length; i++) if (b[i] === 0x22 || b[i] === 0x2c || b[i] === 0x3b) quotes.push(i + 1);
  return quotes.length > 0 && r.chance(0.8) ? r.pick(quotes) : r.int(b.length + 1);
}

const byteMutations: [number, string, (r: Rng, b: Buffer) => Buffer][] = [
  [3, 'bom', (_r, b) => Buffer.concat([BOM, b])],
  [1, 'bom twice', (_r, b) => Buffer.concat([BOM, BOM, b])],
  [5, 'invalid utf-8', (r, b) => insertBytes(r, b, r.pick(BAD_UTF8), stringPosition(r, b))],
  [1, 'bom inside', (r, b) => insertBytes(r, b, [...BOM], stringPosition(r, b))],
  [1, 'raw utf-8 inside', (r, b) => insertBytes(r, b, [...Buffer.from(r.pick(UNICODE_PIECES))], stringPosition(r, b))],
];

/** JSON mutations: each changes the document, the text or the bytes of a record. */
const jsonMutations: [number, string, (r: Rng, c: Case, m: JsonRecord) => void][] = [
  [
    30,
    'value',
    (r, _c, m) => {
      const leaves = places(m.doc, true);
      if (leaves.length === 0) return;
      const { entry } = r.pick(leaves);
      entry.value = messyJson(r, entry.col?.type ?? r.pick(TYPES));
    },
  ],
  [
    6,
    'drop',
    (r, _c, m) => {
      const leaves = places(m.doc, true);
      if (leaves.length === 0) return;
      const { parent, entry } = r.pick(leaves);
      parent.splice(parent.indexOf(entry), 1);
    },
  ],
  [
    6,
    'null',
    (r, _c, m) => {
      const leaves = places(m.doc, true);
      if (leaves.length > 0) r.pick(leaves).entry.value = 'null';
    },
  ],
  [
    6,
    'unknown field',
    (r, _c, m) => {
      const obj = r.pick(objects(m.doc));
      const value = r.chance(0.15) ? 'null' : messyJson(r, r.pick(TYPES));
      obj.splice(r.int(obj.length + 1), 0, { key: r.pick(UNKNOWN_KEYS), value });
    },
  ],
  [
    6,
    'renamed (flat or dotted name)',
    (r, c, m) => {
      const col = r.pick(c.cols);
      const path = col.path ?? [col.name];
      if (r.chance(0.5)) {
        const own = places(m.doc, true).find((p) => p.entry.col === col);
        if (own) own.parent.splice(own.parent.indexOf(own.entry), 1);
      }
      const names = [col.name, col.name.replaceAll('_', '.'), path.join('.'), path.join('_')];
      if (path.length === 3) names.push(`${path[0]}.${path[1]}`);
      const key = r.pick(names);
      const value = cleanJson(r, c, col);
      if (path.length === 3 && key === `${path[0]}.${path[1]}`) {
        m.doc.splice(r.int(m.doc.length + 1), 0, { key, value: [{ key: path[2], value, col }] });
      } else m.doc.splice(r.int(m.doc.length + 1), 0, { key, value, col });
    },
  ],
  [
    4,
    'duplicate key',
    (r, c, m) => {
      const leaves = places(m.doc, true);
      if (leaves.length === 0) return;
      const { parent, entry } = r.pick(leaves);
      const value = entry.col && r.chance(0.5) ? cleanJson(r, c, entry.col) : r.chance(0.5) ? entry.value : messyJson(r, r.pick(TYPES));
      parent.splice(r.int(parent.length + 1), 0, { key: entry.key, value, col: entry.col });
    },
  ],
  [
    5,
    'nested value',
    (r, _c, m) => {
      const leaves = places(m.doc, true);
      if (leaves.length === 0) return;
      const { entry } = r.pick(leaves);
      entry.value = r.chance(0.5) ? r.pick(STRUCTS) : [{ key: r.pick(['x', 'id', entry.key]), value: entry.value }];
    },
  ],
  [
    3,
    'object replaced',
    (r, _c, m) => {
      const groups = places(m.doc, false);
      if (groups.length === 0) return;
      r.pick(groups).entry.value = r.pick(['null', '{}', '[]', '1', '"x"', '[{"id":1}]', 'true', '{"":{}}']);
    },
  ],
  [
    2,
    'duplicate object key',
    (r, c, m) => {
      const groups = places(m.doc, false);
      if (groups.length === 0) return;
      const { parent, entry } = r.pick(groups);
      const regenerate = (doc: Entry[]): Entry[] =>
        doc.flatMap((e): Entry[] => {
          if (r.chance(0.4)) return [];
          if (typeof e.value !== 'string') return [{ ...e, value: regenerate(e.value) }];
          return [{ ...e, value: e.col ? cleanJson(r, c, e.col) : e.value }];
        });
      parent.splice(r.int(parent.length + 1), 0, { key: entry.key, value: regenerate(entry.value as Entry[]) });
    },
  ],
  [2, 'empty object', (_r, _c, m) => void (m.doc.length = 0)],
  [
    3,
    'escaped key',
    (r, _c, m) => {
      const all = [...places(m.doc, true), ...places(m.doc, false)];
      if (all.length > 0) {
        const { entry } = r.pick(all);
        entry.key = r.chance(0.8) ? escapeKey(r, entry.key) : `${entry.key}\\/`;
      }
    },
  ],
  [
    2,
    'key case',
    (r, _c, m) => {
      const leaves = places(m.doc, true);
      if (leaves.length === 0) return;
      const { entry } = r.pick(leaves);
      entry.key = r.pick([entry.key.toUpperCase(), ` ${entry.key}`, `${entry.key} `, `${entry.key}\u0301`, `${entry.key}.`]);
    },
  ],
  [
    6,
    'unicode string',
    (r, _c, m) => {
      const leaves = places(m.doc, true).filter((p) => p.entry.col?.type === 'string');
      if (leaves.length > 0) r.pick(leaves).entry.value = r.pick(UNICODE_STRINGS);
    },
  ],
  [
    5,
    'huge number',
    (r, _c, m) => {
      const leaves = places(m.doc, true).filter((p) => p.entry.col !== undefined && p.entry.col.type !== 'string');
      if (leaves.length > 0) r.pick(leaves).entry.value = hugeInteger(r);
    },
  ],
  [
    4,
    'number as string, string as number',
    (r, _c, m) => {
      const leaves = places(m.doc, true);
      if (leaves.length === 0) return;
      const { entry } = r.pick(leaves);
      const v = entry.value as string;
      entry.value = v.startsWith('"') ? r.pick(NUMBERS.slice(0, 80)) : JSON.stringify(v);
    },
  ],
  [
    3,
    'boolean forms',
    (r, _c, m) => {
      const leaves = places(m.doc, true).filter((p) => p.entry.col?.type === 'boolean');
      if (leaves.length > 0)
        r.pick(leaves).entry.value = r.pick(['0', '1', '"true"', '"false"', '"1"', '"0"', '" TRUE "', '2', '-0', '1.0']);
    },
  ],
  [
    6,
    'timestamp forms',
    (r, _c, m) => {
      const leaves = places(m.doc, true).filter((p) => p.entry.col?.type === 'timestamp' || p.entry.col?.type === 'timestamptz');
      if (leaves.length > 0) r.pick(leaves).entry.value = messyJson(r, 'timestamptz');
    },
  ],
  [
    4,
    'date forms',
    (r, _c, m) => {
      const leaves = places(m.doc, true).filter((p) => p.entry.col?.type === 'date');
      if (leaves.length > 0) r.pick(leaves).entry.value = messyJson(r, 'date');
    },
  ],
  [
    1,
    'deep nesting',
    (r, _c, m) => {
      const leaves = places(m.doc, true);
      if (leaves.length === 0) return;
      const n = r.pick([2, 30, 1023, 1024, 1100]);
      r.pick(leaves).entry.value = `${'['.repeat(n)}${']'.repeat(n)}`;
    },
  ],
  [
    5,
    'whitespace',
    (r, _c, m) => {
      m.ws = () => (r.chance(0.4) ? r.pick(JSON_WS) : '');
    },
  ],
  [
    2,
    'non-JSON whitespace',
    (r, _c, m) => {
      m.ws = () => (r.chance(0.1) ? r.pick(BAD_WS) : r.chance(0.2) ? ' ' : '');
    },
  ],
  [
    2,
    'whitespace around',
    (r, _c, m) => {
      const before = r.pick(['', ' ', '\n', '\t\r\n', '\f', '\u00a0']);
      const after = r.pick(['', ' ', '\n', '\r\n', '\t', '\v', '\u0000']);
      m.text.push((t) => `${before}${t}${after}`);
    },
  ],
  [
    4,
    'trailing garbage',
    (r, _c, m) => {
      const tail = r.pick(['x', '}', ',', ' {}', '{}', '\u0000', '//', '/* c */', ']', 'null', '1', ' x', '"', '{"id":1}', '\n{}', ';']);
      m.text.push((t) => t + tail);
    },
  ],
  [
    3,
    'trailing comma',
    (r, _c, m) => {
      m.text.push((t) => {
        const closes = [...t.matchAll(/}/g)].map((x) => x.index);
        const at = closes.length > 0 && r.chance(0.8) ? r.pick(closes) : t.indexOf('{') + 1;
        return `${t.slice(0, at)}${r.pick([',', ', ', ',,'])}${t.slice(at)}`;
      });
    },
  ],
  [
    3,
    'truncated',
    (r, _c, m) => {
      m.text.push((t) => t.slice(0, r.int(t.length)));
    },
  ],
  [
    3,
    'corrupted character',
    (r, _c, m) => {
      m.text.push((t) => {
        const at = r.int(t.length);
        return t.slice(0, at) + r.pick(["'", ':', ',', '{', '}', '[', ']', '"', '\\', 'x', ' ', '\u0000', '\n', '']) + t.slice(at + 1);
      });
    },
  ],
  [
    3,
    'not an object',
    (r, _c, m) => {
      m.text.push((t) =>
        r.pick([`[${t}]`, '"str"', '1', 'null', 'true', '[]', '""', `${t}${t}`, `{${t}}`, JSON.stringify(t), '0', '-0', '1e400', '[{}]']),
      );
    },
  ],
  [
    1,
    'JavaScript, not JSON',
    (r, _c, m) => {
      m.text.push((t) =>
        r.pick([
          t.replace(/"([^"\\]+)":/, '$1:'),
          t.replace(/:(-?\d[\d.eE+-]*)/, ':NaN'),
          t.replace(/:(-?\d[\d.eE+-]*)/, ':Infinity'),
          t.replace(/:"([^"\\]*)"/, ":'$1'"),
          `// c\n${t}`,
          t.replace(/:(-?\d[\d.eE+-]*)/, ':0x1F'),
        ]),
      );
    },
  ],
  ...byteMutations.map(([w, name, f]): [number, string, (r: Rng, c: Case, m: JsonRecord) => void] => [
    w,
    name,
    (r, _c, m) => m.bytes.push((b) => f(r, b)),
  ]),
  [
    2,
    'whole record',
    (r, _c, m) => {
      const v = r.pick([
        undefined,
        '',
        ' ',
        '\n',
        '{}',
        '{ }',
        ' {} ',
        'null',
        '[]',
        '"x"',
        '123',
        '{"":1}',
        '\ufeff{}',
        '{}\n',
        '{',
        '}',
        '\u0000',
      ]);
      m.whole = v === undefined ? null : Buffer.from(v);
    },
  ],
];

// ---------------------------------------------------------------------------------------------
// The corpus

interface Sample {
  rec: KafkaRecord;
  /** The record as the scanner reads it, laid in a run with the others (layInOneRun). */
  ranges?: RecordRanges;
  /** A clean generated record: the scanner must take it. */
  clean: boolean;
  /** How it was made (for the failure messages). */
  how: string;
}

/**
 * The samples' records laid one after another in one run, as transformation reads them
 * (RunCursor): each sample's ranges point into the run's shared buffers, so a scanner that read
 * past a record's end would meet the next record's bytes. The reference reads `rec`, whose
 * key and value are buffers of their own.
 */
function layInOneRun(samples: readonly Sample[]): void {
  if (samples.length === 0) return;
  const runs = recordRuns(samples.map((s) => s.rec));
  assert.equal(runs.length, 1, 'the samples are of one partition');
  const cursor = new RunCursor().reset(runs[0]);
  for (const s of samples) {
    assert.ok(cursor.next());
    const { headers, valueBytes, valueStart, valueEnd, keyBytes, keyStart, keyEnd } = cursor;
    s.ranges = { headers, valueBytes, valueStart, valueEnd, keyBytes, keyStart, keyEnd };
  }
}

const rangesOf = (s: Sample): RecordRanges => s.ranges ?? assert.fail('the sample was not laid in a run');

function kafkaRecord(c: Case, r: Rng, offset: number, body: Buffer | undefined, headers = 0): KafkaRecord {
  const other = r.chance(0.5) ? undefined : r.chance(0.5) ? Buffer.from([0xff, 0x00, 0x7b]) : Buffer.from('{"id":"other part"}');
  return {
    topic: 'topic_test',
    partition: 0,
    offset,
    timestampMs: 1_689_282_787_000,
    key: c.part === 'key' ? body : other,
    value: c.part === 'key' ? other : body,
    headers: Array.from({ length: headers }, (_, i) => ({ key: `h${i}`, value: Buffer.from('v') })),
  };
}

function jsonSample(r: Rng, c: Case, mutations: number): { body: Buffer | undefined; how: string } {
  const m: JsonRecord = { doc: cleanDoc(r, c), ws: null, text: [], bytes: [], whole: undefined };
  const names: string[] = [];
  for (let k = 0; k < mutations; k++) {
    const [, name, f] = r.weighted(jsonMutations.map((x) => [x[0], x] as const));
    names.push(name);
    f(r, c, m);
  }
  if (m.whole !== undefined) return { body: m.whole ?? undefined, how: `${names.join(', ')}` };
  let t = write(m.doc, m.ws ?? (() => ''));
  for (const f of m.text) t = f(t);
  let b: Buffer = Buffer.from(t);
  for (const f of m.bytes) b = f(b);
  return { body: b, how: names.join(', ') || 'clean' };
}

/** The line's fields as the clean generator makes them (a field no column reads gets clean text). */
function cleanFields(r: Rng, c: Case): string[] {
  const { delimiter, quote, fields } = c.csv!;
  return fields.map((name) => {
    if (name === null) return text(r, delimiter + quote, 8);
    const col = c.cols.find((x) => x.name === name)!;
    return !col.required && r.chance(0.08) ? '' : cleanCsv(r, c, col);
  });
}

const CONTROL = ['\t', '\u0001', '\u0000', '\u001f', '\u000b', '\f', '\u0002', '\r', '\n'];

interface CsvRecord {
  fields: string[];
  text: ((t: string) => string)[];
  bytes: ((b: Buffer) => Buffer)[];
  whole: Buffer | null | undefined;
}

const fieldCol = (c: Case, i: number): Col | undefined => {
  const name = c.csv!.fields[i];
  return name === null || name === undefined ? undefined : c.cols.find((x) => x.name === name);
};

const csvMutations: [number, string, (r: Rng, c: Case, m: CsvRecord) => void][] = [
  [
    30,
    'value',
    (r, c, m) => {
      const i = r.int(m.fields.length);
      m.fields[i] = messyCsv(r, c, fieldCol(c, i)?.type ?? r.pick(TYPES));
    },
  ],
  [6, 'empty field', (r, _c, m) => void (m.fields[r.int(m.fields.length)] = '')],
  [4, 'extra field', (r, c, m) => void m.fields.splice(r.int(m.fields.length + 1), 0, r.chance(0.5) ? '' : text(r, c.csv!.quote, 6))],
  [4, 'missing field', (r, _c, m) => void m.fields.splice(r.int(m.fields.length), 1)],
  [
    5,
    'quoting',
    (r, c, m) => {
      const { delimiter: d, quote: q } = c.csv!;
      const i = r.int(m.fields.length);
      const f = m.fields[i];
      m.fields[i] = r.pick([
        `${q}${f}${q}`,
        `${q}${f}${q}`,
        `${q}${f}`,
        `${f}${q}`,
        `${f.slice(0, 1)}${q}${f.slice(1)}`,
        `${q}${q}`,
        `${q}${f}${d}${f}${q}`,
        `${q}${f}\n${f}${q}`,
        `${q}${q}${q}${f}${q}${q}${q}`,
        `${q}${f}${q} `,
        ` ${q}${f}${q}`,
      ]);
    },
  ],
  [
    4,
    'spaces',
    (r, _c, m) => {
      const i = r.int(m.fields.length);
      m.fields[i] = r.pick([` ${m.fields[i]}`, `${m.fields[i]} `, ' ', `\u00a0${m.fields[i]}`]);
    },
  ],
  [
    3,
    'control character',
    (r, _c, m) => {
      const i = r.int(m.fields.length);
      const f = m.fields[i];
      const at = r.int(f.length + 1);
      m.fields[i] = f.slice(0, at) + r.pick(CONTROL) + f.slice(at);
    },
  ],
  [
    5,
    'unicode',
    (r, c, m) => {
      const i = r.int(m.fields.length);
      if (fieldCol(c, i)?.type === 'string' || r.chance(0.3)) m.fields[i] = `${r.pick(UNICODE_PIECES)}${text(r, c.csv!.quote, 5)}`;
    },
  ],
  [
    5,
    'huge number',
    (r, _c, m) => {
      m.fields[r.int(m.fields.length)] = hugeInteger(r);
    },
  ],
  [
    3,
    'boolean forms',
    (r, c, m) => {
      const at = c.csv!.fields.flatMap((_, i) => (fieldCol(c, i)?.type === 'boolean' ? [i] : []));
      if (at.length > 0)
        m.fields[r.pick(at)] = r.pick(['TRUE', 'True', 'FALSE', ' true', 'true ', 'yes', 'no', '2', '-1', '01', '1.0', 't', 'f', '']);
    },
  ],
  [
    6,
    'timestamp forms',
    (r, c, m) => {
      const at = c.csv!.fields.flatMap((_, i) => (fieldCol(c, i)?.type.startsWith('timestamp') ? [i] : []));
      if (at.length > 0) m.fields[r.pick(at)] = r.chance(0.7) ? timestampText(r) : r.pick(EPOCHS);
    },
  ],
  [
    4,
    'date forms',
    (r, c, m) => {
      const at = c.csv!.fields.flatMap((_, i) => (fieldCol(c, i)?.type === 'date' ? [i] : []));
      if (at.length > 0) m.fields[r.pick(at)] = r.chance(0.7) ? dateText(r) : r.pick(['19552', '-1', '0', '2932896', '1e3']);
    },
  ],
  [
    4,
    'line end',
    (r, _c, m) => {
      const end = r.pick(['\n', '\r\n', '\r', '\n\n', ' \n', '\n\r', '\r\r\n']);
      m.text.push((t) => t + end);
    },
  ],
  [
    2,
    'line break inside',
    (r, _c, m) => {
      m.text.push((t) => {
        const at = r.int(t.length + 1);
        return `${t.slice(0, at)}${r.pick(['\n', '\r\n', '\r'])}${t.slice(at)}`;
      });
    },
  ],
  [
    2,
    'leading character',
    (r, c, m) => {
      const lead = r.pick([' ', '\ufeff', c.csv!.delimiter, c.csv!.quote, '\t']);
      m.text.push((t) => lead + t);
    },
  ],
  ...byteMutations.map(([w, name, f]): [number, string, (r: Rng, c: Case, m: CsvRecord) => void] => [
    w,
    name,
    (r, _c, m) => m.bytes.push((b) => f(r, b)),
  ]),
  [
    2,
    'whole record',
    (r, c, m) => {
      const { delimiter: d, quote: q } = c.csv!;
      const v = r.pick([
        undefined,
        '',
        ' ',
        '\n',
        '\r\n',
        d,
        d.repeat(c.csv!.fields.length - 1),
        d.repeat(c.csv!.fields.length),
        c.csv!.fields.map((n) => n ?? 'skip').join(d),
        '{"id":1}',
        `${q}${q}`,
        `${q}${d.repeat(c.csv!.fields.length - 1)}${q}`,
        '\ufeff',
        '\u0000',
      ]);
      m.whole = v === undefined ? null : Buffer.from(v);
    },
  ],
];

function csvSample(r: Rng, c: Case, mutations: number): { body: Buffer | undefined; how: string } {
  const m: CsvRecord = { fields: cleanFields(r, c), text: [], bytes: [], whole: undefined };
  const names: string[] = [];
  for (let k = 0; k < mutations; k++) {
    const [, name, f] = r.weighted(csvMutations.map((x) => [x[0], x] as const));
    names.push(name);
    f(r, c, m);
  }
  if (m.whole !== undefined) return { body: m.whole ?? undefined, how: names.join(', ') };
  let t = m.fields.join(c.csv!.delimiter);
  for (const f of m.text) t = f(t);
  let b: Buffer = Buffer.from(t);
  for (const f of m.bytes) b = f(b);
  return { body: b, how: names.join(', ') || 'clean' };
}

const deep = (n: number) => `{"id":1,"name":${'['.repeat(n)}${']'.repeat(n)}}`;

/** The core tests' JSON cases (core.test.ts), and a few more of the same kind. */
const CORE_JSON = [
  '{"id":1,"id":2,"name":"x"}',
  '{"id":1,"age":3}',
  '[1,2]',
  '{"id":NaN}',
  '{"id":1,"na',
  '{"id":92233720368547758070}',
  '{"id":1,"n":2,"amount":1.5,"f":0.5}',
  '{"id":9007199254740993}',
  '{"id":1,"tag":"x","ok":true,"ratio":0.5,"seq":7,"meta":{"k":1}}',
  '{"id":1,"later":null}',
  '{"id":1,"device":{"os":"linux"}}',
  '{"n":3000000000}',
  '{"amount":12345.67}',
  '{"f":1e300}',
  '{"amount":1.234}',
  '{"id":"x","tag":"y"}',
  '{"a.b":"1","a_b":"2"}',
  '{"a.b":"1","a":{"b":"2"}}',
  '{"x":{"y":1},"x.y":2}',
  '{"id":7,"items":[1]}',
  '{"a":{"b":1}}',
  '{"a.b":2,"a":{"b":3}}',
  '{"id":1}',
  '{"id":1,"day":"2023-07-14"}',
  '{"id":1,"day":19552,"name":"x"}',
  '{}',
  '{"id":1,"name":null}',
  '{"id":1,"name":"x"}',
  '{"id":1,"user_id":"a","user":{"id":"b"}}',
  '{"id":1,"user.id":"a","user":{"id":"b"}}',
  '{"id":1,"user_id":"a","user.id":"b"}',
  '{"id":1,"user":{"id":"b"},"user":{"name":"c"}}',
  '{"id":1,"user":{"id":"b","id":"c"}}',
  '{"id":1,"user":{}}',
  '{"id":1,"user":null}',
  '{"id":1,"a":{"b":{}}}',
  '{"id":1,"a":{"b":{"c":"x","d":1}},"a.b":{"c":"y"}}',
  '{"id":1,"a":{"b.c":"x"}}',
  '{"id":1,"a.b.c":"x"}',
  '{"id":1,"geo":{"lat":-0,"lon":-0.0,"n":-0}}',
  '{"id":-0}',
  '{"id":1,"größe":"groß"}',
  '{"id":1,"gr\\u00f6\\u00dfe":"groß"}',
  deep(1000),
  deep(1023),
  deep(1024),
  '['.repeat(1025),
];

const CORE_CSV = [
  '1103,zhangsan,china',
  '1,"a,b",c',
  '1,"line1\nline2",c',
  '1,"say ""hi""",c',
  ',"",x',
  'a,b\r\n',
  '1,"abc',
  'a,b\nc,d',
  "1|'x|y'",
  '1|2|3',
];

function corpus(c: Case): Sample[] {
  const r = new Rng(c.seed);
  const out: Sample[] = [];
  const add = (body: Buffer | undefined, clean: boolean, how: string, headers = 0) =>
    out.push({ rec: kafkaRecord(c, r, out.length, body, headers), clean, how });
  const cleanBody = () => (c.format === 'json' ? jsonSample(r, c, 0).body : csvSample(r, c, 0).body);

  // Generated: a third clean, the rest with 1-3 mutations.
  for (let i = 0; i < c.generated; i++) {
    const mutations = r.chance(0.33)
      ? 0
      : r.weighted([
          [6, 1],
          [3, 2],
          [1, 3],
        ]);
    const { body, how } = c.format === 'json' ? jsonSample(r, c, mutations) : csvSample(r, c, mutations);
    add(body, mutations === 0, how);
  }

  // Systematic: every special value of the pools in every column, the rest of the record clean.
  for (const col of c.cols) {
    if (c.format === 'json') {
      const values = [
        ...NUMBERS,
        ...STRINGS,
        ...UNICODE_STRINGS,
        ...LITERALS,
        ...STRUCTS,
        ...DATE_TEXTS.map((d) => JSON.stringify(d)),
        ...EPOCHS,
        ...EPOCHS.map((e) => `"${e}"`),
      ];
      for (const v of values) {
        const doc = without(cleanDoc(r, c), col);
        const path = col.path ?? [col.name];
        put(doc, path, v, col);
        add(Buffer.from(write(doc, () => '')), false, `${col.name} = ${v}`);
      }
    } else {
      const i = c.csv!.fields.indexOf(col.name);
      if (i < 0) continue;
      for (const v of [...NUMBERS, ...csvStrings(c), ...LITERALS, ...DATE_TEXTS, ...EPOCHS, ...UNICODE_PIECES]) {
        const fields = cleanFields(r, c);
        fields[i] = v;
        add(Buffer.from(fields.join(c.csv!.delimiter)), false, `${col.name} = ${v}`);
      }
    }
  }
  if (c.format === 'json') {
    // Timestamps of every form into every time column, both in clean records.
    for (const col of c.cols.filter((x) => x.type.startsWith('timestamp'))) {
      for (let k = 0; k < (c.timestampForms ?? 300); k++) {
        const doc = without(cleanDoc(r, c), col);
        put(doc, col.path ?? [col.name], JSON.stringify(timestampText(r)), col);
        add(Buffer.from(write(doc, () => '')), false, `${col.name}: timestamp form`);
      }
    }
  }

  // The core tests' cases.
  for (const t of c.format === 'json' ? CORE_JSON : CORE_CSV) {
    const line = c.format === 'csv' ? t.replaceAll(',', c.csv!.delimiter).replaceAll('"', c.csv!.quote) : t;
    add(Buffer.from(line), false, 'core case');
  }

  // Tombstones, empty values, the header limit (at it: a row; over it: refused).
  add(undefined, false, 'tombstone');
  add(Buffer.alloc(0), false, 'empty');
  add(Buffer.concat([BOM, cleanBody() ?? Buffer.alloc(0)]), false, 'BOM before a clean record');
  add(cleanBody(), true, `${MAX_RECORD_HEADERS} headers`, MAX_RECORD_HEADERS);
  add(cleanBody(), false, `${MAX_RECORD_HEADERS + 1} headers`, MAX_RECORD_HEADERS + 1);
  if (c.maxRecordBytes !== undefined) {
    add(Buffer.from(`{"id":1,"name":"${'x'.repeat(c.maxRecordBytes)}"}`), false, 'over maxRecordBytes');
    add(Buffer.from(`{"id":1,"name":"${'x'.repeat(c.maxRecordBytes - 19)}"}`), false, 'at maxRecordBytes');
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Partitioned plans: the partition source columns draw their clean values from pools

const DAY_MS = 86_400_000;
const HOUR_MS = 3_600_000;

/** Days since 1970-01-01 of a civil date (any year; months and days past their ends roll over). */
function dayOf(y: number, m: number, d: number): number {
  const t = new Date(0);
  t.setUTCFullYear(y, m - 1, d);
  return Math.round(t.getTime() / DAY_MS);
}

const hourOf = (y: number, m: number, d: number, h: number): number => dayOf(y, m, d) * 24 + h;

const seq = (from: number, n: number): number[] => Array.from({ length: n }, (_, i) => from + i);

/** Half the draws from the hot values, the others from the cold ones. */
const poolOf =
  <T>(hot: readonly T[], cold: readonly T[] = []) =>
  (r: Rng): T =>
    cold.length === 0 || r.chance(0.5) ? r.pick(hot) : r.pick(cold);

const DAY_OFFSETS = [0, 1, 999, 1000, 43_200_000, DAY_MS - 1000, DAY_MS - 1];
const HOUR_OFFSETS = [0, 1, 999, 1000, HOUR_MS - 1000, HOUR_MS - 1];

/** Instants (epoch ms) on the days `days` draws: at their edges, or anywhere in them. */
const onDays = (days: (r: Rng) => number) => (r: Rng) => days(r) * DAY_MS + (r.chance(0.5) ? r.pick(DAY_OFFSETS) : r.int(DAY_MS));

/** Instants (epoch ms) in the hours `hours` draws. */
const inHours = (hours: (r: Rng) => number) => (r: Rng) => hours(r) * HOUR_MS + (r.chance(0.5) ? r.pick(HOUR_OFFSETS) : r.int(HOUR_MS));

/**
 * Clean times at the instants `at` draws (epoch ms, years 1700-2250: microseconds safe), in
 * the forms the column takes: epoch numbers in its unit where instants are read (not when
 * `iso`), ISO text with 0-9 fraction digits, with Z where instants are read.
 */
function timeFrom(at: (r: Rng) => number, iso = false) {
  return (r: Rng, c: Case, col: Col): string => {
    const read = timeRead(c, col);
    const ms = at(r);
    if (!iso && read.instants && r.chance(0.4)) {
      const n = read.unit === 'epoch_s' ? Math.floor(ms / 1000) : read.unit === 'epoch_ms' ? ms : ms * 1000 + r.int(1000);
      const text = String(n);
      if (text.length <= 15) return c.format === 'csv' || r.chance(0.7) ? text : `"${text}"`;
    }
    const s = new Date(ms).toISOString(); // yyyy-mm-ddThh:mm:ss.fffZ
    const millis = s.slice(20, 23);
    const frac = r.pick([
      '',
      '',
      `.${millis}`,
      `.${millis.slice(0, 1)}`,
      `.${millis}${r.pick(['9', '999', '999999', '5', '4999', '000', digits(r, r.range(1, 6))])}`,
    ]);
    const zulu = read.instants && (!read.wallClock || r.chance(0.5));
    const text = `${s.slice(0, 10)}${r.pick(['T', 'T', ' '])}${s.slice(11, 19)}${frac}${zulu ? 'Z' : ''}`;
    return c.format === 'csv' ? text : `"${text}"`;
  };
}

/** Clean dates on the days `days` draws: yyyy-mm-dd (years 1-9999), or in JSON the day number. */
function dateFrom(days: (r: Rng) => number) {
  return (r: Rng, c: Case): string => {
    const d = days(r);
    const text = d >= dayOf(1, 1, 1) && d <= dayOf(9999, 12, 31) ? new Date(d * DAY_MS).toISOString().slice(0, 10) : null;
    if (c.format === 'csv') return text ?? String(d);
    return text !== null && r.chance(0.7) ? `"${text}"` : String(d);
  };
}

/** Clean strings from `pick` (in JSON now and then a boolean, which a string column takes as its text). */
const stringFrom = (pick: (r: Rng) => string) => (r: Rng, c: Case) =>
  c.format === 'csv' ? pick(r) : r.chance(0.03) ? r.pick(['true', 'false']) : `"${pick(r)}"`;

const DAY_EDGES = [
  dayOf(1970, 1, 1),
  dayOf(1969, 12, 31),
  dayOf(1969, 12, 30),
  dayOf(2000, 2, 29),
  dayOf(2024, 2, 29),
  dayOf(2023, 7, 14),
  dayOf(2023, 3, 26),
  dayOf(2023, 10, 29),
  dayOf(1900, 1, 1),
  dayOf(1700, 3, 1),
  dayOf(2250, 12, 31),
];

const HOUR_EDGES = [
  // Europe/Berlin's spring and autumn changes (01:00 UTC), and the wall clocks around them
  ...seq(hourOf(2023, 3, 26, 0), 4),
  ...seq(hourOf(2023, 10, 29, 0), 3),
  hourOf(1970, 1, 1, 0),
  hourOf(1969, 12, 31, 23),
  hourOf(2000, 2, 29, 12),
  hourOf(2023, 7, 14, 1),
  hourOf(1700, 1, 1, 0),
  hourOf(2250, 12, 31, 23),
];

const MONTH_EDGES = [
  dayOf(1970, 1, 1),
  dayOf(1969, 12, 31),
  dayOf(1970, 1, 31),
  dayOf(1970, 2, 1),
  dayOf(2000, 2, 29),
  dayOf(2024, 2, 29),
  dayOf(1, 1, 1),
  dayOf(9999, 12, 31),
  dayOf(1582, 10, 15),
  dayOf(1900, 3, 1),
  9_999_999,
  -9_999_999,
  -1,
  0,
  1,
];

const YEAR_EDGES = [
  dayOf(1970, 1, 1),
  dayOf(1969, 12, 31),
  dayOf(1970, 12, 31),
  dayOf(1971, 1, 1),
  dayOf(2000, 2, 29),
  dayOf(2023, 7, 14),
  dayOf(1, 1, 1),
  dayOf(1, 12, 31),
  dayOf(9999, 12, 31),
  9_999_999,
  -9_999_999,
  -1,
  0,
];

const COUNTRIES = ['DE', 'US', '日本', 'Österreich', '🇩🇪', ''];
const MORE_COUNTRIES = [
  'FR',
  'JP',
  'Ελλάδα',
  'Россия',
  '中国',
  '한국',
  '😀',
  'e\u0301',
  'é',
  'ǅ',
  ' ',
  'a b',
  'a/b',
  'a=b',
  'x%20y',
  '?',
  '#',
  '&',
  '+',
  'NULL',
  '1',
  '-0',
  '\u00a0',
  '\u2028',
  '\ufeff',
  '\u{10ffff}',
  '\uffff',
  '\u{1d11e}',
  '../x',
  'a\u0301\u0301',
  'x'.repeat(200),
];

const NAME_STEMS = ['abc', 'abcdef', 'ab', 'a', '', '日本語です', '😀😀😀😀'];
const MORE_NAME_STEMS = [
  'abd',
  'xyz',
  'XYZ',
  'Abc',
  '日本',
  '😀a',
  '👩‍👩‍👧‍👦',
  '🇩🇪🇫🇷',
  'e\u0301\u0301x',
  'ǅǆǅ',
  '\u{10ffff}\u{10ffff}ab',
  'a/b/c',
  '%%%',
  'null',
  'nul',
  '  x',
  'a=b',
  '\u00a0\u00a0\u00a0',
  '\u{1d11e}\u{1d11e}',
  'ab\u{1d11e}x',
  'ab\u0301',
];

/** A name from the stems, with text after it where that leaves its first three code points alone. */
const nameStem = poolOf(NAME_STEMS, MORE_NAME_STEMS);
const nameOf = (r: Rng): string => {
  const stem = nameStem(r);
  return [...stem].length >= 3 && r.chance(0.5) ? stem + text(r, '"\\', 6) : stem;
};

const JSON_1 = { format: MessageFormat.MESSAGE_FORMAT_JSON, flattenLevel: 1 };

const hourPlan = (zone: string, seed: number): Case => ({
  name: `JSON by hour(t) of a timestamp in ${zone}`,
  format: 'json',
  cols: [
    { name: 'id', type: 'long' },
    { name: 't', type: 'timestamp', clean: timeFrom(inHours(poolOf(HOUR_EDGES, seq(hourOf(2024, 1, 1, 0), 24)))) },
    { name: 'tz', type: 'timestamptz' },
    { name: 'd', type: 'date' },
    { name: 'label', type: 'string' },
  ],
  mapping: { ...JSON_1, timeZone: zone },
  partition: [{ source: 't', transform: 'hour', name: 't_hour' }],
  generated: 1000,
  seed,
  timestampForms: 60,
});

const PARTITIONED: Case[] = [
  {
    name: 'JSON level 1 by day(ts)',
    format: 'json',
    cols: [
      { name: 'id', type: 'long', required: true },
      { name: 'ts', type: 'timestamptz', clean: timeFrom(onDays(poolOf(DAY_EDGES, seq(dayOf(2023, 8, 1), 80)))) },
      { name: 'name', type: 'string' },
      { name: 'amount', type: 'double' },
      { name: 'day', type: 'date' },
      { name: 'ok', type: 'boolean' },
    ],
    mapping: JSON_1,
    partition: [{ source: 'ts', transform: 'day', name: 'ts_day' }],
    generated: 1500,
    seed: 21,
    crowd: true,
    timestampForms: 30,
  },
  {
    name: 'JSON level 1 by identity(country)',
    format: 'json',
    cols: [
      { name: 'id', type: 'long', required: true },
      { name: 'country', type: 'string', clean: stringFrom(poolOf(COUNTRIES, MORE_COUNTRIES)) },
      { name: 'name', type: 'string' },
      { name: 'ts', type: 'timestamptz' },
      { name: 'n', type: 'int' },
    ],
    mapping: JSON_1,
    partition: [{ source: 'country', transform: 'identity', name: 'country', byName: true }],
    generated: 1000,
    seed: 22,
    timestampForms: 20,
  },
  {
    name: 'JSON level 1 by bucket[8](id)',
    format: 'json',
    cols: [
      { name: 'id', type: 'long' },
      { name: 'name', type: 'string' },
      { name: 'ts', type: 'timestamptz' },
      { name: 'amount', type: 'double' },
    ],
    mapping: JSON_1,
    partition: [{ source: 'id', transform: 'bucket[8]', name: 'id_bucket' }],
    generated: 1500,
    seed: 23,
    timestampForms: 20,
  },
  {
    name: 'JSON level 1 by truncate[3](name)',
    format: 'json',
    cols: [
      { name: 'id', type: 'long', required: true },
      { name: 'name', type: 'string', clean: stringFrom(nameOf) },
      { name: 'amount', type: 'double' },
      { name: 'ts', type: 'timestamptz' },
    ],
    mapping: JSON_1,
    partition: [{ source: 'name', transform: 'truncate[3]', name: 'name_trunc' }],
    generated: 1000,
    seed: 24,
    timestampForms: 20,
  },
  hourPlan('Europe/Berlin', 25),
  hourPlan('UTC', 26),
  {
    name: 'JSON level 1 by month(d)',
    format: 'json',
    cols: [
      { name: 'id', type: 'long' },
      {
        name: 'd',
        type: 'date',
        clean: dateFrom(
          poolOf(
            MONTH_EDGES,
            seq(0, 24).flatMap((i) => [dayOf(2021, 1 + i, 1), dayOf(2021, 2 + i, 0)]),
          ),
        ),
      },
      { name: 'label', type: 'string' },
      { name: 'ts', type: 'timestamptz' },
    ],
    mapping: JSON_1,
    partition: [{ source: 'd', transform: 'month', name: 'd_month' }],
    generated: 1000,
    seed: 27,
    timestampForms: 20,
  },
  {
    name: 'JSON level 1 by year(d)',
    format: 'json',
    cols: [
      { name: 'id', type: 'long' },
      {
        name: 'd',
        type: 'date',
        clean: dateFrom(
          poolOf(
            YEAR_EDGES,
            seq(2001, 20).flatMap((y) => [dayOf(y, 1, 1), dayOf(y, 12, 31)]),
          ),
        ),
      },
      { name: 'label', type: 'string' },
    ],
    mapping: JSON_1,
    partition: [{ source: 'd', transform: 'year', name: 'd_year' }],
    generated: 1000,
    seed: 28,
  },
  {
    name: 'JSON level 1 by identity(country), day(ts)',
    format: 'json',
    cols: [
      { name: 'id', type: 'long', required: true },
      { name: 'ts', type: 'timestamptz', clean: timeFrom(onDays(poolOf(DAY_EDGES.slice(0, 4)))) },
      { name: 'country', type: 'string', clean: stringFrom(poolOf(['a/b', '日本', ''])) },
      { name: 'name', type: 'string' },
      { name: 'ok', type: 'boolean' },
    ],
    mapping: JSON_1,
    partition: [
      { source: 'country', transform: 'identity', name: 'country' },
      { source: 'ts', transform: 'day', name: 'ts_day' },
    ],
    generated: 1000,
    seed: 29,
    timestampForms: 20,
  },
  {
    name: 'CSV with "," by day(ts)',
    format: 'csv',
    cols: [
      { name: 'id', type: 'long', required: true },
      { name: 'name', type: 'string' },
      { name: 'ts', type: 'timestamptz', clean: timeFrom(onDays(poolOf(DAY_EDGES, seq(dayOf(2023, 8, 1), 10))), true) },
      { name: 'amount', type: 'double' },
      { name: 'note', type: 'string' },
    ],
    mapping: {
      format: MessageFormat.MESSAGE_FORMAT_CSV,
      csv: { delimiter: ',', quote: '"', columns: ['id', 'name', 'ts', 'amount', 'note'] },
    },
    csv: { delimiter: ',', quote: '"', fields: ['id', 'name', 'ts', 'amount', 'note'] },
    partition: [{ source: 'ts', transform: 'day', name: 'ts_day' }],
    generated: 1500,
    seed: 30,
  },
];

function specOf(c: Case): PartitionSpec {
  return {
    specId: 1,
    fields: c.partition!.map((p, k) => {
      const i = c.cols.findIndex((col) => col.name === p.source);
      assert.ok(i >= 0, `${c.name}: partition source ${p.source} is a column`);
      return {
        sourceId: p.byName ? 0 : i + 1,
        sourceName: p.byName ? p.source : '',
        fieldId: 1000 + k,
        name: p.name,
        transform: p.transform,
      };
    }),
  };
}

// ---------------------------------------------------------------------------------------------
// Running both paths

const schemaOf = (c: Case) => schema(...c.cols.map((col, i) => field(i + 1, col.name, col.type, col.required ?? false)));

function describeSample(s: Sample): string {
  const headers = s.rec.headers.length > 0 ? `(${s.rec.headers.length} headers) ` : '';
  const show = (b: Buffer | undefined) =>
    b === undefined ? 'undefined' : isUtf8(b) ? JSON.stringify(b.toString('utf8')) : `hex ${b.toString('hex')}`;
  return `offset ${s.rec.offset} [${s.how}] ${headers}key ${show(s.rec.key)} value ${show(s.rec.value)}`;
}

const showJs = (v: unknown): string =>
  JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? `${x}n` : typeof x === 'number' && !Number.isFinite(x) ? String(x) : x));

/** A Parquet cell as compared: -0 and NaN told apart, integers, dates and timestamps as text. */
function cell(v: DuckDBValue): unknown {
  if (typeof v === 'number') return Object.is(v, -0) ? '-0' : Number.isNaN(v) ? 'NaN' : Number.isFinite(v) ? v : String(v);
  if (typeof v === 'bigint') return `${v}n`;
  if (v instanceof DuckDBDateValue) return `date ${v.days}`;
  if (v instanceof DuckDBTimestampValue) return `timestamp ${v.micros}`;
  if (v instanceof DuckDBTimestampTZValue) return `timestamptz ${v.micros}`;
  return v;
}

const statsOf = (f: DataFile) =>
  f.columnStats.map((s) => ({
    fieldId: s.fieldId,
    valueCount: s.valueCount,
    nullValueCount: s.nullValueCount,
    nanValueCount: s.nanValueCount,
    lowerBound: Buffer.from(s.lowerBound).toString('hex'),
    upperBound: Buffer.from(s.upperBound).toString('hex'),
  }));

interface Report {
  records: number;
  taken: number;
  declined: number;
  clean: number;
  cleanTaken: number;
  messyDeclined: number;
  messyTaken: number;
  problems: string[];
}

const FLUSH_SIZES = [1, 3, 50, 700, 2000, 3000, 3000, 4000, 4000];

async function run(c: Case, dir: string, conn: DuckDBConnection, corpusOf = corpus): Promise<Report> {
  const sch = schemaOf(c);
  const plan = compilePlan({
    schema: sch,
    mapping: mapping(c.mapping),
    limits: c.maxRecordBytes !== undefined ? { maxRecordBytes: c.maxRecordBytes } : undefined,
  });
  const scanner = compileTokenScanner(plan);
  assert.ok(scanner !== null, `${c.name}: the plan has a scanner`);
  const samples = corpusOf(c);
  layInOneRun(samples);
  const r = new Rng(c.seed + 1000);
  const columns = writerColumns(sch);
  const slug = c.name.replace(/[^a-z0-9]+/gi, '-');
  const refPath = join(dir, `${slug}-reference.parquet`);
  const tokPath = join(dir, `${slug}-tokens.parquet`);
  const refWriter = await ParquetFileWriter.open({ path: refPath, columns });
  const tokWriter = await ParquetFileWriter.open({ path: tokPath, columns });
  const chunk = new TokenChunk(plan.columns.length);
  const report: Report = {
    records: samples.length,
    taken: 0,
    declined: 0,
    clean: 0,
    cleanTaken: 0,
    messyDeclined: 0,
    messyTaken: 0,
    problems: [],
  };
  const { problems } = report;
  /** Every row of the token file, in order; refused ones have no reference row. */
  const tokenRows: { sample: Sample; refused: boolean; reference: unknown[] | null }[] = [];
  let inChunk: Sample[] = [];
  let broken = false;
  let flushAt = r.pick(FLUSH_SIZES);

  const flush = async () => {
    if (chunk.rows === 0) return;
    try {
      await tokWriter.appendTokens(chunk);
    } catch (e) {
      broken = true;
      problems.push(`${c.name}: appendTokens failed: ${(e as Error).message}`);
      await findCulprit(c, scanner, inChunk, columns, dir, problems);
    }
    chunk.clear();
    inChunk = [];
    flushAt = r.pick(FLUSH_SIZES);
  };

  for (const s of samples) {
    const ctx: RecordContext = { nowMs: 1_700_000_000_000, unmapped: new Map() };
    const ref = transformRecord(plan, s.rec, ctx);
    const rows = chunk.rows;
    const bytes = chunk.bytes;
    const took = scanner.take(rangesOf(s), chunk);
    if (s.clean) report.clean++;
    if (!took) {
      report.declined++;
      if (!s.clean) report.messyDeclined++;
      else problems.push(`${c.name}: declined a clean record: ${describeSample(s)}`);
      if (chunk.rows !== rows || chunk.bytes !== bytes)
        problems.push(
          `${c.name}: declined but wrote into the chunk (${rows}/${bytes} -> ${chunk.rows}/${chunk.bytes}): ${describeSample(s)}`,
        );
      continue;
    }
    report.taken++;
    if (s.clean) report.cleanTaken++;
    else report.messyTaken++;
    if (chunk.rows !== rows + 1)
      problems.push(`${c.name}: took a record but the chunk has ${chunk.rows - rows} more rows: ${describeSample(s)}`);
    const refused = ref instanceof RecordError;
    if (refused) problems.push(`${c.name}: took a record the reference refuses (${ref.reason}: ${ref.message}): ${describeSample(s)}`);
    else {
      if (ctx.unmapped!.size > 0)
        problems.push(
          `${c.name}: took a record whose fields the reference counts as unmapped (${[...ctx.unmapped!.keys()]}): ${describeSample(s)}`,
        );
      refWriter.append(ref);
    }
    tokenRows.push({ sample: s, refused, reference: refused ? null : [...ref] });
    inChunk.push(s);
    if (chunk.rows >= flushAt) await flush();
  }
  await flush();

  const refFile = await refWriter.close();
  const tokFile = await tokWriter.close();
  if (broken) return report;

  const read = async (path: string) =>
    (
      await conn.runAndReadAll(
        `SELECT * EXCLUDE (file_row_number) FROM read_parquet('${path.replaceAll("'", "''")}', file_row_number = true) ORDER BY file_row_number`,
      )
    )
      .getRows()
      .map((row) => row.map(cell));
  const refRows = await read(refPath);
  const tokRows = await read(tokPath);
  assert.equal(tokRows.length, tokenRows.length, `${c.name}: the token file has a row per taken record`);
  assert.equal(refRows.length, tokenRows.filter((t) => !t.refused).length, `${c.name}: the reference file has a row per taken record`);
  let k = 0;
  for (let i = 0; i < tokenRows.length; i++) {
    const { sample, refused, reference } = tokenRows[i];
    if (refused) continue;
    const want = refRows[k++];
    const got = tokRows[i];
    try {
      assert.deepStrictEqual(got, want);
    } catch {
      const diff = columns.flatMap((col, j) =>
        Object.is(got[j], want[j])
          ? []
          : [`${col.name}: reference ${showJs(want[j])} (row value ${showJs(reference![j])}), tokens ${showJs(got[j])}`],
      );
      problems.push(`${c.name}: row ${i} differs: ${diff.join('; ')}; record ${describeSample(sample)}`);
    }
  }
  if (problems.length === 0) {
    assert.equal(tokFile.recordCount, refFile.recordCount);
    assert.deepEqual(statsOf(tokFile), statsOf(refFile), `${c.name}: column stats of the token file and the reference file`);
  }
  return report;
}

interface PartitionReport extends Report {
  partitions: number;
  drains: number;
  /** Drains that began with TokenRows crowded. */
  crowdedDrains: number;
  /** The most partitions one drain handed over. */
  widestDrain: number;
}

const DRAIN_SIZES = [1, 2, 7, 40, 150, 600, 600, 1500, 3000];

/**
 * A tuple as compared. An int or long value of -0 counts as 0: the wire (int32, int64) has no
 * -0, and the reference itself gives either (its tuple cache takes -0 and 0 for the same source).
 */
const tupleShape = (t: PartitionTuple) => ({
  key: t.key,
  path: t.path,
  values: t.values.map((v) => {
    const kind = v.value?.kind;
    if (kind === undefined || (kind.$case !== 'intValue' && kind.$case !== 'longValue') || !Object.is(kind.value, -0)) return v;
    return { ...v, value: { kind: { ...kind, value: 0 } } };
  }),
});

/** The rows of Parquet files, each file's in order, read in one query. */
async function readFiles(conn: DuckDBConnection, paths: readonly string[]): Promise<Map<string, unknown[][]>> {
  const out = new Map<string, unknown[][]>(paths.map((p) => [p, []]));
  if (paths.length === 0) return out;
  const list = paths.map((p) => `'${p.replaceAll("'", "''")}'`).join(', ');
  const reader = await conn.runAndReadAll(
    `SELECT filename, * EXCLUDE (filename, file_row_number) FROM read_parquet([${list}], filename = true, file_row_number = true) ORDER BY filename, file_row_number`,
  );
  for (const [name, ...row] of reader.getRows()) {
    const rows = out.get(String(name));
    assert.ok(rows !== undefined, `read_parquet names a file it was not given: ${String(name)}`);
    rows.push(row.map(cell));
  }
  return out;
}

/**
 * A partitioned plan: the reference (transformRecord, then partitionOf) into one file per tuple
 * key by append, TokenRows drained at random intervals into one file per tuple key by
 * appendTokens; and a second TokenRows, drained after every record, for each record's tuple.
 */
async function runPartitioned(c: Case, dir: string, conn: DuckDBConnection): Promise<PartitionReport> {
  const sch = schemaOf(c);
  // A plan per path: each partition tuple builder keeps its own last tuple.
  const planOf = () =>
    compilePlan({
      schema: sch,
      mapping: mapping(c.mapping),
      partitionSpec: specOf(c),
      limits: c.maxRecordBytes !== undefined ? { maxRecordBytes: c.maxRecordBytes } : undefined,
    });
  const refPlan = planOf();
  const tokPlan = planOf();
  const probePlan = planOf();
  assert.equal(tokPlan.partitionSources.length, c.partition!.length, `${c.name}: the plan reads its partition sources`);
  const scanner = compileTokenScanner(tokPlan);
  const probeScanner = compileTokenScanner(probePlan);
  assert.ok(scanner !== null && probeScanner !== null, `${c.name}: the plan has a scanner`);
  const rows = new TokenRows(tokPlan, scanner);
  const probe = new TokenRows(probePlan, probeScanner);
  const samples = corpus(c);
  layInOneRun(samples);
  const r = new Rng(c.seed + 2000);
  const columns = writerColumns(sch);
  const slug = c.name.replace(/[^a-z0-9]+/gi, '-');
  let opened = 0;
  const open = async (side: string) => {
    const path = join(dir, `${slug}-${side}-${opened++}.parquet`);
    return { path, writer: await ParquetFileWriter.open({ path, columns }) };
  };
  /** Per tuple key: the reference's file, with the records in it and their rows. */
  const refFiles = new Map<
    string,
    { path: string; writer: ParquetFileWriter; tuple: PartitionTuple; samples: Sample[]; rows: unknown[][] }
  >();
  /** Per tuple key: the token file, with every tuple the drains handed over with its rows. */
  const tokFiles = new Map<string, { path: string; writer: ParquetFileWriter; tuples: PartitionTuple[]; rows: number }>();
  /** Per tuple key: the records TokenRows puts there (by the probe's tuples), in order. */
  const tokSamples = new Map<string, Sample[]>();
  const report: PartitionReport = {
    records: samples.length,
    taken: 0,
    declined: 0,
    clean: 0,
    cleanTaken: 0,
    messyDeclined: 0,
    messyTaken: 0,
    problems: [],
    partitions: 0,
    drains: 0,
    crowdedDrains: 0,
    widestDrain: 0,
  };
  const { problems } = report;
  let sinceDrain = 0;
  let drainAt = r.pick(DRAIN_SIZES);

  const drain = async () => {
    report.drains++;
    const crowded = rows.crowded;
    if (crowded) report.crowdedDrains++;
    if (rows.rows !== sinceDrain)
      problems.push(`${c.name}: TokenRows has ${rows.rows} rows, ${sinceDrain} records were taken since the last drain`);
    const handed = new Set<string>();
    let written = 0;
    await rows.drain(async (tuple, chunk) => {
      if (handed.has(tuple.key)) problems.push(`${c.name}: one drain handed partition ${showJs(tuple.key)} over twice`);
      handed.add(tuple.key);
      written += chunk.rows;
      let f = tokFiles.get(tuple.key);
      if (f === undefined) {
        f = { ...(await open('tokens')), tuples: [], rows: 0 };
        tokFiles.set(tuple.key, f);
      }
      f.tuples.push(tuple);
      f.rows += chunk.rows;
      try {
        await f.writer.appendTokens(chunk);
      } catch (e) {
        problems.push(`${c.name}: appendTokens into partition ${showJs(tuple.key)} failed: ${(e as Error).message}`);
      }
    });
    if (written !== sinceDrain) problems.push(`${c.name}: a drain handed over ${written} rows, ${sinceDrain} records were taken`);
    if (rows.rows !== 0) problems.push(`${c.name}: TokenRows has ${rows.rows} rows after a drain`);
    if (crowded && rows.crowded) problems.push(`${c.name}: TokenRows is still crowded after a drain`);
    report.widestDrain = Math.max(report.widestDrain, handed.size);
    sinceDrain = 0;
    drainAt = r.pick(DRAIN_SIZES);
  };

  for (const s of samples) {
    const ctx: RecordContext = { nowMs: 1_700_000_000_000, unmapped: new Map() };
    const ref = transformRecord(refPlan, s.rec, ctx);
    const row: Row | null = ref instanceof RecordError ? null : ref;
    let refTuple: PartitionTuple | null = null;
    let refusal: string | null = null;
    if (ref instanceof RecordError) refusal = `${ref.reason}: ${ref.message}`;
    else {
      try {
        refTuple = partitionOf(refPlan, ref);
      } catch (e) {
        refusal = `partition: ${(e as Error).message}`;
      }
    }
    const before = rows.rows;
    const took = rows.take(rangesOf(s));
    const probeTook = probe.take(rangesOf(s));
    const probed: PartitionTuple[] = [];
    await probe.drain(async (tuple, chunk) => {
      for (let i = 0; i < chunk.rows; i++) probed.push(tuple);
    });
    if (s.clean) report.clean++;
    if (probeTook !== took)
      problems.push(`${c.name}: two TokenRows of one plan disagree (took: ${took}, ${probeTook}): ${describeSample(s)}`);
    if (probed.length !== (probeTook ? 1 : 0))
      problems.push(
        `${c.name}: a drain after ${probeTook ? 'taking' : 'declining'} a record handed over ${probed.length} rows: ${describeSample(s)}`,
      );
    if (!took) {
      report.declined++;
      if (!s.clean) report.messyDeclined++;
      else
        problems.push(
          `${c.name}: declined a clean record (reference: ${refusal ?? `partition ${showJs(refTuple!.key)}`}): ${describeSample(s)}`,
        );
      if (rows.rows !== before) problems.push(`${c.name}: declined but counted a row (${before} -> ${rows.rows}): ${describeSample(s)}`);
      continue;
    }
    report.taken++;
    if (s.clean) report.cleanTaken++;
    else report.messyTaken++;
    sinceDrain++;
    if (rows.rows !== before + 1)
      problems.push(`${c.name}: took a record but TokenRows has ${rows.rows - before} more rows: ${describeSample(s)}`);
    const tokTuple = probed[0];
    if (tokTuple !== undefined) {
      let list = tokSamples.get(tokTuple.key);
      if (list === undefined) tokSamples.set(tokTuple.key, (list = []));
      list.push(s);
    }
    if (refusal !== null) {
      problems.push(`${c.name}: took a record the reference refuses (${refusal}): ${describeSample(s)}`);
    } else {
      if (ctx.unmapped!.size > 0)
        problems.push(
          `${c.name}: took a record whose fields the reference counts as unmapped (${[...ctx.unmapped!.keys()]}): ${describeSample(s)}`,
        );
      if (tokTuple !== undefined) {
        try {
          assert.deepStrictEqual(tupleShape(tokTuple), tupleShape(refTuple!));
        } catch {
          problems.push(
            `${c.name}: partition of a record: reference ${showJs(tupleShape(refTuple!))}, tokens ${showJs(tupleShape(tokTuple))}: ${describeSample(s)}`,
          );
        }
      }
      let f = refFiles.get(refTuple!.key);
      if (f === undefined) {
        f = { ...(await open('reference')), tuple: refTuple!, samples: [], rows: [] };
        refFiles.set(refTuple!.key, f);
      }
      f.writer.append(row!);
      f.samples.push(s);
      f.rows.push([...row!]);
    }
    if (rows.rows >= drainAt || (rows.crowded && r.chance(0.5))) await drain();
  }
  await drain();

  const close = async (side: string, key: string, writer: ParquetFileWriter): Promise<DataFile | null> => {
    try {
      return await writer.close();
    } catch (e) {
      problems.push(`${c.name}: the ${side} file of partition ${showJs(key)} does not close: ${(e as Error).message}`);
      return null;
    }
  };
  const refData = new Map<string, DataFile | null>();
  const tokData = new Map<string, DataFile | null>();
  for (const [key, f] of refFiles) refData.set(key, await close('reference', key, f.writer));
  for (const [key, f] of tokFiles) tokData.set(key, await close('token', key, f.writer));
  report.partitions = new Set([...refFiles.keys(), ...tokFiles.keys()]).size;

  const readable = (files: Map<string, { path: string }>, data: Map<string, DataFile | null>) =>
    [...files].flatMap(([key, f]) => (data.get(key) ? [f.path] : []));
  const refRead = await readFiles(conn, readable(refFiles, refData));
  const tokRead = await readFiles(conn, readable(tokFiles, tokData));
  const offsets = (xs: readonly Sample[]) =>
    xs
      .slice(0, 8)
      .map((x) => x.rec.offset)
      .join(', ') + (xs.length > 8 ? ', ...' : '');

  for (const [key, f] of refFiles)
    if (!tokFiles.has(key))
      problems.push(`${c.name}: partition ${showJs(key)}: ${f.rows.length} reference rows (offsets ${offsets(f.samples)}), no token rows`);
  for (const [key, f] of tokFiles) {
    const ref = refFiles.get(key);
    if (ref === undefined) {
      problems.push(
        `${c.name}: partition ${showJs(key)}: ${f.rows} token rows (offsets ${offsets(tokSamples.get(key) ?? [])}), no reference rows`,
      );
      continue;
    }
    for (const tuple of f.tuples) {
      try {
        assert.deepStrictEqual(tupleShape(tuple), tupleShape(ref.tuple));
      } catch {
        problems.push(
          `${c.name}: partition ${showJs(key)}: a drain's tuple ${showJs(tupleShape(tuple))}, the reference's ${showJs(tupleShape(ref.tuple))}`,
        );
      }
    }
    const expected = tokSamples.get(key) ?? [];
    if (expected.length !== ref.samples.length || expected.some((s, i) => s !== ref.samples[i])) {
      problems.push(
        `${c.name}: partition ${showJs(key)}: TokenRows put records at offsets ${offsets(expected)} there, the reference ${offsets(ref.samples)}`,
      );
      continue;
    }
    const refFile = refData.get(key);
    const tokFile = tokData.get(key);
    if (!refFile || !tokFile) continue;
    const want = refRead.get(ref.path)!;
    const got = tokRead.get(f.path)!;
    if (got.length !== want.length) {
      problems.push(`${c.name}: partition ${showJs(key)}: the token file holds ${got.length} rows, the reference file ${want.length}`);
      continue;
    }
    let same = true;
    for (let i = 0; i < got.length; i++) {
      try {
        assert.deepStrictEqual(got[i], want[i]);
      } catch {
        same = false;
        const diff = columns.flatMap((col, j) =>
          Object.is(got[i][j], want[i][j])
            ? []
            : [`${col.name}: reference ${showJs(want[i][j])} (row value ${showJs(ref.rows[i][j])}), tokens ${showJs(got[i][j])}`],
        );
        problems.push(
          `${c.name}: partition ${showJs(key)}, row ${i} differs: ${diff.join('; ')}; record ${describeSample(ref.samples[i])}`,
        );
      }
    }
    if (!same) continue;
    try {
      assert.equal(tokFile.recordCount, refFile.recordCount);
      assert.deepEqual(statsOf(tokFile), statsOf(refFile));
    } catch {
      problems.push(
        `${c.name}: partition ${showJs(key)}: column stats differ: reference ${showJs(statsOf(refFile))}, tokens ${showJs(statsOf(tokFile))}`,
      );
    }
  }
  return report;
}

/** Which record of a chunk DuckDB would not take: each on its own through appendTokens. */
async function findCulprit(
  c: Case,
  scanner: TokenScanner,
  samples: Sample[],
  columns: ReturnType<typeof writerColumns>,
  dir: string,
  problems: string[],
): Promise<void> {
  let found = 0;
  for (const s of samples) {
    const one = new TokenChunk(columns.length);
    if (!scanner.take(rangesOf(s), one)) continue;
    const w = await ParquetFileWriter.open({ path: join(dir, 'probe.parquet'), columns });
    try {
      await w.appendTokens(one);
    } catch (e) {
      problems.push(`${c.name}: appendTokens fails on ${describeSample(s)}: ${(e as Error).message}`);
      if (++found >= 10) break;
    } finally {
      await w.abort();
    }
  }
}

// ---------------------------------------------------------------------------------------------

describe('token scanner against the reference path: a corpus of messy records, identical rows and refusals', () => {
  let dir: string;
  let instance: DuckDBInstance;
  let conn: DuckDBConnection;
  const totals = { records: 0 };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'sluice-token-scan-'));
    instance = await DuckDBInstance.create(':memory:');
    conn = await instance.connect();
  });
  after(async () => {
    conn?.closeSync();
    instance?.closeSync();
    await rm(dir, { recursive: true, force: true });
  });

  for (const c of CASES) {
    it(c.name, async (t) => {
      const report = await run(c, dir, conn);
      totals.records += report.records;
      t.diagnostic(
        `${c.name}: ${report.records} records ${report.taken} taken, ${report.declined} declined; ` +
          `clean ${report.cleanTaken}/${report.clean} taken; messy ${report.messyTaken} taken, ${report.messyDeclined} declined`,
      );
      assert.equal(report.problems.length, 0, `${report.problems.length} problems:\n${report.problems.slice(0, 40).join('\n')}`);
      assert.ok(report.clean >= c.generated / 4, 'the corpus has clean records');
      assert.equal(report.cleanTaken, report.clean, 'every clean record is taken');
      assert.ok(report.messyDeclined > 0, 'some messy records are declined');
      assert.ok(report.messyTaken > 0, 'some messy records are taken (whitespace, nulls, missing optional fields, ...)');
      if (c.name === 'JSON level 1') assert.ok(report.records >= 10_000, 'at least 10k records through the level-1 plan');
    });
  }

  for (const c of PARTITIONED) {
    it(`partitioned: ${c.name}`, async (t) => {
      const report = await runPartitioned(c, dir, conn);
      totals.records += report.records;
      t.diagnostic(
        `${c.name}: ${report.records} records ${report.taken} taken, ${report.declined} declined, ${report.partitions} partitions; ` +
          `clean ${report.cleanTaken}/${report.clean} taken; messy ${report.messyTaken} taken, ${report.messyDeclined} declined; ` +
          `${report.drains} drains, ${report.crowdedDrains} crowded, at most ${report.widestDrain} partitions in one`,
      );
      assert.equal(report.problems.length, 0, `${report.problems.length} problems:\n${report.problems.slice(0, 40).join('\n')}`);
      assert.ok(report.clean >= c.generated / 4, 'the corpus has clean records');
      assert.equal(report.cleanTaken, report.clean, 'every clean record is taken');
      assert.ok(report.messyDeclined > 0, 'some messy records are declined');
      assert.ok(report.messyTaken > 0, 'some messy records are taken');
      assert.ok(report.partitions > 1, 'the records fall into several partitions');
      if (c.crowd) {
        assert.ok(report.widestDrain > 64, `a drain hands over more than 64 partitions (at most ${report.widestDrain})`);
        assert.ok(report.crowdedDrains > 0, 'TokenRows is crowded before some drain');
      }
    });
  }

  it('a key repeated with objects as its values: the row JSON.parse gives (the last member), or declined', async () => {
    const repeated = [
      '{"id":1,"user":{"id":"b"},"user":{"name":"c"}}',
      '{"id":1,"user":{"id":"b"},"user":{}}',
      '{"id":1,"user":{},"user":{"id":"b"}}',
      '{"id":1,"geo":{"lat":1.5,"n":2},"geo":{"lon":2.5}}',
    ];
    const nested = ['{"id":1,"a":{"b":{"c":"x"},"b":{"d":1}}}', '{"id":1,"a":{"b":{"c":"x"}},"a":{"x":0.5}}'];
    for (const [name, texts] of [
      ['JSON level 2 (wide)', repeated],
      ['JSON level 3', nested],
    ] as const) {
      const c = CASES.find((x) => x.name === name)!;
      const samples = () =>
        texts.map(
          (text, offset): Sample => ({ rec: kafkaRecord(c, new Rng(1), offset, Buffer.from(text)), clean: false, how: 'repeated key' }),
        );
      const report = await run(c, dir, conn, samples);
      assert.deepEqual(report.problems, []);
    }
  });

  it('keys read against the guess (the key that followed last time): only the same bytes and a quote are that key', async () => {
    const c = CASES.find((x) => x.name === 'JSON level 1')!;
    // Each record follows one that laid down the order id, day, name, größe.
    const texts: [string, boolean][] = [
      ['{"id":1,"day":0,"name":"x","größe":"g"}', true],
      ['{"id":2,"day":0,"names":"x"}', false],
      ['{"id":3,"day":0,"nam":"x"}', false],
      [String.raw`{"id":4,"day":0,"name\u0073":"x"}`, false],
      [String.raw`{"id":5,"day":0,"nam\u0065":"x"}`, false],
      ['{"id":6,"day":0,"name":"x","größe":"y"}', true],
      ['{"id":7,"day":0,"name":"x","gröe":"y"}', false],
      ['{"id":8,"day":0,"name ":"x"}', false],
      ['{"id":9,"day":0,"name":"x","größ', false],
      ['{"id":10,"day":0,"name', false],
      ['{"id":11,"day":0,"name":"x","größe":"z"}', true],
    ];
    const samples = () =>
      texts.map(
        ([text, clean], offset): Sample => ({ rec: kafkaRecord(c, new Rng(1), offset, Buffer.from(text)), clean, how: 'guessed key' }),
      );
    const report = await run(c, dir, conn, samples);
    assert.deepEqual(report.problems, []);
    assert.equal(report.taken, 3, 'the records whose keys are the columns exactly are taken');
  });

  it('escaped strings: read as JSON.parse reads them, or declined', async () => {
    const c = CASES.find((x) => x.name === 'JSON level 1')!;
    const taken = [
      String.raw`{"id":1,"day":0,"name":"a\"b\\c\/d\b\f\n\r\t"}`,
      String.raw`{"id":2,"day":0,"name":"caf\u00e9 \u4E2D \ud83d\ude00 \u0003 \u007f"}`,
      String.raw`{"id":3,"day":0,"name":"\\u0041","a_b":"\u0022"}`,
    ];
    const declined = [
      String.raw`{"id":4,"day":0,"name":"\u0000"}`,
      String.raw`{"id":5,"day":0,"name":"\u0001 and \u0002"}`,
      String.raw`{"id":6,"day":0,"name":"\ud800"}`,
      String.raw`{"id":7,"day":0,"name":"\udc00\ud800"}`,
      String.raw`{"id":8,"day":0,"name":"\ud800\u0041"}`,
      String.raw`{"id":9,"day":0,"name":"\x41"}`,
      String.raw`{"id":10,"day":0,"name":"\U0041"}`,
      String.raw`{"id":11,"day":0,"name":"\u12G4"}`,
      String.raw`{"id":12,"day":0,"na\u006de":"x"}`,
      String.raw`{"id":13,"day":"\u0031970-01-01"}`,
    ];
    const samples = () =>
      [...taken, ...declined].map(
        (text, offset): Sample => ({
          rec: kafkaRecord(c, new Rng(1), offset, Buffer.from(text)),
          clean: offset < taken.length,
          how: 'escapes',
        }),
      );
    const report = await run(c, dir, conn, samples);
    assert.deepEqual(report.problems, []);
    assert.equal(report.taken, taken.length, 'the escaped strings JSON.parse reads plainly are taken');
  });

  it('strings: every byte a string scan must stop at, at each position and alignment, read as the reference reads it', async () => {
    const c = CASES.find((x) => x.name === 'JSON level 1')!;
    // What stringEnd() must stop at: the closing quote, escapes, raw control characters (JSON
    // refuses them), multi-byte characters, a byte that is not UTF-8, and DEL (plain ASCII).
    const specials: { text: Buffer; taken: boolean }[] = [
      { text: Buffer.from(String.raw`\"`), taken: true },
      { text: Buffer.from(String.raw`\\`), taken: true },
      { text: Buffer.from(String.raw`\n`), taken: true },
      { text: Buffer.from([0x09]), taken: false },
      { text: Buffer.from([0x01]), taken: false },
      { text: Buffer.from([0x1f]), taken: false },
      { text: Buffer.from('\u00e9'), taken: true },
      { text: Buffer.from('\u20ac'), taken: true },
      { text: Buffer.from('\u{1f600}'), taken: true },
      { text: Buffer.from([0xff]), taken: false },
      { text: Buffer.from([0x7f]), taken: true },
      { text: Buffer.from(' '), taken: true },
    ];
    const texts: { body: Buffer; taken: boolean }[] = [];
    for (const { text, taken } of specials) {
      for (let before = 0; before <= 9; before++) {
        for (const after of [0, 1, 2, 3, 7]) {
          const value = Buffer.concat([Buffer.from('a'.repeat(before)), text, Buffer.from('b'.repeat(after))]);
          // The record's own start moves too, so the string lies at every alignment in the run.
          const pad = ' '.repeat(before % 4);
          texts.push({ body: Buffer.concat([Buffer.from(`${pad}{"id":1,"day":0,"name":"`), value, Buffer.from('"}')]), taken });
        }
      }
    }
    const samples = () =>
      texts.map(
        ({ body, taken }, offset): Sample => ({
          rec: kafkaRecord(c, new Rng(1), offset, body),
          clean: taken,
          how: 'special byte in a string',
        }),
      );
    const report = await run(c, dir, conn, samples);
    assert.deepEqual(report.problems, []);
    assert.equal(report.taken, texts.filter((t) => t.taken).length, 'the strings JSON.parse reads plainly are taken');
  });

  it('the corpus holds more than 10k records in all', () => {
    assert.ok(totals.records >= 10_000, `${totals.records} records`);
  });

  it('plans the fast path does not read have no scanner', () => {
    const plain = schema(field(1, 'id', 'long'), field(2, 'name', 'string'));
    const keyed = { ...plain, identifierFieldIds: [1] };
    const json = (overrides: Partial<MappingSpec>) => mapping({ format: MessageFormat.MESSAGE_FORMAT_JSON, ...overrides });
    const none: [string, Parameters<typeof compilePlan>[0]][] = [
      ['a decimal column', { schema: schema(field(1, 'id', 'long'), field(2, 'price', 'decimal(10,2)')), mapping: json({}) }],
      ['a uuid column', { schema: schema(field(1, 'id', 'uuid')), mapping: json({}) }],
      ['a binary column', { schema: schema(field(1, 'id', 'binary')), mapping: json({}) }],
      ['a time column', { schema: schema(field(1, 'id', 'time')), mapping: json({}) }],
      ['a float column', { schema: schema(field(1, 'id', 'float')), mapping: json({}) }],
      [
        'fixed columns',
        {
          schema: schema(field(1, 'topic', 'string'), field(2, 'partition', 'long'), field(3, 'offset', 'long'), field(4, 'id', 'long')),
          mapping: json({ includeFixedColumns: true }),
        },
      ],
      ['JSON paths', { schema: plain, mapping: json({ fields: [fieldMapping('id', 'a.id'), fieldMapping('name', 'b')] }) }],
      ['JSON at level 0', { schema: schema(field(1, '__value__', 'string')), mapping: json({ flattenLevel: 0 }) }],
      ['TEXT', { schema: schema(field(1, 'value', 'string')), mapping: mapping({ format: MessageFormat.MESSAGE_FORMAT_TEXT }) }],
      ['a change stream', { schema: keyed, mapping: json({ changes: ChangeFormat.CHANGE_FORMAT_KEYED }) }],
    ];
    for (const [name, input] of none) assert.equal(compileTokenScanner(compilePlan(input)), null, name);
  });
});
