/**
 * The Iceberg table format's JSON model (format version 2), named as in the spec
 * (https://iceberg.apache.org/spec/): these objects serialize to metadata.json unchanged.
 */

/** A primitive type string: `long`, `decimal(10, 2)`, `fixed[16]`... */
export type PrimitiveTypeName = string;

export interface StructTypeJson {
  type: 'struct';
  fields: NestedField[];
}

export interface ListTypeJson {
  type: 'list';
  'element-id': number;
  'element-required': boolean;
  element: IcebergTypeJson;
}

export interface MapTypeJson {
  type: 'map';
  'key-id': number;
  key: IcebergTypeJson;
  'value-id': number;
  'value-required': boolean;
  value: IcebergTypeJson;
}

export type IcebergTypeJson = PrimitiveTypeName | StructTypeJson | ListTypeJson | MapTypeJson;

export interface NestedField {
  id: number;
  name: string;
  required: boolean;
  type: IcebergTypeJson;
  doc?: string;
}

export interface SchemaJson extends StructTypeJson {
  'schema-id': number;
  'identifier-field-ids'?: number[];
}

export interface PartitionFieldJson {
  'source-id': number;
  'field-id': number;
  name: string;
  transform: string;
}

export interface PartitionSpecJson {
  'spec-id': number;
  fields: PartitionFieldJson[];
}

export interface SortFieldJson {
  transform: string;
  'source-id': number;
  direction: 'asc' | 'desc';
  'null-order': 'nulls-first' | 'nulls-last';
}

export interface SortOrderJson {
  'order-id': number;
  fields: SortFieldJson[];
}

export type SnapshotOperation = 'append' | 'replace' | 'overwrite' | 'delete';

export interface SnapshotJson {
  'snapshot-id': number;
  'parent-snapshot-id'?: number;
  'sequence-number': number;
  'timestamp-ms': number;
  'manifest-list': string;
  /** Always carries `operation`; the other keys are listed in summary.ts. */
  summary: Record<string, string> & { operation: string };
  'schema-id'?: number;
}

export interface SnapshotRefJson {
  'snapshot-id': number;
  type: 'branch' | 'tag';
  'min-snapshots-to-keep'?: number;
  'max-snapshot-age-ms'?: number;
  'max-ref-age-ms'?: number;
}

export interface SnapshotLogEntry {
  'snapshot-id': number;
  'timestamp-ms': number;
}

export interface MetadataLogEntry {
  'metadata-file': string;
  'timestamp-ms': number;
}

export interface TableMetadata {
  'format-version': 2;
  'table-uuid': string;
  location: string;
  'last-sequence-number': number;
  'last-updated-ms': number;
  'last-column-id': number;
  schemas: SchemaJson[];
  'current-schema-id': number;
  'partition-specs': PartitionSpecJson[];
  'default-spec-id': number;
  'last-partition-id': number;
  properties: Record<string, string>;
  /** Absent when the table has no snapshot (written as -1 for older readers). */
  'current-snapshot-id'?: number;
  snapshots: SnapshotJson[];
  'snapshot-log': SnapshotLogEntry[];
  'metadata-log': MetadataLogEntry[];
  'sort-orders': SortOrderJson[];
  'default-sort-order-id': number;
  refs: Record<string, SnapshotRefJson>;
}
