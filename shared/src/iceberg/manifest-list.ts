/**
 * Manifest lists (spec, "Manifest Lists"): one Avro `manifest_file` record per manifest
 * of a snapshot, with its counts, sequence numbers and per-partition-field summaries.
 */
import { readContainer, writeContainer, type AvroCodecName } from './avro/container.js';
import { optional, type AvroRecord } from './avro/schema.js';
import { corrupt } from './errors.js';
import type { ManifestStats } from './manifest.js';
import type { FieldSummary, ManifestCounts } from './manifest-summary.js';

export enum ManifestContent {
  DATA = 0,
  DELETES = 1,
}

export interface ManifestFile extends ManifestCounts {
  manifestPath: string;
  manifestLength: number;
  partitionSpecId: number;
  content: ManifestContent;
  /** Unset for a manifest added by the snapshot being written: it gets that snapshot's. */
  sequenceNumber?: number;
  minSequenceNumber?: number;
  addedSnapshotId: number;
  partitions?: FieldSummary[];
}

/** The manifest-list entry of a manifest just written by `writeManifest`. */
export function manifestFileFor(input: {
  path: string;
  length: number;
  specId: number;
  snapshotId: number;
  stats: ManifestStats;
  content?: ManifestContent;
}): ManifestFile {
  const s = input.stats;
  return {
    manifestPath: input.path,
    manifestLength: input.length,
    partitionSpecId: input.specId,
    content: input.content ?? ManifestContent.DATA,
    minSequenceNumber: s.minExplicitSequenceNumber,
    addedSnapshotId: input.snapshotId,
    addedFilesCount: s.addedFilesCount,
    existingFilesCount: s.existingFilesCount,
    deletedFilesCount: s.deletedFilesCount,
    addedRowsCount: s.addedRowsCount,
    existingRowsCount: s.existingRowsCount,
    deletedRowsCount: s.deletedRowsCount,
    partitions: s.partitions,
  };
}

export const MANIFEST_FILE_SCHEMA: AvroRecord = {
  type: 'record',
  name: 'manifest_file',
  fields: [
    { name: 'manifest_path', type: 'string', 'field-id': 500, doc: 'Location URI with FS scheme' },
    { name: 'manifest_length', type: 'long', 'field-id': 501, doc: 'Total file size in bytes' },
    { name: 'partition_spec_id', type: 'int', 'field-id': 502, doc: 'Spec ID used to write' },
    { name: 'content', type: 'int', 'field-id': 517, doc: 'Contents of the manifest: 0=data, 1=deletes' },
    { name: 'sequence_number', type: 'long', 'field-id': 515, doc: 'Sequence number when the manifest was added' },
    { name: 'min_sequence_number', type: 'long', 'field-id': 516, doc: 'Lowest sequence number in the manifest' },
    { name: 'added_snapshot_id', type: 'long', 'field-id': 503, doc: 'Snapshot ID that added the manifest' },
    { name: 'added_files_count', type: 'int', 'field-id': 504, doc: 'Added entry count' },
    { name: 'existing_files_count', type: 'int', 'field-id': 505, doc: 'Existing entry count' },
    { name: 'deleted_files_count', type: 'int', 'field-id': 506, doc: 'Deleted entry count' },
    { name: 'added_rows_count', type: 'long', 'field-id': 512, doc: 'Added rows count' },
    { name: 'existing_rows_count', type: 'long', 'field-id': 513, doc: 'Existing rows count' },
    { name: 'deleted_rows_count', type: 'long', 'field-id': 514, doc: 'Deleted rows count' },
    {
      name: 'partitions',
      type: optional({
        type: 'array',
        'element-id': 508,
        items: {
          type: 'record',
          name: 'r508',
          fields: [
            { name: 'contains_null', type: 'boolean', 'field-id': 509, doc: 'True if any file has a null partition value' },
            {
              name: 'contains_nan',
              type: optional('boolean'),
              default: null,
              'field-id': 518,
              doc: 'True if any file has a nan partition value',
            },
            { name: 'lower_bound', type: optional('bytes'), default: null, 'field-id': 510, doc: 'Partition lower bound for all files' },
            { name: 'upper_bound', type: optional('bytes'), default: null, 'field-id': 511, doc: 'Partition upper bound for all files' },
          ],
        },
      }),
      default: null,
      'field-id': 507,
      doc: 'Summary for each partition',
    },
    { name: 'key_metadata', type: optional('bytes'), default: null, 'field-id': 519, doc: 'Encryption key metadata blob' },
  ],
};

export interface ManifestListWriteOptions {
  snapshotId: number;
  parentSnapshotId?: number;
  /** The sequence number of the snapshot this list belongs to. */
  sequenceNumber: number;
  codec?: AvroCodecName;
}

export function writeManifestList(manifests: ManifestFile[], options: ManifestListWriteOptions): Uint8Array {
  const seq = options.sequenceNumber;
  const records = manifests.map((m) => {
    const sequenceNumber = m.sequenceNumber ?? seq;
    return {
      manifest_path: m.manifestPath,
      manifest_length: m.manifestLength,
      partition_spec_id: m.partitionSpecId,
      content: m.content,
      sequence_number: sequenceNumber,
      // Entries that inherit take the manifest's sequence number, so it bounds them too.
      min_sequence_number: Math.min(m.minSequenceNumber ?? sequenceNumber, sequenceNumber),
      added_snapshot_id: m.addedSnapshotId,
      added_files_count: m.addedFilesCount,
      existing_files_count: m.existingFilesCount,
      deleted_files_count: m.deletedFilesCount,
      added_rows_count: m.addedRowsCount,
      existing_rows_count: m.existingRowsCount,
      deleted_rows_count: m.deletedRowsCount,
      partitions: m.partitions
        ? m.partitions.map((p) => ({
            contains_null: p.containsNull,
            contains_nan: p.containsNan ?? null,
            lower_bound: p.lowerBound ?? null,
            upper_bound: p.upperBound ?? null,
          }))
        : null,
      key_metadata: null,
    };
  });
  const metadata: Record<string, string> = {
    'snapshot-id': String(options.snapshotId),
    'sequence-number': String(seq),
    'format-version': '2',
  };
  metadata['parent-snapshot-id'] = options.parentSnapshotId === undefined ? 'null' : String(options.parentSnapshotId);
  return writeContainer(MANIFEST_FILE_SCHEMA, records, { codec: options.codec, metadata });
}

export function readManifestList(bytes: Uint8Array): ManifestFile[] {
  const { records } = readContainer<Record<string, unknown>>(bytes);
  return records.map((r, i) => {
    if (typeof r.manifest_path !== 'string') throw corrupt(`manifest list entry ${i} has no manifest_path`, 'manifest_path');
    const partitions = r.partitions as Record<string, unknown>[] | null | undefined;
    const out: ManifestFile = {
      manifestPath: r.manifest_path,
      manifestLength: r.manifest_length as number,
      partitionSpecId: r.partition_spec_id as number,
      content: ((r.content as number | undefined) ?? 0) as ManifestContent,
      sequenceNumber: (r.sequence_number as number | undefined) ?? 0,
      minSequenceNumber: (r.min_sequence_number as number | undefined) ?? 0,
      addedSnapshotId: r.added_snapshot_id as number,
      addedFilesCount: (r.added_files_count as number | null) ?? 0,
      existingFilesCount: (r.existing_files_count as number | null) ?? 0,
      deletedFilesCount: (r.deleted_files_count as number | null) ?? 0,
      addedRowsCount: (r.added_rows_count as number | null) ?? 0,
      existingRowsCount: (r.existing_rows_count as number | null) ?? 0,
      deletedRowsCount: (r.deleted_rows_count as number | null) ?? 0,
    };
    if (partitions) {
      out.partitions = partitions.map((p) => {
        const s: FieldSummary = { containsNull: p.contains_null as boolean };
        if (p.contains_nan !== null && p.contains_nan !== undefined) s.containsNan = p.contains_nan as boolean;
        if (p.lower_bound) s.lowerBound = Buffer.from(p.lower_bound as Uint8Array);
        if (p.upper_bound) s.upperBound = Buffer.from(p.upper_bound as Uint8Array);
        return s;
      });
    }
    return out;
  });
}
