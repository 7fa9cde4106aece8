/**
 * Avro schemas as JSON values, with the Iceberg extensions (`field-id` on record fields,
 * `element-id` on arrays, `key-id`/`value-id` on maps and on the key/value records of
 * int-keyed maps). See https://avro.apache.org/docs/1.11.1/specification/.
 */

export type AvroPrimitiveName = 'null' | 'boolean' | 'int' | 'long' | 'float' | 'double' | 'bytes' | 'string';

export interface AvroField {
  name: string;
  type: AvroSchema;
  doc?: string;
  default?: unknown;
  'field-id'?: number;
}

export interface AvroRecord {
  type: 'record';
  name: string;
  namespace?: string;
  fields: AvroField[];
}

export interface AvroArray {
  type: 'array';
  items: AvroSchema;
  'element-id'?: number;
  /** `map` marks Iceberg's array-of-key/value-records encoding of a map with non-string keys. */
  logicalType?: string;
}

export interface AvroMap {
  type: 'map';
  values: AvroSchema;
  'key-id'?: number;
  'value-id'?: number;
}

export interface AvroFixed {
  type: 'fixed';
  name: string;
  size: number;
  logicalType?: string;
  precision?: number;
  scale?: number;
}

export interface AvroEnum {
  type: 'enum';
  name: string;
  symbols: string[];
}

/** A primitive with annotations, e.g. `{ "type": "long", "logicalType": "timestamp-micros" }`. */
export interface AvroAnnotatedPrimitive {
  type: AvroPrimitiveName;
  logicalType?: string;
  [key: string]: unknown;
}

export type AvroUnion = AvroSchema[];

export type AvroSchema =
  | AvroPrimitiveName
  | string // reference to a named type defined earlier
  | AvroUnion
  | AvroRecord
  | AvroArray
  | AvroMap
  | AvroFixed
  | AvroEnum
  | AvroAnnotatedPrimitive;

const AVRO_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

export function isValidAvroName(name: string): boolean {
  return AVRO_NAME.test(name);
}

/**
 * Makes any Iceberg field name a legal Avro name the way the Java implementation does
 * (`a.b` → `a_x2Eb`, `1st` → `_1st`), so files we write read the same everywhere.
 */
export function avroSafeName(name: string): string {
  if (isValidAvroName(name)) return name;
  let out = '';
  for (let i = 0; i < name.length; i++) {
    const ch = name[i];
    const ok = /[A-Za-z_]/.test(ch) || (i > 0 && /[0-9]/.test(ch));
    if (ok) out += ch;
    else if (i === 0 && /[0-9]/.test(ch)) out += `_${ch}`;
    else out += `_x${ch.charCodeAt(0).toString(16).toUpperCase()}`;
  }
  return out;
}

/** `["null", T]`: the shape of every optional Iceberg field. */
export function optional(type: AvroSchema): AvroUnion {
  return ['null', type];
}
