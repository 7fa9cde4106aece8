/**
 * Whether a job may write into a table that already exists (`table.ifExists: use`): each
 * column the spec declares is in the table with the same type, and each column the mapping
 * fills (the fixed columns, the partition column, explicit field mappings) is there. Found at
 * `job create`, a mismatch is one line naming the column and both types, instead of a job
 * that cannot run.
 */
import type { Field, MappingSpec } from '#shared/gen/sluice/v1/types.js';
import { primitiveField, typeText } from './iceberg-types.js';

/** Seed 002's fixed columns, filled with `mapping.includeFixedColumns`. */
export const FIXED_COLUMNS: readonly Field[] = [
  primitiveField('topic', 'string', false, 'Kafka topic, filled by Sluice'),
  primitiveField('partition', 'long', false, 'Kafka partition, filled by Sluice'),
  primitiveField('offset', 'long', false, 'Kafka offset, filled by Sluice'),
];

const sameType = (a: string, b: string) => a.replace(/\s/g, '') === b.replace(/\s/g, '');

export interface WrittenColumns {
  /** The spec's declared columns (with the partition column), when it declares any. */
  columns?: readonly Field[];
  partitionColumn?: string;
}

/** The reason the job cannot write `table` (its name and columns), or undefined when it can. */
export function tableIncompatibility(
  table: string,
  tableColumns: readonly Field[],
  spec: WrittenColumns,
  mapping: Pick<MappingSpec, 'includeFixedColumns' | 'fields'>,
): string | undefined {
  const types = new Map(tableColumns.map((f) => [f.name, typeText(f.type)]));
  for (const c of spec.columns ?? []) {
    const have = types.get(c.name);
    const want = typeText(c.type);
    if (have === undefined) return `table ${table} has no column "${c.name}", which the spec declares ${want}`;
    if (!sameType(have, want)) return `column "${c.name}" is ${have} in table ${table}, but the spec declares it ${want}`;
  }
  if (mapping.includeFixedColumns) {
    const missing = FIXED_COLUMNS.filter((f) => !types.has(f.name)).map((f) => f.name);
    if (missing.length > 0)
      return `mapping.includeFixedColumns fills columns topic, partition and offset, but table ${table} has no ${missing.join(', ')}`;
  }
  if (spec.partitionColumn && !types.has(spec.partitionColumn))
    return `table.partitionBy fills column "${spec.partitionColumn}", which table ${table} does not have`;
  for (const f of mapping.fields ?? []) {
    const have = types.get(f.column);
    if (have === undefined) return `mapping.fields maps ${f.path || f.column} to column "${f.column}", which table ${table} does not have`;
    if (f.type && !sameType(have, f.type))
      return `column "${f.column}" is ${have} in table ${table}, but mapping.fields declares it ${f.type}`;
  }
  return undefined;
}

/** The columns to create: the fixed ones first (seed 002's layout) when the mapping fills them and the list lacks them. */
export function withFixedColumns(columns: readonly Field[], includeFixedColumns: boolean): Field[] {
  if (!includeFixedColumns) return [...columns];
  const missing = FIXED_COLUMNS.filter((f) => !columns.some((c) => c.name === f.name));
  return [...missing, ...columns];
}
