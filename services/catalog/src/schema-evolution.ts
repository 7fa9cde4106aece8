/**
 * Schema evolution rules, as pure functions over Iceberg JSON schemas. Allowed: add an
 * optional column (at the top level or in a struct), rename, widen int→long,
 * float→double, decimal(P,S)→decimal(P',S) with P'≥P, and make a required column optional.
 * Everything else would make existing data files unreadable or wrong, and is refused with
 * the reason. New field ids come after the table's last-column-id: ids are never reused.
 */
import type { SchemaChange } from '#shared/gen/sluice/v1/catalog.js';
import {
  IcebergError,
  assignFreshIds,
  canonicalPrimitive,
  typeFromProto,
  type IcebergTypeJson,
  type NestedField,
  type SchemaJson,
  type StructTypeJson,
} from '#shared/iceberg/index.js';
import { parsePrimitive } from '#shared/iceberg/single-value.js';

const refuse = (message: string, field: string) => new IcebergError('invalid', message, field);

/** Applies one struct edit at a dotted path, returning new objects along the way. */
function editStruct(struct: StructTypeJson, path: string[], fn: (s: StructTypeJson) => StructTypeJson, where: string): StructTypeJson {
  if (path.length === 0) return fn(struct);
  const [head, ...rest] = path;
  const i = struct.fields.findIndex((f) => f.name === head);
  if (i < 0) throw refuse(`column ${where} does not exist`, where);
  const child = struct.fields[i].type;
  if (typeof child === 'string' || child.type !== 'struct') throw refuse(`${where} is not a struct`, where);
  const fields = [...struct.fields];
  fields[i] = { ...fields[i], type: editStruct(child, rest, fn, where) };
  return { ...struct, fields };
}

/** Edits the field at a dotted path (the last segment names the field in its parent struct). */
function editField(schema: SchemaJson, path: string, fn: (f: NestedField) => NestedField): SchemaJson {
  if (!path) throw refuse('a column path is required', 'path');
  const parts = path.split('.');
  const name = parts.pop() as string;
  return editStruct(
    schema,
    parts,
    (s) => {
      const i = s.fields.findIndex((f) => f.name === name);
      if (i < 0) throw refuse(`column ${path} does not exist`, path);
      const fields = [...s.fields];
      fields[i] = fn(fields[i]);
      return { ...s, fields };
    },
    path,
  ) as SchemaJson;
}

/** Why a primitive type change is unsafe, or undefined when it is a permitted widening. */
export function typeChangeProblem(from: IcebergTypeJson, to: string): string | undefined {
  if (typeof from !== 'string') return 'only primitive columns can change type';
  if (from === to) return undefined;
  const a = parsePrimitive(from);
  const b = parsePrimitive(to);
  if (a.kind === 'int' && b.kind === 'long') return undefined;
  if (a.kind === 'float' && b.kind === 'double') return undefined;
  if (a.kind === 'decimal' && b.kind === 'decimal') {
    if (a.scale !== b.scale) return 'a decimal scale cannot change (stored unscaled values would be reinterpreted)';
    if (b.precision < a.precision) return 'a decimal precision can only grow';
    return undefined;
  }
  return `only int→long, float→double and wider decimal precision are safe; ${from}→${to} would misread existing data files`;
}

/**
 * Checks a writer's evolved schema (CommitTable's AddSchema, committed with the files written
 * with it) against the current one by the same rules: every current column stays, with its
 * id and name, changing type only by a permitted widening and required only to optional; new
 * columns are optional top-level primitives with unused names and ids after lastColumnId.
 */
export function checkEvolvedSchema(current: SchemaJson, proposed: SchemaJson, lastColumnId: number, where: string): void {
  const byId = new Map(proposed.fields.map((f) => [f.id, f]));
  for (const f of current.fields) {
    const p = byId.get(f.id);
    if (!p) throw refuse(`${where}: column ${f.name} (id ${f.id}) would be dropped`, where);
    if (p.name !== f.name) throw refuse(`${where}: column id ${f.id} is ${f.name}, not ${p.name}`, where);
    if (p.required && !f.required) throw refuse(`${where}: column ${f.name} cannot become required`, where);
    if (JSON.stringify(p.type) !== JSON.stringify(f.type)) {
      const problem = typeof p.type === 'string' ? typeChangeProblem(f.type, p.type) : 'only primitive columns can change type';
      if (problem) throw refuse(`${where}: cannot change ${f.name} to ${JSON.stringify(p.type)}: ${problem}`, where);
    }
  }
  const names = new Set(current.fields.map((f) => f.name));
  const currentIds = new Set(current.fields.map((f) => f.id));
  for (const p of proposed.fields) {
    if (currentIds.has(p.id)) continue;
    if (names.has(p.name)) throw refuse(`${where}: new column ${p.name} (id ${p.id}) has the name of an existing column`, where);
    names.add(p.name);
    if (p.id <= lastColumnId)
      throw refuse(`${where}: new column ${p.name} has id ${p.id}, not after the last column id ${lastColumnId}`, where);
    if (p.required) throw refuse(`${where}: cannot add required column ${p.name}: existing rows have no value for it`, where);
    if (typeof p.type !== 'string') throw refuse(`${where}: new column ${p.name} must be a primitive type`, where);
  }
}

export interface EvolutionResult {
  schema: Omit<SchemaJson, 'schema-id'>;
  lastColumnId: number;
}

export function applySchemaChanges(current: SchemaJson, changes: SchemaChange[], lastColumnId: number): EvolutionResult {
  let schema: SchemaJson = current;
  let lastId = lastColumnId;
  changes.forEach((change, index) => {
    const c = change.change;
    const where = `changes[${index}]`;
    if (!c) throw refuse(`${where} is empty`, where);
    switch (c.$case) {
      case 'addColumn': {
        const { parent, name, doc, required } = c.value;
        const path = parent ? `${parent}.${name}` : name;
        if (!name || name.includes('.'))
          throw refuse(`${where}: new column name ${JSON.stringify(name)} must be non-empty without '.'`, `${where}.name`);
        if (required) throw refuse(`${where}: cannot add required column ${path}: existing rows have no value for it`, `${where}.required`);
        const type = typeFromProto(c.value.type, path);
        // Fresh ids for the column and anything nested in it, after every id ever used.
        const { result, lastId: next } = assignFreshIds(
          { type: 'struct', fields: [{ id: 0, name, required: false, type, ...(doc ? { doc } : {}) }] },
          lastId,
        );
        lastId = next;
        schema = editStruct(
          schema,
          parent ? parent.split('.') : [],
          (s) => {
            if (s.fields.some((f) => f.name === name)) throw refuse(`${where}: column ${path} already exists`, `${where}.name`);
            return { ...s, fields: [...s.fields, result.fields[0]] };
          },
          parent,
        ) as SchemaJson;
        break;
      }
      case 'renameColumn': {
        const { path, newName } = c.value;
        if (!newName || newName.includes('.'))
          throw refuse(`${where}: new name ${JSON.stringify(newName)} must be non-empty without '.'`, `${where}.new_name`);
        const parentPath = path.split('.').slice(0, -1);
        editStruct(
          schema,
          parentPath,
          (s) => {
            if (s.fields.some((f) => f.name === newName))
              throw refuse(`${where}: cannot rename ${path}: a column named ${newName} already exists there`, `${where}.new_name`);
            return s;
          },
          path,
        );
        schema = editField(schema, path, (f) => ({ ...f, name: newName }));
        break;
      }
      case 'updateColumnType': {
        const { path } = c.value;
        const to = canonicalPrimitive(c.value.newType, `${where}.new_type`);
        schema = editField(schema, path, (f) => {
          const problem = typeChangeProblem(f.type, to);
          if (problem)
            throw refuse(
              `${where}: cannot change ${path} from ${typeof f.type === 'string' ? f.type : f.type.type} to ${to}: ${problem}`,
              `${where}.new_type`,
            );
          return { ...f, type: to };
        });
        break;
      }
      case 'makeColumnOptional': {
        const { path } = c.value;
        schema = editField(schema, path, (f) => {
          if ((current['identifier-field-ids'] ?? []).includes(f.id)) {
            throw refuse(`${where}: ${path} is an identifier field and must stay required`, `${where}.path`);
          }
          return { ...f, required: false };
        });
        break;
      }
    }
  });
  const { 'schema-id': _ignored, ...rest } = schema;
  return { schema: rest, lastColumnId: lastId };
}
