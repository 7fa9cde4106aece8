/**
 * JSON flattening by level (seed 000). Level 1 gives the top-level keys; each further
 * level expands objects one step deeper. Names join the path with `_`, and a `.` inside a
 * key also becomes `_`. Arrays and objects below the last level stay whole (stored as
 * JSON text when the column is a string). Level 0 is the whole message as `__value__`.
 */

export const MAX_FLATTEN_LEVEL = 4;

/** Destination name of a key path: `device.os` → `device_os`, key `a.b` → `a_b`. */
export function columnName(prefix: string, key: string): string {
  const k = key.includes('.') ? key.replaceAll('.', '_') : key;
  return prefix === '' ? k : `${prefix}_${k}`;
}

export interface FlatEntry {
  name: string;
  /**
   * The source path, dot-joined (`device.os.test`), as seed 000's "JSON field" column shows;
   * a key with a dot in it is quoted (`"a.b"`), so it differs from the nested path `a.b`.
   */
  path: string;
  value: unknown;
}

/** One key's step in a field's path: quoted when it holds a dot, so `"a.b"` differs from nested `a.b`. */
export const pathStep = (key: string): string => (key.includes('.') ? JSON.stringify(key) : key);

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

/**
 * Calls `emit` for each flattened field in document order. No array is built, so the
 * hot path (level 1) allocates nothing beyond what JSON.parse did.
 */
export function flattenInto(
  obj: Record<string, unknown>,
  level: number,
  emit: (name: string, value: unknown, path: string) => void,
  prefix = '',
  pathPrefix = '',
): void {
  for (const key in obj) {
    const value = obj[key];
    const dotted = key.includes('.');
    const name = prefix === '' && !dotted ? key : columnName(prefix, key);
    const step = dotted ? pathStep(key) : key;
    const path = pathPrefix === '' ? step : `${pathPrefix}.${step}`;
    if (level > 1 && isObject(value)) flattenInto(value, level - 1, emit, name, path);
    else emit(name, value, path);
  }
}

/** The flattened fields of one JSON value as a list (for inference and previews). */
export function flatten(value: unknown, level: number): FlatEntry[] {
  if (level <= 0 || !isObject(value)) return [{ name: '__value__', path: '__value__', value }];
  const out: FlatEntry[] = [];
  flattenInto(value, level, (name, v, path) => out.push({ name, path, value: v }));
  return out;
}
