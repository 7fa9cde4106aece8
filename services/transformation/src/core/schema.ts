/**
 * The slice of an Iceberg schema the core works on: top-level columns with primitive
 * types. Nested struct/list/map columns are refused with advice, because rows keep nested
 * JSON as text: declare such a column `string` to store the JSON.
 */
import type { Field, Schema } from '#shared/gen/sluice/v1/types.js';
import { parsePrimitive, type PrimitiveType, UnknownTypeError } from '#shared/iceberg/single-value.js';
import { SpecError } from './errors.js';

export interface Column {
  index: number;
  fieldId: number;
  name: string;
  required: boolean;
  type: PrimitiveType;
}

export function columnsOf(schema: Schema): Column[] {
  if (schema.fields.length === 0) throw new SpecError('the table schema has no columns');
  const seen = new Set<string>();
  return schema.fields.map((f, index) => {
    if (seen.has(f.name)) throw new SpecError(`the table schema has two columns named "${f.name}"`, f.name);
    seen.add(f.name);
    return { index, fieldId: f.id, name: f.name, required: f.required, type: primitiveOf(f) };
  });
}

export function primitiveOf(f: Field): PrimitiveType {
  const kind = f.type?.kind;
  if (kind === undefined) throw new SpecError(`column "${f.name}" has no type`, f.name);
  if (kind.$case !== 'primitive') {
    throw new SpecError(
      `column "${f.name}" is a ${kind.$case}; nested columns are not written yet, declare it string to keep the JSON text`,
      f.name,
    );
  }
  try {
    return parsePrimitive(kind.value);
  } catch (e) {
    if (e instanceof UnknownTypeError) throw new SpecError(`column "${f.name}": ${e.message}`, f.name);
    throw e;
  }
}
