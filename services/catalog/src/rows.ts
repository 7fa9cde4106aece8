/**
 * Row shapes of the catalog schema and their mapping to the proto messages.
 */
import type { Database, Snapshot, Table } from '#shared/gen/sluice/v1/catalog.js';
import { currentSchema, defaultSpec, schemaToProto, specToProto, type SnapshotJson, type TableMetadata } from '#shared/iceberg/index.js';

export interface DatabaseRow {
  name: string;
  location: string;
  properties: Record<string, string>;
  created_at_ms: number;
}

export interface TableRow {
  id: number;
  database: string;
  name: string;
  location: string;
  metadata_location: string;
  previous_metadata_location: string | null;
  metadata: TableMetadata;
  current_snapshot_id: number | null;
}

export const TABLE_COLUMNS = 'id, database, name, location, metadata_location, previous_metadata_location, metadata, current_snapshot_id';

export function databaseToProto(row: DatabaseRow): Database {
  return { name: row.name, location: row.location, properties: row.properties, createdAtMs: row.created_at_ms };
}

export function tableToProto(row: TableRow): Table {
  const meta = row.metadata;
  const schema = currentSchema(meta);
  return {
    ref: { database: row.database, table: row.name },
    tableUuid: meta['table-uuid'],
    location: row.location,
    formatVersion: meta['format-version'],
    metadataLocation: row.metadata_location,
    previousMetadataLocation: row.previous_metadata_location ?? '',
    schema: schemaToProto(schema),
    partitionSpec: specToProto(defaultSpec(meta), schema),
    currentSnapshotId: meta['current-snapshot-id'],
    lastSequenceNumber: meta['last-sequence-number'],
    properties: meta.properties,
    lastUpdatedMs: meta['last-updated-ms'],
    lastColumnId: meta['last-column-id'],
  };
}

export function snapshotToProto(s: SnapshotJson): Snapshot {
  const { operation, ...summary } = s.summary;
  return {
    snapshotId: s['snapshot-id'],
    parentSnapshotId: s['parent-snapshot-id'],
    sequenceNumber: s['sequence-number'],
    timestampMs: s['timestamp-ms'],
    manifestList: s['manifest-list'],
    operation,
    summary,
    schemaId: s['schema-id'] ?? 0,
  };
}
