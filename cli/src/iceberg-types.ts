import type { Field, IcebergType, Schema } from '#shared/gen/sluice/v1/types.js';

/** Iceberg type as text: `long`, `decimal(10,2)`, `struct<a: int>`, `list<string>`, `map<string, long>`. */
export function typeText(type: IcebergType | undefined): string {
  const kind = type?.kind;
  if (!kind) return '?';
  switch (kind.$case) {
    case 'primitive':
      return kind.value;
    case 'struct':
      return `struct<${kind.value.fields.map((f) => `${f.name}: ${typeText(f.type)}`).join(', ')}>`;
    case 'list':
      return `list<${typeText(kind.value.element)}>`;
    case 'map':
      return `map<${typeText(kind.value.key)}, ${typeText(kind.value.value)}>`;
  }
}

/** An Iceberg primitive type as written in specs and `--columns`. */
export const PRIMITIVE_TYPE =
  /^(boolean|int|long|float|double|date|time|timestamp|timestamptz|string|uuid|binary|decimal\(\d+,\s*\d+\)|fixed\[\d+\])$/;

export const primitiveField = (name: string, type: string, required = false, doc = ''): Field => ({
  id: 0,
  name,
  required,
  type: { kind: { $case: 'primitive', value: type } },
  doc,
});

/** `id long required, name string` → fields. */
export function parseColumnList(text: string): Field[] {
  return text
    .split(',')
    .map((part) => part.trim())
    .filter((part) => part !== '')
    .map((part) => {
      const words = part.split(/\s+/);
      const [name, type, ...rest] = words;
      if (!name || !type) throw new Error(`column "${part}" needs a name and a type, like "id long"`);
      if (!PRIMITIVE_TYPE.test(type)) throw new Error(`column "${name}": ${JSON.stringify(type)} is not an Iceberg primitive type`);
      const required = rest.join(' ').toLowerCase();
      if (required !== '' && required !== 'required' && required !== 'not null')
        throw new Error(`column "${part}": expected "required" after the type, got "${required}"`);
      return primitiveField(name, type, required !== '');
    });
}

export const schemaRows = (schema: Schema | undefined) =>
  (schema?.fields ?? []).map((f) => [f.id, f.name, typeText(f.type), f.required ? 'required' : 'optional', f.doc]);

/** Iceberg refuses these as identifier fields: equality on them is not reliable. */
const UNKEYABLE = new Set(['float', 'double']);

/**
 * A table's schema with its key (Iceberg `identifier-field-ids`): the key names top-level
 * columns, each required and primitive, not float or double. Columns get ids 1..n here so that
 * the key can name them; the catalog assigns the table's own ids. Throws naming the column.
 */
export function keyedSchema(fields: Field[], key: readonly string[]): Schema {
  const numbered = fields.map((f, i) => ({ ...f, id: i + 1 }));
  const identifierFieldIds = key.map((name) => {
    const f = numbered.find((c) => c.name === name);
    if (!f) throw new Error(`key column "${name}" is not a column of the table`);
    const type = f.type?.kind?.$case === 'primitive' ? f.type.kind.value : undefined;
    if (type === undefined) throw new Error(`key column "${name}" must be a primitive column, not ${typeText(f.type)}`);
    if (UNKEYABLE.has(type)) throw new Error(`key column "${name}" is ${type}: a key may not be float or double`);
    if (!f.required) throw new Error(`key column "${name}" must be required (a row without its key could not be matched)`);
    return f.id;
  });
  if (new Set(key).size !== key.length) throw new Error(`key names a column twice: ${key.join(', ')}`);
  return { schemaId: 0, fields: key.length > 0 ? numbered : fields, identifierFieldIds };
}

/** The key of a table as a list of its column names (empty when it has none). */
export function keyNames(schema: Schema | undefined): string[] {
  return (schema?.identifierFieldIds ?? []).map((id) => schema?.fields.find((f) => f.id === id)?.name ?? String(id));
}
