/**
 * Schema inference from sampled messages (InferSchema), and previews of what a mapping
 * makes of samples (PreviewMapping).
 *
 * Inference flattens each sample at the spec's level and widens conflicting types:
 * int → long → double, and anything mixed with a string (or booleans mixed with numbers)
 * becomes string; objects and arrays below the level are JSON text (string). A field
 * missing or null in any sample is optional.
 */
import { type Field, type KafkaRecord, type MappingSpec, MessageFormat, type Schema } from '#shared/gen/sluice/v1/types.js';
import type { PrimitiveType } from '#shared/iceberg/single-value.js';
import type { RowValue } from './coerce.js';
import { decodeText, parseJson } from './decode.js';
import { RecordError } from './errors.js';
import { flatten, MAX_FLATTEN_LEVEL } from './flatten.js';
import { partitionOf, type Plan, transformRecord } from './plan.js';
import type { RecordContext } from './row.js';
import { human } from './partition.js';
import { formatLocal } from '#shared/time.js';

type Inferred = 'int' | 'long' | 'double' | 'boolean' | 'string';

export interface InferredColumn {
  name: string;
  path: string;
  type: Inferred;
  required: boolean;
  sample: string;
}

export interface InferResult {
  schema: Schema;
  fields: InferredColumn[];
  warnings: string[];
}

const RANK: Record<Inferred, number> = { int: 0, long: 1, double: 2, boolean: 10, string: 20 };

export function widen(a: Inferred, b: Inferred): Inferred {
  if (a === b) return a;
  if (a === 'string' || b === 'string') return 'string';
  if (a === 'boolean' || b === 'boolean') return 'string';
  return RANK[a] > RANK[b] ? a : b;
}

export function typeOfValue(v: unknown): Inferred | null {
  switch (typeof v) {
    case 'boolean':
      return 'boolean';
    case 'number':
      if (!Number.isInteger(v)) return 'double';
      return v >= -2147483648 && v <= 2147483647 ? 'int' : 'long';
    case 'string':
      return 'string';
    case 'object':
      return v === null ? null : 'string';
    default:
      return 'string';
  }
}

export function inferSchema(
  samples: readonly KafkaRecord[],
  mapping: Pick<MappingSpec, 'format' | 'flattenLevel' | 'mode'>,
  maxBytes = 8 * 1024 * 1024,
): InferResult {
  const warnings: string[] = [];
  const level = Math.max(
    0,
    Math.min(MAX_FLATTEN_LEVEL, mapping.flattenLevel || (mapping.format === MessageFormat.MESSAGE_FORMAT_FLATTEN ? 1 : 0)),
  );
  const cols = new Map<string, { path: string; type: Inferred | null; seen: number; nulls: number; sample: string; warned: boolean }>();
  let parsed = 0;
  for (const rec of samples) {
    const bytes = mapping.mode === 'MESSAGE_MODE_KEY' ? rec.key : rec.value;
    let doc: unknown;
    try {
      if (!bytes) throw new RecordError('null_value', 'value is null');
      doc = parseJson(decodeText(bytes, 'value', maxBytes), 'value');
    } catch (e) {
      warnings.push(`offset ${rec.offset}: skipped, ${e instanceof Error ? e.message : String(e)}`);
      continue;
    }
    parsed++;
    for (const { name, path, value } of flatten(doc, level)) {
      let c = cols.get(name);
      if (!c) {
        c = { path, type: null, seen: 0, nulls: 0, sample: '', warned: false };
        cols.set(name, c);
      }
      c.seen++;
      const t = level === 0 ? 'string' : typeOfValue(value);
      if (t === null) {
        c.nulls++;
        continue;
      }
      if (c.type !== null && c.type !== t && widen(c.type, t) === 'string' && !c.warned) {
        c.warned = true;
        warnings.push(`field "${path}" is ${c.type} in one sample and ${t} in another; typed string`);
      }
      c.type = c.type === null ? t : widen(c.type, t);
      if (c.sample === '') c.sample = typeof value === 'string' ? value : JSON.stringify(value);
    }
  }
  if (parsed === 0 && samples.length > 0) warnings.push('no sample could be parsed as JSON; nothing inferred');
  const fields: InferredColumn[] = [];
  for (const [name, c] of cols) {
    if (c.type === null) warnings.push(`field "${c.path}" is null in every sample; typed string`);
    fields.push({ name, path: c.path, type: c.type ?? 'string', required: c.seen === parsed && c.nulls === 0, sample: c.sample });
  }
  const schemaFields: Field[] = fields.map((f, i) => ({
    id: i + 1,
    name: f.name,
    required: f.required,
    type: { kind: { $case: 'primitive', value: f.type } },
    doc: '',
  }));
  return { schema: { schemaId: 0, fields: schemaFields, identifierFieldIds: [] }, fields, warnings };
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
