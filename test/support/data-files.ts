/**
 * A valid data file for a table, as a transformation worker writes it: real Parquet with the
 * table's columns and field ids, under `<table location>/data/<partition path>/`, named after
 * the worker (shared/src/data-files.ts), so the commit service admits it in that worker's report.
 * Tests that play a worker use this instead of writing or inventing files of their own.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { CatalogServiceService } from '#shared/gen/sluice/v1/catalog.js';
import type { DataFile, PartitionValue, TableRef } from '#shared/gen/sluice/v1/types.js';
import { DATA_DIR, dataFileName } from '#shared/data-files.js';
import type { ServiceClient } from '#shared/grpc/client.js';
import type { PrimitiveType } from '#shared/iceberg/single-value.js';
import { type CellValue, ParquetFileWriter, writerColumns } from '#shared/parquet/writer.js';
import { joinLocation, type Storage } from '#shared/storage/index.js';
import { tempDir } from './temp.js';

export interface DataFileOptions {
  /** The rows, in the table's column order; or a count of filler rows (nulls, zeros for required columns). */
  rows: readonly (readonly CellValue[])[] | number;
  /** `col=value` path below data/ ('' for an unpartitioned table) and the values it stands for. */
  partitionPath?: string;
  partition?: PartitionValue[];
}

let seq = 0;

/** A value a required column of this type accepts, for filler rows. */
function filler(type: PrimitiveType): CellValue {
  switch (type.kind) {
    case 'boolean':
      return false;
    case 'long':
    case 'decimal':
      return 0n;
    case 'string':
      return '';
    case 'uuid':
      return '00000000-0000-0000-0000-000000000000';
    case 'binary':
    case 'fixed':
      return new Uint8Array();
    default:
      return 0;
  }
}

/** Writes the file through `storage` and returns its DataFile, as the worker would report it. */
export async function writeTableDataFile(
  catalog: ServiceClient<typeof CatalogServiceService>,
  storage: Storage,
  ref: TableRef,
  workerId: string,
  options: DataFileOptions,
): Promise<DataFile> {
  const { table } = await catalog.getTable({ ref });
  if (!table?.schema) throw new Error(`writeTableDataFile: no table ${ref.database}.${ref.table}`);
  const columns = writerColumns(table.schema);
  const rows =
    typeof options.rows === 'number'
      ? Array.from({ length: options.rows }, () => columns.map((c) => (c.required ? filler(c.type) : null)))
      : options.rows;
  const tmp = tempDir('data-file');
  try {
    const path = join(tmp.path, 'f.parquet');
    const writer = await ParquetFileWriter.open({
      path,
      columns,
      partition: options.partition ?? [],
      specId: table.partitionSpec?.specId ?? 0,
    });
    for (const row of rows) writer.append(row);
    const file = await writer.close();
    const dir = options.partitionPath ? [DATA_DIR, options.partitionPath] : [DATA_DIR];
    const location = joinLocation(table.location, ...dir, dataFileName(workerId, seq++));
    await storage.write(location, await readFile(path));
    return { ...file, filePath: location };
  } finally {
    tmp.remove();
  }
}
