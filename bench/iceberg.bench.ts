/**
 * Iceberg module throughput: writing and reading a manifest of N data-file entries (with
 * partition tuples and column stats for 8 columns), and a manifest list. Numbers are per
 * run on this machine; nothing here asserts speed.
 */
import { performance } from 'node:perf_hooks';
import type { DataFile } from '#shared/gen/sluice/v1/types.js';
import {
  EntryStatus,
  createTableMetadata,
  manifestFileFor,
  readManifest,
  readManifestList,
  writeManifest,
  writeManifestList,
} from '#shared/iceberg/index.js';

const ENTRIES = 20_000;

function fixture() {
  const meta = createTableMetadata({
    location: '/wh/db/t',
    schema: {
      type: 'struct',
      'schema-id': 0,
      fields: ['id:long', 'ts:timestamptz', 'a:string', 'b:string', 'c:double', 'd:int', 'e:boolean', 'f:string'].map((s) => {
        const [name, type] = s.split(':');
        return { id: 0, name, required: false, type };
      }),
    },
    partitionSpec: { specId: 0, fields: [{ sourceId: 0, sourceName: 'ts', fieldId: 0, name: '', transform: 'day' }] },
  });
  const stats = Array.from({ length: 8 }, (_, i) => ({
    fieldId: i + 1,
    columnSize: 1000,
    valueCount: 500,
    nullValueCount: 3,
    nanValueCount: 0,
    lowerBound: Buffer.alloc(8, 1),
    upperBound: Buffer.alloc(8, 9),
  }));
  const files: DataFile[] = Array.from({ length: ENTRIES }, (_, i) => ({
    filePath: `/wh/db/t/data/ts_day=${19000 + (i % 30)}/${i}-00000.parquet`,
    fileFormat: 'parquet',
    specId: 0,
    partition: [{ fieldId: 1000, name: 'ts_day', value: { kind: { $case: 'intValue', value: 19000 + (i % 30) } } }],
    recordCount: 500,
    fileSizeInBytes: 65536,
    columnStats: stats,
    splitOffsets: [4],
  }));
  return { meta, files };
}

export default async function run(): Promise<Record<string, unknown>> {
  const { meta, files } = fixture();
  const schema = meta.schemas[0];
  const spec = meta['partition-specs'][0];
  const out: Record<string, unknown> = { entries: ENTRIES };
  for (const codec of ['deflate', 'null'] as const) {
    const t0 = performance.now();
    const { bytes, stats } = writeManifest(
      files.map((dataFile) => ({ status: EntryStatus.ADDED, snapshotId: 1, dataFile })),
      { schema, spec, codec },
    );
    const t1 = performance.now();
    const back = readManifest(bytes, { snapshotId: 1, sequenceNumber: 1 });
    const t2 = performance.now();
    if (back.entries.length !== ENTRIES) throw new Error('round trip lost entries');
    out[`manifest_${codec}_bytes`] = bytes.length;
    out[`manifest_${codec}_write_entries_per_s`] = Math.round(ENTRIES / ((t1 - t0) / 1000));
    out[`manifest_${codec}_read_entries_per_s`] = Math.round(ENTRIES / ((t2 - t1) / 1000));
    if (codec === 'deflate') {
      const manifests = Array.from({ length: 1000 }, (_, i) =>
        manifestFileFor({ path: `/wh/db/t/metadata/m${i}.avro`, length: bytes.length, specId: 0, snapshotId: i + 1, stats }),
      );
      const t3 = performance.now();
      const list = writeManifestList(manifests, { snapshotId: 1001, sequenceNumber: 1001 });
      const t4 = performance.now();
      readManifestList(list);
      const t5 = performance.now();
      out.manifest_list_1000_write_ms = Number((t4 - t3).toFixed(2));
      out.manifest_list_1000_read_ms = Number((t5 - t4).toFixed(2));
    }
  }
  return out;
}
