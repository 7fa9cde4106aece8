/**
 * Table metadata (format version 2) as immutable values: create, then derive new versions
 * with pure functions (add a snapshot, remove snapshots, add a schema, set properties),
 * serialize to metadata.json and parse it back. Writing the file is the caller's business
 * (see `metadataFileLocation` for the naming).
 */
import { randomBytes, randomUUID } from 'node:crypto';
import type { PartitionSpec as ProtoPartitionSpec } from '../gen/sluice/v1/types.js';
import { conflict, corrupt, invalid } from './errors.js';
import { buildSpec } from './partition.js';
import { assignFreshIds, indexFields, maxFieldId, validateSchema } from './schema.js';
import type { SchemaJson, SnapshotJson, TableMetadata } from './types.js';

/** How many previous metadata files the metadata-log keeps (Iceberg's default). */
export const DEFAULT_PREVIOUS_VERSIONS_MAX = 100;
export const PREVIOUS_VERSIONS_MAX_PROPERTY = 'write.metadata.previous-versions-max';
export const MAIN_BRANCH = 'main';

/**
 * A new snapshot id: random, positive and below 2^53, so it survives JSON.parse and
 * JavaScript numbers everywhere (Java uses 63-bit ids; any positive long is valid).
 */
export function newSnapshotId(): number {
  const b = randomBytes(8);
  b[0] = 0;
  b[1] &= 0x1f; // 53 significant bits
  const id = Number(b.readBigUInt64BE(0));
  return id === 0 ? 1 : id;
}

export interface NewTableOptions {
  location: string;
  /** The user's schema; field ids are reassigned (Java assigns fresh ids on create too). */
  schema: SchemaJson;
  /** Spec request; `source_id`s refer to the ids in `schema` as given, names to its paths. */
  partitionSpec?: ProtoPartitionSpec;
  properties?: Record<string, string>;
  tableUuid?: string;
  nowMs?: number;
}

export function createTableMetadata(options: NewTableOptions): TableMetadata {
  validateSchema(options.schema, false);
  const { result: fresh, lastId } = assignFreshIds(options.schema, 0);
  // Identifier fields and spec source ids referred to the caller's ids; map them by path.
  const remap = remapIds(options.schema, fresh);
  const schema: SchemaJson = { ...fresh, 'schema-id': 0 };
  if (options.schema['identifier-field-ids']?.length) {
    schema['identifier-field-ids'] = options.schema['identifier-field-ids'].map((id) => {
      const mapped = remap.get(id);
      if (mapped === undefined) throw invalid(`identifier field id ${id} is not in the schema`, 'schema.identifier_field_ids');
      return mapped;
    });
  }
  validateSchema(schema);
  const specRequest = options.partitionSpec
    ? {
        ...options.partitionSpec,
        fields: options.partitionSpec.fields.map((f) => ({ ...f, sourceId: f.sourceName ? 0 : (remap.get(f.sourceId) ?? -1), fieldId: 0 })),
      }
    : undefined;
  const { spec, lastPartitionId } = buildSpec(specRequest, schema, 0, 999);
  const now = options.nowMs ?? Date.now();
  return {
    'format-version': 2,
    'table-uuid': options.tableUuid ?? randomUUID(),
    location: options.location.replace(/\/+$/, ''),
    'last-sequence-number': 0,
    'last-updated-ms': now,
    'last-column-id': lastId,
    schemas: [schema],
    'current-schema-id': 0,
    'partition-specs': [spec],
    'default-spec-id': 0,
    'last-partition-id': lastPartitionId,
    properties: { ...(options.properties ?? {}) },
    snapshots: [],
    'snapshot-log': [],
    'metadata-log': [],
    'sort-orders': [{ 'order-id': 0, fields: [] }],
    'default-sort-order-id': 0,
    refs: {},
  };
}

/** Old id → new id for two schemas of the same shape (matched by path). */
function remapIds(before: SchemaJson, after: SchemaJson): Map<number, number> {
  const byPath = new Map<string, number>();
  for (const loc of indexFields(after).values()) byPath.set(loc.path, loc.field.id);
  const out = new Map<number, number>();
  for (const loc of indexFields(before).values()) {
    const id = byPath.get(loc.path);
    if (id !== undefined && loc.field.id > 0) out.set(loc.field.id, id);
  }
  return out;
}

export function currentSchema(meta: TableMetadata): SchemaJson {
  const s = meta.schemas.find((x) => x['schema-id'] === meta['current-schema-id']);
  if (!s) throw corrupt(`current schema ${meta['current-schema-id']} is missing`, 'current-schema-id');
  return s;
}

export function defaultSpec(meta: TableMetadata) {
  const s = meta['partition-specs'].find((x) => x['spec-id'] === meta['default-spec-id']);
  if (!s) throw corrupt(`default partition spec ${meta['default-spec-id']} is missing`, 'default-spec-id');
  return s;
}

export function currentSnapshot(meta: TableMetadata): SnapshotJson | undefined {
  const id = meta['current-snapshot-id'];
  return id === undefined ? undefined : meta.snapshots.find((s) => s['snapshot-id'] === id);
}

export function snapshotById(meta: TableMetadata, id: number): SnapshotJson | undefined {
  return meta.snapshots.find((s) => s['snapshot-id'] === id);
}

/**
 * Appends a snapshot and makes it current on `main`. The snapshot must build on the current
 * one and take the next sequence number: anything else means the caller worked from stale
 * metadata and must rebase.
 */
export function addSnapshot(meta: TableMetadata, snapshot: SnapshotJson, nowMs = Date.now()): TableMetadata {
  const id = snapshot['snapshot-id'];
  if (!Number.isSafeInteger(id) || id <= 0) throw invalid(`snapshot id ${id} must be a positive integer below 2^53`, 'snapshot_id');
  if (meta.snapshots.some((s) => s['snapshot-id'] === id)) throw conflict(`snapshot id ${id} already exists`, 'snapshot_id');
  const expectedSeq = meta['last-sequence-number'] + 1;
  if (snapshot['sequence-number'] !== expectedSeq) {
    throw conflict(`sequence number ${snapshot['sequence-number']} is not the next one (${expectedSeq})`, 'sequence_number');
  }
  const parent = snapshot['parent-snapshot-id'];
  if (parent !== meta['current-snapshot-id']) {
    throw conflict(
      `snapshot ${id} has parent ${parent ?? 'none'} but the current snapshot is ${meta['current-snapshot-id'] ?? 'none'}`,
      'parent_snapshot_id',
    );
  }
  if (snapshot['schema-id'] !== undefined && !meta.schemas.some((s) => s['schema-id'] === snapshot['schema-id'])) {
    throw invalid(`snapshot ${id} refers to unknown schema ${snapshot['schema-id']}`, 'schema_id');
  }
  if (!snapshot['manifest-list']) throw invalid(`snapshot ${id} has no manifest list`, 'manifest_list');
  if (!snapshot.summary?.operation) throw invalid(`snapshot ${id} summary has no operation`, 'operation');
  const ts = snapshot['timestamp-ms'];
  // Absent rather than undefined, so the value equals what parseMetadata gives back.
  const stored: SnapshotJson = { ...snapshot };
  if (stored['parent-snapshot-id'] === undefined) delete stored['parent-snapshot-id'];
  if (stored['schema-id'] === undefined) delete stored['schema-id'];
  return {
    ...meta,
    'last-sequence-number': expectedSeq,
    'last-updated-ms': Math.max(nowMs, ts, meta['last-updated-ms']),
    'current-snapshot-id': id,
    snapshots: [...meta.snapshots, stored],
    'snapshot-log': [...meta['snapshot-log'], { 'snapshot-id': id, 'timestamp-ms': ts }],
    refs: { ...meta.refs, [MAIN_BRANCH]: { 'snapshot-id': id, type: 'branch' } },
  };
}

/**
 * Drops snapshots (expiry). A snapshot a branch or tag points at cannot be removed; ids that
 * are already gone are ignored so an interrupted expiry can simply be repeated.
 */
export function removeSnapshots(meta: TableMetadata, ids: Iterable<number>, nowMs = Date.now()): TableMetadata {
  const drop = new Set(ids);
  for (const [name, ref] of Object.entries(meta.refs)) {
    if (drop.has(ref['snapshot-id']))
      throw conflict(`snapshot ${ref['snapshot-id']} is referenced by ${ref.type} "${name}"`, 'snapshot_ids');
  }
  return {
    ...meta,
    'last-updated-ms': Math.max(nowMs, meta['last-updated-ms']),
    snapshots: meta.snapshots.filter((s) => !drop.has(s['snapshot-id'])),
    'snapshot-log': meta['snapshot-log'].filter((e) => !drop.has(e['snapshot-id'])),
  };
}

/**
 * Adds a schema version and makes it current. An identical existing schema is reused (as
 * Java does) rather than duplicated. `lastColumnId` only ever grows: ids are never reused.
 */
export function addSchema(meta: TableMetadata, schema: Omit<SchemaJson, 'schema-id'>, nowMs = Date.now()): TableMetadata {
  const candidate: SchemaJson = { ...schema, type: 'struct', 'schema-id': 0 };
  validateSchema(candidate);
  const lastColumnId = Math.max(meta['last-column-id'], maxFieldId(candidate));
  const same = meta.schemas.find((s) => sameStructure(s, candidate));
  if (same) {
    return {
      ...meta,
      'current-schema-id': same['schema-id'],
      'last-column-id': lastColumnId,
      'last-updated-ms': Math.max(nowMs, meta['last-updated-ms']),
    };
  }
  const schemaId = Math.max(...meta.schemas.map((s) => s['schema-id'])) + 1;
  return {
    ...meta,
    schemas: [...meta.schemas, { ...candidate, 'schema-id': schemaId }],
    'current-schema-id': schemaId,
    'last-column-id': lastColumnId,
    'last-updated-ms': Math.max(nowMs, meta['last-updated-ms']),
  };
}

function sameStructure(a: SchemaJson, b: SchemaJson): boolean {
  const strip = (s: SchemaJson) => JSON.stringify({ fields: s.fields, ids: s['identifier-field-ids'] ?? [] });
  return strip(a) === strip(b);
}

export function setProperties(
  meta: TableMetadata,
  updates: Record<string, string>,
  removals: string[] = [],
  nowMs = Date.now(),
): TableMetadata {
  for (const k of removals) {
    if (k in updates) throw invalid(`property "${k}" is both set and removed`, 'properties');
  }
  const properties = { ...meta.properties, ...updates };
  for (const k of removals) delete properties[k];
  return { ...meta, properties, 'last-updated-ms': Math.max(nowMs, meta['last-updated-ms']) };
}

// ---------------------------------------------------------------------------------------
// files

/**
 * `<location>/metadata/<NNNNN>-<uuid>.metadata.json`, the naming Java and PyIceberg use for
 * catalog-managed tables: the version orders files for humans, the uuid makes every write
 * a new file, so two racing writers can never overwrite each other.
 */
export function metadataFileLocation(tableLocation: string, version: number): string {
  return `${tableLocation.replace(/\/+$/, '')}/metadata/${String(version).padStart(5, '0')}-${randomUUID()}.metadata.json`;
}

/** The version number encoded in a metadata file name (`00003-...` or `v3.metadata.json`), else 0. */
export function metadataVersion(location: string | undefined): number {
  if (!location) return 0;
  const name = location.slice(location.lastIndexOf('/') + 1);
  const m = /^(\d+)-.*\.metadata\.json$/.exec(name) ?? /^v(\d+)\.metadata\.json$/.exec(name);
  return m ? Number(m[1]) : 0;
}

/**
 * Prepares the next metadata file: records the previous file in the metadata-log (trimmed
 * to `write.metadata.previous-versions-max`) and picks a fresh location for the new one.
 */
export function nextMetadataFile(meta: TableMetadata, previousLocation: string | undefined): { metadata: TableMetadata; location: string } {
  let log = meta['metadata-log'];
  if (previousLocation) {
    const max = Number(meta.properties[PREVIOUS_VERSIONS_MAX_PROPERTY] ?? DEFAULT_PREVIOUS_VERSIONS_MAX);
    const keep = Number.isInteger(max) && max >= 1 ? max : DEFAULT_PREVIOUS_VERSIONS_MAX;
    log = [...log, { 'metadata-file': previousLocation, 'timestamp-ms': meta['last-updated-ms'] }].slice(-keep);
  }
  return {
    metadata: { ...meta, 'metadata-log': log },
    location: metadataFileLocation(meta.location, metadataVersion(previousLocation) + 1),
  };
}

// ---------------------------------------------------------------------------------------
// JSON

/** metadata.json text. Key order follows the spec's table for readability. */
export function serializeMetadata(meta: TableMetadata): string {
  const out: Record<string, unknown> = {
    'format-version': meta['format-version'],
    'table-uuid': meta['table-uuid'],
    location: meta.location,
    'last-sequence-number': meta['last-sequence-number'],
    'last-updated-ms': meta['last-updated-ms'],
    'last-column-id': meta['last-column-id'],
    'current-schema-id': meta['current-schema-id'],
    schemas: meta.schemas,
    'default-spec-id': meta['default-spec-id'],
    'partition-specs': meta['partition-specs'],
    'last-partition-id': meta['last-partition-id'],
    'default-sort-order-id': meta['default-sort-order-id'],
    'sort-orders': meta['sort-orders'],
    properties: meta.properties,
    // -1 rather than absent: Java readers before 1.4 require the key.
    'current-snapshot-id': meta['current-snapshot-id'] ?? -1,
    refs: meta.refs,
    snapshots: meta.snapshots,
    'snapshot-log': meta['snapshot-log'],
    'metadata-log': meta['metadata-log'],
  };
  return JSON.stringify(out, null, 2);
}

function need<T>(obj: Record<string, unknown>, key: string, check: (v: unknown) => boolean, what: string): T {
  const v = obj[key];
  if (!check(v)) throw corrupt(`metadata.json: "${key}" must be ${what}`, key);
  return v as T;
}

const isInt = (v: unknown) => typeof v === 'number' && Number.isSafeInteger(v);
const isStr = (v: unknown) => typeof v === 'string';
const isArr = (v: unknown) => Array.isArray(v);

/** Parses metadata.json, checking the required v2 keys and that every id is exact. */
export function parseMetadata(text: string | Uint8Array): TableMetadata {
  let raw: unknown;
  try {
    raw = JSON.parse(typeof text === 'string' ? text : Buffer.from(text).toString('utf8'));
  } catch (err) {
    throw corrupt(`metadata.json is not valid JSON: ${(err as Error).message}`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw corrupt('metadata.json is not a JSON object');
  const o = raw as Record<string, unknown>;
  const version = need<number>(o, 'format-version', isInt, 'an integer');
  if (version !== 2) throw corrupt(`metadata.json: format-version ${version} is not supported (only 2)`, 'format-version');
  const snapshots = (o.snapshots ?? []) as SnapshotJson[];
  if (!isArr(snapshots)) throw corrupt('metadata.json: "snapshots" must be an array', 'snapshots');
  for (const s of snapshots) {
    if (!isInt(s['snapshot-id'])) throw corrupt(`metadata.json: snapshot id ${s['snapshot-id']} is not an integer below 2^53`, 'snapshots');
  }
  const current = o['current-snapshot-id'];
  if (current !== undefined && current !== null && !isInt(current))
    throw corrupt('metadata.json: "current-snapshot-id" must be an integer', 'current-snapshot-id');
  const meta: TableMetadata = {
    'format-version': 2,
    'table-uuid': need(o, 'table-uuid', isStr, 'a string'),
    location: need(o, 'location', isStr, 'a string'),
    'last-sequence-number': need(o, 'last-sequence-number', isInt, 'an integer'),
    'last-updated-ms': need(o, 'last-updated-ms', isInt, 'an integer'),
    'last-column-id': need(o, 'last-column-id', isInt, 'an integer'),
    schemas: need(o, 'schemas', isArr, 'an array'),
    'current-schema-id': need(o, 'current-schema-id', isInt, 'an integer'),
    'partition-specs': need(o, 'partition-specs', isArr, 'an array'),
    'default-spec-id': need(o, 'default-spec-id', isInt, 'an integer'),
    'last-partition-id': need(o, 'last-partition-id', isInt, 'an integer'),
    properties: (o.properties ?? {}) as Record<string, string>,
    snapshots,
    'snapshot-log': (o['snapshot-log'] ?? []) as TableMetadata['snapshot-log'],
    'metadata-log': (o['metadata-log'] ?? []) as TableMetadata['metadata-log'],
    'sort-orders': need(o, 'sort-orders', isArr, 'an array'),
    'default-sort-order-id': need(o, 'default-sort-order-id', isInt, 'an integer'),
    refs: (o.refs ?? {}) as TableMetadata['refs'],
  };
  if (typeof current === 'number' && current >= 0) {
    meta['current-snapshot-id'] = current;
    // Tables written before refs existed: main follows current-snapshot-id.
    if (!meta.refs[MAIN_BRANCH]) meta.refs = { ...meta.refs, [MAIN_BRANCH]: { 'snapshot-id': current, type: 'branch' } };
  }
  currentSchema(meta);
  defaultSpec(meta);
  return meta;
}
