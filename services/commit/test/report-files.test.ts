/**
 * ReportDataFiles admits only files the reporting worker wrote for the table (issue 14, item
 * 1): under the table's data directory, named after the worker, of the reported size, Parquet
 * with the reported row count and columns that fit the table. The audit's reports (a made-up
 * worker with an empty range reporting file:///tmp/x.parquet, file:///etc/shadow) are refused
 * and nothing of them is ever committed; the decisions are tested as tables of cases, the
 * refusals against the real catalog, NATS, gRPC and files.
 */
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { status } from '@grpc/grpc-js';
import { StartFrom } from '#shared/gen/sluice/v1/catalog.js';
import type { ReportDataFilesRequest } from '#shared/gen/sluice/v1/commit.js';
import {
  type DataFile,
  ErrorPolicyKind,
  MessageMode,
  type PartitionValue,
  type Schema,
  type TableRef,
} from '#shared/gen/sluice/v1/types.js';
import { dataFileName } from '#shared/data-files.js';
import { currentSnapshot } from '#shared/iceberg/index.js';
import { snapshotFiles } from '#shared/iceberg/scan.js';
import { parsePrimitive } from '#shared/iceberg/single-value.js';
import { PhysicalType, type ParquetFooter, type SchemaElement } from '#shared/parquet/footer.js';
import { ParquetFileWriter, type WriterColumn } from '#shared/parquet/writer.js';
import { field, job, mapping, recordStarts, schema } from '#test-support/builders.js';
import { tempDir } from '#test-support/temp.js';
import { loadTable } from '../src/catalog.js';
import { checkFileFields, checkFilePath, checkFooter, checkPartition, checkRowsCovered, physicalFits } from '../src/report-files.js';
import {
  events,
  heartbeat,
  ids,
  range,
  startCommitStack,
  tableIds,
  waitForWorkers,
  writeDataFile,
  type CommitStack,
  type RunningCoordinator,
} from './harness.js';

describe('which reported files may be committed (pure)', () => {
  it('file locations: under <table>/data/, plain segments, named after the reporting worker', () => {
    const t = 'file:///wh/db/t';
    const cases: [string, string, string, 'outside' | 'invalid' | undefined][] = [
      ['a file of the worker in a partition directory', t, '/wh/db/t/data/part=a/w1-0.parquet', undefined],
      ['file:// and path forms are one place', t, 'file:///wh/db/t/data/w1-17.parquet', undefined],
      ['a mounted location', 'http://h:1/wh/db/t', 'http://h:1/wh/db/t/data/p=%C3%A9/w1-2.parquet', undefined],
      ['a worker id with characters a file name cannot hold', t, '/wh/db/t/data/job-host_12-3.parquet', undefined],
      ['the audit: file:///tmp/x.parquet', t, 'file:///tmp/x.parquet', 'outside'],
      ['the audit: file:///etc/shadow', t, 'file:///etc/shadow', 'outside'],
      ['another table', t, '/wh/db/t2/data/w1-0.parquet', 'outside'],
      ['a table whose name extends this one', t, '/wh/db/tt/data/w1-0.parquet', 'outside'],
      ['the metadata directory', t, '/wh/db/t/metadata/w1-0.parquet', 'outside'],
      ['the data directory itself', t, '/wh/db/t/data', 'outside'],
      ['dot segments', t, '/wh/db/t/data/../../t2/data/w1-0.parquet', 'outside'],
      ['percent-encoded dot segments', 'http://h:1/wh/db/t', 'http://h:1/wh/db/t/data/%2e%2e/%2E%2E/u/data/w1-0.parquet', 'outside'],
      ['a partition value with a slash, escaped as Iceberg does', t, '/wh/db/t/data/b_trunc_3=l%2FJN/w1-0.parquet', undefined],
      ['an escaped slash that climbs', 'http://h:1/wh/db/t', 'http://h:1/wh/db/t/data/a%2F..%2F..%2Fu/w1-0.parquet', 'outside'],
      ['a relative path', t, 'data/w1-0.parquet', 'outside'],
      ['another scheme', t, 's3://bucket/wh/db/t/data/w1-0.parquet', 'outside'],
      ["another worker's file", t, '/wh/db/t/data/w2-0.parquet', 'invalid'],
      ['a worker whose id starts like this one', t, '/wh/db/t/data/w10-0.parquet', 'invalid'],
      ['not a numbered file', t, '/wh/db/t/data/w1-x.parquet', 'invalid'],
      ['not a .parquet file', t, '/wh/db/t/data/w1-0.txt', 'invalid'],
    ];
    for (const [name, location, path, expected] of cases) {
      const worker = name.startsWith('a worker id with') ? 'job-host/12' : 'w1';
      assert.equal(checkFilePath(location, worker, path)?.kind, expected, name);
    }
  });

  it('rows within the covered offsets: a file cannot ride again on a report that covers nothing', () => {
    const file = (recordCount: number) => ({ recordCount }) as DataFile;
    const span = (start: number, end: number) => ({ topic: 't', partition: 0, startOffset: start, endOffset: end });
    assert.equal(checkRowsCovered({ files: [file(3), file(2)], offsets: [span(0, 5)] }), undefined);
    assert.equal(checkRowsCovered({ files: [file(3)], offsets: [span(0, 10)] }), undefined, 'refused and excluded records make no rows');
    assert.match(checkRowsCovered({ files: [file(3)], offsets: [span(1, 1)] }) ?? '', /hold 3 rows but the report covers 0 offsets/);
    assert.match(checkRowsCovered({ files: [file(3)], offsets: [] }) ?? '', /covers 0 offsets/);
  });

  it('file fields: Parquet, counts not negative, a size a Parquet file can have', () => {
    const f = (over: Partial<DataFile>): DataFile => ({
      filePath: '/x',
      fileFormat: 'PARQUET',
      specId: 0,
      partition: [],
      recordCount: 1,
      fileSizeInBytes: 100,
      columnStats: [],
      splitOffsets: [],
      ...over,
    });
    const cases: [string, DataFile, RegExp | undefined][] = [
      ['a usual file', f({}), undefined],
      ['lower-case format', f({ fileFormat: 'parquet' }), undefined],
      ['no rows', f({ recordCount: 0 }), undefined],
      ['another format', f({ fileFormat: 'ORC' }), /format "ORC"/],
      ['a negative count', f({ recordCount: -1 }), /negative record_count -1/],
      ['no size', f({ fileSizeInBytes: 0 }), /file_size_in_bytes 0/],
    ];
    for (const [name, file, reason] of cases) {
      const got = checkFileFields(file);
      if (reason) assert.match(got ?? '', reason, name);
      else assert.equal(got, undefined, name);
    }
  });

  it("partitions: the table's spec id, a value per partition field in order, a directory per field", () => {
    const t = '/wh/db/t';
    const spec = {
      specId: 0,
      fields: [
        { sourceId: 2, fieldId: 1000, name: 'part', transform: 'identity', sourceName: 'part' },
        { sourceId: 3, fieldId: 1001, name: 'ts_day', transform: 'day', sourceName: 'ts' },
      ],
    };
    const value = (fieldId: number, name: string): PartitionValue => ({
      fieldId,
      name,
      value: { kind: { $case: 'stringValue', value: 'a' } },
    });
    const f = (path: string, partition = [value(1000, 'part'), value(1001, 'ts_day')], specId = 0): DataFile => ({
      filePath: `${t}/data/${path}`,
      fileFormat: 'PARQUET',
      specId,
      partition,
      recordCount: 1,
      fileSizeInBytes: 100,
      columnStats: [],
      splitOffsets: [],
    });
    const cases: [string, DataFile, typeof spec | undefined, RegExp | undefined][] = [
      ['a partitioned file', f('part=a/ts_day=2024-01-01/w1-0.parquet'), spec, undefined],
      [
        'a null value',
        f('part=null/ts_day=2024-01-01/w1-0.parquet', [{ fieldId: 1000, name: 'part', value: {} }, value(1001, 'ts_day')]),
        spec,
        undefined,
      ],
      ['an unpartitioned table', f('w1-0.parquet', []), undefined, undefined],
      ['another spec id', f('part=a/ts_day=x/w1-0.parquet', undefined, 3), spec, /partition spec id 3; the table's is 0/],
      [
        'a missing value',
        f('part=a/ts_day=x/w1-0.parquet', [value(1000, 'part')]),
        spec,
        /field ids \[1000\]; the table's partition fields are \[1000, 1001\]/,
      ],
      [
        'values out of order',
        f('part=a/ts_day=x/w1-0.parquet', [value(1001, 'ts_day'), value(1000, 'part')]),
        spec,
        /field ids \[1001, 1000\]/,
      ],
      ['values for an unpartitioned table', f('w1-0.parquet', [value(1000, 'part')]), undefined, /partition fields are \[\]/],
      ['no partition directories', f('w1-0.parquet'), spec, /not in a partition directory part=…\/ts_day=… below data/],
      ['directories in another order', f('ts_day=x/part=a/w1-0.parquet'), spec, /not in a partition directory/],
      ['a directory in an unpartitioned table', f('part=a/w1-0.parquet', []), undefined, /\(none: the table is unpartitioned\)/],
    ];
    for (const [name, file, s, reason] of cases) {
      const got = checkPartition(file, s, t);
      if (reason) assert.match(got ?? '', reason, name);
      else assert.equal(got, undefined, name);
    }
  });

  it('types: a Parquet column fits an Iceberg type it can be read as, promotions included', () => {
    const e = (type: number, more: Partial<SchemaElement> = {}): SchemaElement => ({ name: 'c', type, ...more });
    const cases: [string, SchemaElement, boolean][] = [
      ['long', e(PhysicalType.INT64), true],
      ['long', e(PhysicalType.INT32), true],
      ['int', e(PhysicalType.INT64), false],
      ['double', e(PhysicalType.FLOAT), true],
      ['float', e(PhysicalType.DOUBLE), false],
      ['string', e(PhysicalType.BYTE_ARRAY), true],
      ['string', e(PhysicalType.INT64), false],
      ['boolean', e(PhysicalType.BOOLEAN), true],
      ['date', e(PhysicalType.INT32), true],
      ['timestamptz', e(PhysicalType.INT64), true],
      ['timestamp', e(PhysicalType.INT96), false],
      ['uuid', e(PhysicalType.FIXED_LEN_BYTE_ARRAY, { typeLength: 16 }), true],
      ['uuid', e(PhysicalType.FIXED_LEN_BYTE_ARRAY, { typeLength: 8 }), false],
      ['fixed[4]', e(PhysicalType.FIXED_LEN_BYTE_ARRAY, { typeLength: 4 }), true],
      ['decimal(10,2)', e(PhysicalType.INT64, { precision: 10, scale: 2 }), true],
      ['decimal(12,2)', e(PhysicalType.INT64, { precision: 10, scale: 2 }), true],
      ['decimal(10,2)', e(PhysicalType.INT64, { precision: 12, scale: 2 }), false],
      ['decimal(10,2)', e(PhysicalType.INT64, { precision: 10, scale: 3 }), false],
      ['decimal(10,2)', e(PhysicalType.INT64), false],
    ];
    for (const [type, element, fits] of cases)
      assert.equal(physicalFits(parsePrimitive(type), element), fits, `${type} from ${JSON.stringify(element)}`);
  });

  it('footers: the reported row count, field ids of table columns, required columns present', () => {
    const table: Schema = schema(
      field(1, 'id', 'long', true),
      field(2, 'part', 'string'),
      field(3, 'tags', {
        kind: {
          $case: 'list',
          value: { elementId: 4, element: { kind: { $case: 'primitive', value: 'string' } }, elementRequired: false },
        },
      }),
    );
    const root: SchemaElement = { name: 'duckdb_schema', repetition: 0 };
    const id: SchemaElement = { name: 'id', type: PhysicalType.INT64, repetition: 1, fieldId: 1 };
    const part: SchemaElement = { name: 'part', type: PhysicalType.BYTE_ARRAY, repetition: 1, fieldId: 2 };
    const footer = (rows: number, ...columns: SchemaElement[]): ParquetFooter => ({
      numRows: rows,
      schema: [{ ...root, numChildren: columns.length }, ...columns],
    });
    const cases: [string, ParquetFooter, RegExp | undefined][] = [
      ['all columns', footer(5, id, part), undefined],
      ['an optional column missing (an older file)', footer(5, id), undefined],
      ['another row count', footer(4, id, part), /holds 4 rows, not the reported record_count 5/],
      ['a required column missing', footer(5, part), /lacks the required column "id" \(field id 1\)/],
      ['an unknown field id', footer(5, id, { ...part, fieldId: 9 }), /field id 9, which is not a column of the table/],
      ['no field id', footer(5, id, { ...part, fieldId: undefined }), /column "part" without a field id/],
      ['a field id twice', footer(5, id, { ...part, fieldId: 1, type: PhysicalType.INT64 }), /field id 1 twice/],
      ['a wrong type', footer(5, { ...id, type: PhysicalType.BYTE_ARRAY }), /as BYTE_ARRAY, which cannot be read as the table's "id" long/],
      ['a repeated column', footer(5, id, { ...part, repetition: 2 }), /does not fit the table's "part"/],
      [
        'a primitive for a list column',
        footer(5, id, { name: 'tags', type: PhysicalType.BYTE_ARRAY, fieldId: 3 }),
        /does not fit the table's "tags"/,
      ],
      ['child counts that do not add up', { numRows: 5, schema: [{ ...root, numChildren: 3 }, id, part] }, /unreadable Parquet footer/],
    ];
    for (const [name, f, reason] of cases) {
      const got = checkFooter(f, 5, table);
      if (reason) assert.match(got ?? '', reason, name);
      else assert.equal(got, undefined, name);
    }
  });
});

describe('ReportDataFiles refuses files it must not commit', () => {
  let stack: CommitStack;
  let coord: RunningCoordinator;
  let ref: TableRef;
  let errRef: TableRef;
  let location: string;
  let errLocation: string;
  const jobName = () => `${stack.database}_guarded`;
  const scratch = tempDir('report-files');

  before(async () => {
    stack = await startCommitStack();
    errRef = await stack.createTable('refused');
    ref = await stack.createTable('guarded');
    const errorPolicy = { kind: ErrorPolicyKind.ERROR_POLICY_KIND_ERROR_TABLE, maxErrors: 0, errorTopic: '', errorTable: errRef };
    const dirtyMapping = mapping({ mode: MessageMode.MESSAGE_MODE_VALUE, flattenLevel: 1, timeZone: 'UTC', errorPolicy });
    const start = { from: StartFrom.START_FROM_EARLIEST };
    await stack.catalog.createJob({ job: job(jobName(), `${stack.database}_src`, ref, { mapping: dirtyMapping, start }) });
    await recordStarts(stack.catalog, jobName(), 'events', { 0: 0 });
    location = (await stack.catalog.getTable({ ref })).table!.location;
    errLocation = (await stack.catalog.getTable({ ref: errRef })).table!.location;
    coord = await stack.startCoordinator({ flushTimeoutMs: 1500 });
  });
  after(async () => {
    await stack.stop();
    scratch.remove();
  });

  const report = (
    worker: string,
    files: DataFile[],
    start: number,
    end: number,
    over: Partial<ReportDataFilesRequest> = {},
  ): ReportDataFilesRequest => ({
    flushId: 'f-guard',
    table: ref,
    job: jobName(),
    workerId: worker,
    files,
    offsets: [range(0, start, end)],
    recordCount: files.reduce((n, f) => n + f.recordCount, 0),
    errorCounts: [],
    ...over,
  });

  /** Stores bytes in the table's data directory under a name of `worker`'s, as if the worker wrote them. */
  async function placed(worker: string, bytes: Uint8Array, n: number, at = location): Promise<string> {
    const path = `${at}/data/part=a/${dataFileName(worker, 1000 + n)}`;
    await stack.storage.write(path, bytes);
    return path;
  }

  /** A Parquet file with these columns (not the table's) and one row. */
  async function parquetWith(columns: WriterColumn[], row: (bigint | string | number | null)[]): Promise<Uint8Array> {
    const path = join(scratch.path, `${Math.random().toString(36).slice(2)}.parquet`);
    const writer = await ParquetFileWriter.open({ path, columns });
    writer.append(row);
    await writer.close();
    return readFile(path);
  }

  const refused = (code: status, reason: RegExp) => (err: unknown) => {
    const e = err as { code?: number; details?: string };
    assert.equal(e.code, code, e.details);
    assert.match(e.details ?? '', reason);
    return true;
  };

  const committedFiles = async (t: TableRef): Promise<string[]> => {
    const { metadata } = await loadTable(stack.catalog, stack.storage, t);
    const snapshot = currentSnapshot(metadata);
    return snapshot ? (await snapshotFiles(stack.storage, snapshot)).dataFiles.map((f) => f.dataFile.filePath) : [];
  };

  it("the audit's reports are refused, nothing of them is committed, and nobody is rewound", async () => {
    const rewinds = events.rewind(stack, jobName());
    const committed = events.committed(stack, ref);
    await new Promise((r) => setTimeout(r, 50));
    // A real file that is not Parquet, outside the warehouse, as in the audit.
    const tmpFile = join(scratch.path, 'x.parquet');
    await writeFile(tmpFile, 'not parquet at all');
    const forged = (filePath: string): DataFile => ({
      filePath,
      fileFormat: 'PARQUET',
      specId: 0,
      partition: [],
      recordCount: 1,
      fileSizeInBytes: 18,
      columnStats: [],
      splitOffsets: [],
    });
    for (const path of [`file://${tmpFile}`, 'file:///tmp/x.parquet', 'file:///etc/shadow', '/etc/shadow'])
      await assert.rejects(
        coord.client.reportDataFiles(report('made-up-worker', [forged(path)], 1, 1)),
        refused(status.PERMISSION_DENIED, /files\[0\] ".*" is not under the table's data directory .*; nothing of this report is admitted/),
        path,
      );
    // The round that follows commits nothing of them.
    const { flushId } = await coord.client.triggerFlush({ table: ref, job: jobName() });
    const c = await committed.next((e) => e.flushId === flushId);
    assert.equal(c.addedFiles, 0);
    assert.deepEqual(await committedFiles(ref), []);
    assert.deepEqual(rewinds.seen, [], 'a refused report rewinds nobody: a worker it names may be real and innocent');
    rewinds.stop();
    committed.stop();
  });

  it('each kind of bad file is refused INVALID_ARGUMENT naming its index and the reason; the whole report is refused', async () => {
    const good = await writeDataFile(stack, ref, 'a', 0, 3, 'w1');
    const text = new TextEncoder().encode('root:x:0:0:root:/root:/bin/bash\n');
    const idLong = { fieldId: 1, name: 'id', type: parsePrimitive('long'), required: true };
    const cases: [string, () => Promise<DataFile>, RegExp][] = [
      ['does not exist', async () => ({ ...good, filePath: `${location}/data/part=a/${dataFileName('w1', 999)}` }), /does not exist/],
      [
        'not Parquet',
        async () => ({ ...good, filePath: await placed('w1', text, 1), fileSizeInBytes: text.length }),
        /is not a readable Parquet file: it does not start with the Parquet magic PAR1/,
      ],
      [
        'the wrong size',
        async () => {
          const f = await writeDataFile(stack, ref, 'a', 0, 3, 'w1');
          return { ...f, fileSizeInBytes: f.fileSizeInBytes + 1 };
        },
        /has \d+ bytes, not the reported file_size_in_bytes \d+/,
      ],
      [
        'the wrong row count',
        async () => ({ ...(await writeDataFile(stack, ref, 'a', 0, 3, 'w1')), recordCount: 5 }),
        /holds 3 rows, not the reported record_count 5/,
      ],
      [
        'a column the table does not have',
        async () => {
          const bytes = await parquetWith(
            [idLong, { fieldId: 7, name: 'extra', type: parsePrimitive('string'), required: false }],
            [1n, 'x'],
          );
          return { ...good, filePath: await placed('w1', bytes, 2), fileSizeInBytes: bytes.length, recordCount: 1 };
        },
        /column "extra" with field id 7, which is not a column of the table/,
      ],
      [
        'a column of the wrong type',
        async () => {
          const bytes = await parquetWith([{ ...idLong, type: parsePrimitive('string') }], ['1']);
          return { ...good, filePath: await placed('w1', bytes, 3), fileSizeInBytes: bytes.length, recordCount: 1 };
        },
        /column "id" \(field id 1\) as BYTE_ARRAY, which cannot be read as the table's "id" long/,
      ],
      ["another worker's file", async () => writeDataFile(stack, ref, 'a', 0, 3, 'w2'), /is not a file of worker "w1"/],
      [
        'partition values of another field',
        async () => {
          const f = await writeDataFile(stack, ref, 'a', 0, 3, 'w1');
          return { ...f, partition: f.partition.map((p) => ({ ...p, fieldId: 1001 })) };
        },
        /has partition values for field ids \[1001\]; the table's partition fields are \[1000\]/,
      ],
      [
        'outside a partition directory',
        async () => {
          const f = await writeDataFile(stack, ref, 'a', 0, 3, 'w1');
          const filePath = `${location}/data/${dataFileName('w1', 1004)}`;
          await stack.storage.write(filePath, await stack.storage.read(f.filePath));
          return { ...f, filePath };
        },
        /is not in a partition directory part=… below data/,
      ],
      ['reported twice', async () => good, /is reported twice/],
      [
        'reported twice in another form',
        async () => ({ ...good, filePath: good.filePath.replace('/data/', '//data/') }),
        /is reported twice/,
      ],
    ];
    for (const [name, make, reason] of cases) {
      const bad = await make();
      await assert.rejects(
        coord.client.reportDataFiles(report('w1', [good, bad], 0, 3)),
        refused(status.INVALID_ARGUMENT, new RegExp(`files\\[1\\] .*${reason.source}`)),
        name,
      );
    }
  });

  it("an error-table report is checked against the error table: a file in the job's own table is refused", async () => {
    const inDataTable = await writeDataFile(stack, ref, 'e', 3, 4, 'w1');
    await assert.rejects(
      coord.client.reportDataFiles(report('w1', [inDataTable], 0, 0, { table: errRef, offsets: [] })),
      refused(
        status.PERMISSION_DENIED,
        new RegExp(`is not under the table's data directory "${errLocation.replace(/[.]/g, '\\.')}/data/"`),
      ),
    );
  });

  it("a worker's real files are admitted and committed, with its error table's", async () => {
    const flushes = events.flush(stack, ref);
    const committed = events.committed(stack, ref);
    await new Promise((r) => setTimeout(r, 50));
    heartbeat(stack, ref, jobName(), 'w1');
    await waitForWorkers(coord, ref, jobName(), 1);
    const { flushId } = await coord.client.triggerFlush({ table: ref, job: jobName() });
    await flushes.next((e) => e.flushId === flushId);
    const errFile = await writeDataFile(stack, errRef, 'e', 3, 4, 'w1');
    const files = [await writeDataFile(stack, ref, 'a', 0, 3, 'w1'), await writeDataFile(stack, ref, 'b', 4, 6, 'w1')];
    assert.equal(
      (await coord.client.reportDataFiles(report('w1', [errFile], 0, 0, { flushId, table: errRef, offsets: [] }))).accepted,
      true,
    );
    assert.equal((await coord.client.reportDataFiles(report('w1', files, 0, 6, { flushId, errorReports: 1 }))).accepted, true);
    const c = await committed.next((e) => e.flushId === flushId);
    assert.equal(c.addedFiles, 2);
    assert.deepEqual(await tableIds(stack, ref), [...ids(0, 3), 4, 5]);
    assert.deepEqual(await tableIds(stack, errRef), [3]);
    assert.deepEqual((await committedFiles(ref)).sort(), files.map((f) => f.filePath).sort());
    flushes.stop();
    committed.stop();
  });
});
