/**
 * Iceberg schemas: validation, fresh field-id assignment, lookup by id and dotted path, and
 * conversion between the proto `Schema` (sluice.v1) and the spec's JSON form.
 */
import type { Field, IcebergType, Schema } from '../gen/sluice/v1/types.js';
import { formatPrimitive, parsePrimitive, type PrimitiveType } from './single-value.js';
import { invalid } from './errors.js';
import type { IcebergTypeJson, NestedField, SchemaJson, StructTypeJson } from './types.js';

export function isPrimitive(type: IcebergTypeJson): type is string {
  return typeof type === 'string';
}

/** Canonical spelling of a primitive type; unknown types are refused, naming the field. */
export function canonicalPrimitive(type: string, field: string): string {
  try {
    return formatPrimitive(parsePrimitive(type));
  } catch {
    throw invalid(
      `unknown type "${type}" for ${field} (expected boolean, int, long, float, double, decimal(P,S), date, time, timestamp, timestamptz, string, uuid, fixed[L] or binary)`,
      field,
    );
  }
}

export function primitiveOf(type: IcebergTypeJson): PrimitiveType | undefined {
  return typeof type === 'string' ? parsePrimitive(type) : undefined;
}

// ---------------------------------------------------------------------------------------
// proto <-> JSON

export function typeFromProto(type: IcebergType | undefined, field: string): IcebergTypeJson {
  const kind = type?.kind;
  if (!kind) throw invalid(`${field} has no type`, field);
  switch (kind.$case) {
    case 'primitive':
      return canonicalPrimitive(kind.value, field);
    case 'struct':
      return { type: 'struct', fields: fieldsFromProto(kind.value.fields, field) };
    case 'list':
      return {
        type: 'list',
        'element-id': kind.value.elementId,
        'element-required': kind.value.elementRequired,
        element: typeFromProto(kind.value.element, `${field}.element`),
      };
    case 'map':
      return {
        type: 'map',
        'key-id': kind.value.keyId,
        key: typeFromProto(kind.value.key, `${field}.key`),
        'value-id': kind.value.valueId,
        'value-required': kind.value.valueRequired,
        value: typeFromProto(kind.value.value, `${field}.value`),
      };
  }
}

function fieldsFromProto(fields: Field[], parent: string): NestedField[] {
  return fields.map((f) => {
    const path = parent ? `${parent}.${f.name}` : f.name;
    const out: NestedField = { id: f.id, name: f.name, required: f.required, type: typeFromProto(f.type, path) };
    if (f.doc) out.doc = f.doc;
    return out;
  });
}

/** Proto schema to Iceberg JSON, keeping whatever ids it carries (0 = unassigned). */
export function schemaFromProto(schema: Schema, schemaId = schema.schemaId): SchemaJson {
  const out: SchemaJson = { type: 'struct', 'schema-id': schemaId, fields: fieldsFromProto(schema.fields, '') };
  if (schema.identifierFieldIds.length > 0) out['identifier-field-ids'] = [...schema.identifierFieldIds];
  return out;
}

export function typeToProto(type: IcebergTypeJson): IcebergType {
  if (typeof type === 'string') return { kind: { $case: 'primitive', value: type } };
  switch (type.type) {
    case 'struct':
      return { kind: { $case: 'struct', value: { fields: type.fields.map(fieldToProto) } } };
    case 'list':
      return {
        kind: {
          $case: 'list',
          value: { elementId: type['element-id'], elementRequired: type['element-required'], element: typeToProto(type.element) },
        },
      };
    case 'map':
      return {
        kind: {
          $case: 'map',
          value: {
            keyId: type['key-id'],
            key: typeToProto(type.key),
            valueId: type['value-id'],
            valueRequired: type['value-required'],
            value: typeToProto(type.value),
          },
        },
      };
  }
}

export function fieldToProto(f: NestedField): Field {
  return { id: f.id, name: f.name, required: f.required, type: typeToProto(f.type), doc: f.doc ?? '' };
}

export function schemaToProto(schema: SchemaJson): Schema {
  return {
    schemaId: schema['schema-id'],
    fields: schema.fields.map(fieldToProto),
    identifierFieldIds: [...(schema['identifier-field-ids'] ?? [])],
  };
}

// ---------------------------------------------------------------------------------------
// ids

/**
 * Gives every field, list element and map key/value a new id, starting after `lastId`.
 * Order follows the Java implementation: all fields of a struct first, then their nested
 * types, so a flat schema gets ids 1..n in column order.
 */
export function assignFreshIds<T extends StructTypeJson>(struct: T, lastId: number): { result: T; lastId: number } {
  let next = lastId;
  const id = () => ++next;
  const visitType = (type: IcebergTypeJson): IcebergTypeJson => {
    if (typeof type === 'string') return type;
    if (type.type === 'struct') return visitStruct(type);
    if (type.type === 'list') {
      const elementId = id();
      return { ...type, 'element-id': elementId, element: visitType(type.element) };
    }
    const keyId = id();
    const valueId = id();
    return { ...type, 'key-id': keyId, 'value-id': valueId, key: visitType(type.key), value: visitType(type.value) };
  };
  const visitStruct = <S extends StructTypeJson>(s: S): S => {
    const ids = s.fields.map(() => id());
    return { ...s, fields: s.fields.map((f, i) => ({ ...f, id: ids[i], type: visitType(f.type) })) };
  };
  const result = visitStruct(struct);
  return { result, lastId: next };
}

/** Every id used in a type (fields, elements, keys, values). */
export function collectIds(type: IcebergTypeJson, out: number[] = []): number[] {
  if (typeof type === 'string') return out;
  if (type.type === 'struct') {
    for (const f of type.fields) {
      out.push(f.id);
      collectIds(f.type, out);
    }
  } else if (type.type === 'list') {
    out.push(type['element-id']);
    collectIds(type.element, out);
  } else {
    out.push(type['key-id'], type['value-id']);
    collectIds(type.key, out);
    collectIds(type.value, out);
  }
  return out;
}

export function maxFieldId(type: IcebergTypeJson): number {
  return collectIds(type).reduce((m, id) => Math.max(m, id), 0);
}

// ---------------------------------------------------------------------------------------
// lookup

export interface FieldLocation {
  field: NestedField;
  /** Dotted path from the root (`address.city`, `tags.element`, `attrs.value.score`). */
  path: string;
  /** True when the field sits inside a list or map (not usable as a partition source). */
  repeated: boolean;
}

/** Index of every struct field by id; list elements and map entries are walked through. */
export function indexFields(struct: StructTypeJson): Map<number, FieldLocation> {
  const index = new Map<number, FieldLocation>();
  const walk = (type: IcebergTypeJson, prefix: string, repeated: boolean) => {
    if (typeof type === 'string') return;
    if (type.type === 'struct') {
      for (const f of type.fields) {
        const path = prefix ? `${prefix}.${f.name}` : f.name;
        index.set(f.id, { field: f, path, repeated });
        walk(f.type, path, repeated);
      }
    } else if (type.type === 'list') walk(type.element, `${prefix}.element`, true);
    else {
      walk(type.key, `${prefix}.key`, true);
      walk(type.value, `${prefix}.value`, true);
    }
  };
  walk(struct, '', false);
  return index;
}

/** Finds a struct field by dotted path; case-sensitive, like Iceberg's default. */
export function findField(struct: StructTypeJson, path: string): FieldLocation | undefined {
  for (const loc of indexFields(struct).values()) if (loc.path === path) return loc;
  return undefined;
}

// ---------------------------------------------------------------------------------------
// validation

/**
 * Structural checks every schema must pass: names non-empty and unique within their
 * struct, no `.` in names (dotted paths must stay unambiguous), ids positive and unique
 * (when `requireIds`), identifier fields existing, required and primitive.
 */
export function validateSchema(schema: SchemaJson, requireIds = true): void {
  const seen = new Set<number>();
  const checkId = (id: number, where: string) => {
    if (!requireIds) return;
    if (!Number.isInteger(id) || id <= 0) throw invalid(`${where} has invalid id ${id}`, where);
    if (seen.has(id)) throw invalid(`${where} reuses id ${id}`, where);
    seen.add(id);
  };
  const walk = (type: IcebergTypeJson, prefix: string) => {
    if (typeof type === 'string') return;
    if (type.type === 'struct') {
      const names = new Set<string>();
      for (const f of type.fields) {
        const path = prefix ? `${prefix}.${f.name}` : f.name;
        if (!f.name || f.name.includes('.'))
          throw invalid(`field name ${JSON.stringify(f.name)} must be non-empty and contain no '.'`, path || '<root>');
        if (names.has(f.name)) throw invalid(`duplicate field name "${f.name}"`, path);
        names.add(f.name);
        checkId(f.id, path);
        walk(f.type, path);
      }
    } else if (type.type === 'list') {
      checkId(type['element-id'], `${prefix}.element`);
      walk(type.element, `${prefix}.element`);
    } else {
      checkId(type['key-id'], `${prefix}.key`);
      checkId(type['value-id'], `${prefix}.value`);
      walk(type.key, `${prefix}.key`);
      walk(type.value, `${prefix}.value`);
    }
  };
  if (schema.fields.length === 0) throw invalid('schema has no fields', 'schema.fields');
  walk(schema, '');
  const index = indexFields(schema);
  for (const id of schema['identifier-field-ids'] ?? []) {
    const loc = index.get(id);
    if (!loc) throw invalid(`identifier field id ${id} is not in the schema`, 'schema.identifier_field_ids');
    if (!loc.field.required || typeof loc.field.type !== 'string' || loc.repeated) {
      throw invalid(`identifier field ${loc.path} must be a required primitive outside lists and maps`, loc.path);
    }
    // As Iceberg's own check: equality on floating point values is no way to find a row.
    if (loc.field.type === 'float' || loc.field.type === 'double') {
      throw invalid(`identifier field ${loc.path} is ${loc.field.type}: an identifier field may not be float or double`, loc.path);
    }
  }
}
