/**
 * The Transform stream end to end over real gRPC, NATS, PostgreSQL (the real catalog) and
 * files, with a recording CommitService to assert the exact reports.
 */
import assert from 'node:assert/strict';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { status } from '@grpc/grpc-js';
import { ErrorPolicyKind, Granularity, MessageFormat, SchemaEvolution, TimeSource, type MappingSpec } from '#shared/gen/sluice/v1/types.js';
import type { TransformOpen } from '#shared/gen/sluice/v1/transformation.js';
import { deserializeSingleValue, parsePrimitive } from '#shared/iceberg/single-value.js';
import {
  collectHeartbeats,
  createTable,
  filesUnder,
  flushAndWait,
  publishFlush,
  query,
  rec,
  startTransformationStack,
  TestStream,
  type TransformationStack,
} from './stream-support.js';
import { field, flattenMapping, mapping } from '#test-support/builders.js';
import { waitFor } from '#test-support/wait.js';

const EVENTS = [
  field(1, 'id', 'long', true),
  field(2, 'name', 'string'),
  field(3, 'amount', 'double'),
  field(4, 'active', 'boolean'),
  field(5, 'ts', 'timestamptz'),
  field(6, 'info', 'string'),
  field(7, 'region', 'string'),
];

let worker = 0;
const openFor = (table: { database: string; table: string }, mapping: MappingSpec, o: Partial<TransformOpen> = {}): TransformOpen => ({
  job: 'job1',
  table,
  mapping,
  workerId: `w-${process.pid}-${++worker}`,
  flushBufferBytes: 0,
  ...o,
});

const event = (id: number, name: string | null, amount: number, region: string) =>
  JSON.stringify({ id, name, amount, active: id % 2 === 0, ts: `2023-07-13T21:13:0${id % 10}Z`, info: { k: id, tags: ['a'] }, region });

describe('Transform stream', () => {
  let h: TransformationStack;
  before(async () => {
    h = await startTransformationStack();
  });
  after(async () => {
    await h.stop();
  });

  it('with schema evolution none, JSON fields the table lacks are dropped and counted by path in the acks; the report carries no schema', async () => {
    const { ref } = await createTable(h, 'unmapped', [field(1, 'id', 'long', true)]);
    const mapping = flattenMapping({
      format: MessageFormat.MESSAGE_FORMAT_JSON,
      flattenLevel: 2,
      schemaEvolution: SchemaEvolution.SCHEMA_EVOLUTION_NONE,
    });
    const s = new TestStream(h, openFor(ref, mapping));
    const ack = await s.sendRange('orders', 0, 0, ['{"id":1,"tag":"x"}', '{"id":2,"tag":"y","device":{"os":"linux"}}', '{"id":3}']);
    assert.equal(ack.rows, 3);
    assert.deepEqual(
      [...ack.unmappedFields].sort((a, b) => a.field.localeCompare(b.field)),
      [
        { field: 'device.os', count: 1 },
        { field: 'tag', count: 2 },
      ],
    );
    const [report] = await flushAndWait(h, ref);
    assert.equal(report.recordCount, 3);
    assert.equal(report.schema, undefined, 'the table schema is unchanged');
    s.end();
    assert.equal(await s.ended, null);
  });

  it('writes flatten-level-1 JSON to Parquet files per partition that DuckDB reads back typed, with field ids, exact offsets and stats', async () => {
    const { ref, location } = await createTable(h, 'events', EVENTS, {
      specId: 0,
      fields: [{ sourceId: 7, fieldId: 1000, name: 'region', transform: 'identity', sourceName: '' }],
    });
    const s = new TestStream(h, openFor(ref, flattenMapping()));
    const a1 = await s.sendRange('orders', 0, 10, [event(1, 'a', 1.5, 'eu'), event(2, 'b', -2.25, 'us')]);
    const a2 = await s.sendRange('orders', 0, 12, [event(3, null, 3, 'eu'), event(4, 'd', 4e10, 'eu')]);
    const a3 = await s.sendRange('orders', 1, 0, [event(5, 'e', 0, 'us')]);
    assert.deepEqual(
      [a1, a2, a3].map((a) => [a.sequence, a.rows, a.errors]),
      [
        [1, 2, 0],
        [2, 2, 0],
        [3, 1, 0],
      ],
    );

    const [report] = await flushAndWait(h, ref);
    assert.equal(report.job, 'job1');
    assert.equal(report.workerId, s.open.workerId);
    assert.deepEqual(report.table, ref);
    assert.equal(report.recordCount, 5);
    assert.deepEqual(report.offsets, [
      { topic: 'orders', partition: 0, startOffset: 10, endOffset: 14 },
      { topic: 'orders', partition: 1, startOffset: 0, endOffset: 1 },
    ]);
    const byRegion = new Map(
      report.files.map((f) => [f.partition[0].value?.kind?.$case === 'stringValue' ? f.partition[0].value.kind.value : '?', f]),
    );
    assert.deepEqual([...byRegion.keys()].sort(), ['eu', 'us']);
    const eu = byRegion.get('eu')!;
    assert.equal(eu.recordCount, 3);
    assert.equal(eu.fileFormat, 'PARQUET');
    assert.ok(eu.filePath.startsWith(`${location}/data/region=eu/${s.open.workerId}-`), eu.filePath);
    assert.deepEqual(
      eu.partition.map((p) => [p.fieldId, p.name]),
      [[1000, 'region']],
    );

    const rows = await query(
      `SELECT id, name, amount, active, epoch_ms(ts) AS ts, info, region FROM read_parquet(${sqlList(report.files.map((f) => f.filePath))}) ORDER BY id`,
    );
    assert.deepEqual(
      rows.map((r) => ({ ...r, id: Number(r.id), ts: Number(r.ts) })),
      [
        { id: 1, name: 'a', amount: 1.5, active: false, ts: Date.UTC(2023, 6, 13, 21, 13, 1), info: '{"k":1,"tags":["a"]}', region: 'eu' },
        { id: 2, name: 'b', amount: -2.25, active: true, ts: Date.UTC(2023, 6, 13, 21, 13, 2), info: '{"k":2,"tags":["a"]}', region: 'us' },
        { id: 3, name: null, amount: 3, active: false, ts: Date.UTC(2023, 6, 13, 21, 13, 3), info: '{"k":3,"tags":["a"]}', region: 'eu' },
        { id: 4, name: 'd', amount: 4e10, active: true, ts: Date.UTC(2023, 6, 13, 21, 13, 4), info: '{"k":4,"tags":["a"]}', region: 'eu' },
        { id: 5, name: 'e', amount: 0, active: false, ts: Date.UTC(2023, 6, 13, 21, 13, 5), info: '{"k":5,"tags":["a"]}', region: 'us' },
      ],
    );
    const types = await query(
      `SELECT name, type, logical_type::VARCHAR AS logical, field_id FROM parquet_schema('${eu.filePath}') WHERE name <> 'duckdb_schema' ORDER BY field_id`,
    );
    assert.deepEqual(
      types.map((t) => [t.name, t.type, Number(t.field_id)]),
      [
        ['id', 'INT64', 1],
        ['name', 'BYTE_ARRAY', 2],
        ['amount', 'DOUBLE', 3],
        ['active', 'BOOLEAN', 4],
        ['ts', 'INT64', 5],
        ['info', 'BYTE_ARRAY', 6],
        ['region', 'BYTE_ARRAY', 7],
      ],
    );

    const stats = new Map(eu.columnStats.map((c) => [c.fieldId, c]));
    const bound = (id: number, type: string, which: 'lowerBound' | 'upperBound') =>
      deserializeSingleValue(parsePrimitive(type), stats.get(id)![which]);
    assert.deepEqual([stats.get(1)!.valueCount, stats.get(1)!.nullValueCount], [3, 0]);
    assert.deepEqual([bound(1, 'long', 'lowerBound'), bound(1, 'long', 'upperBound')].map(Number), [1, 4]);
    assert.deepEqual([stats.get(2)!.valueCount, stats.get(2)!.nullValueCount], [3, 1]);
    assert.deepEqual([bound(2, 'string', 'lowerBound'), bound(2, 'string', 'upperBound')], ['a', 'd']);
    assert.deepEqual([bound(3, 'double', 'lowerBound'), bound(3, 'double', 'upperBound')], [1.5, 4e10]);
    assert.ok(stats.get(1)!.columnSize > 0);
    assert.equal(eu.fileSizeInBytes, statSync(eu.filePath).size);

    // The next report continues where this one ended, and covers only what came after it.
    await s.sendRange('orders', 0, 14, [event(6, 'f', 6, 'eu')]);
    const [second] = await flushAndWait(h, ref);
    assert.deepEqual(second.offsets, [{ topic: 'orders', partition: 0, startOffset: 14, endOffset: 15 }]);
    assert.equal(second.files.length, 1);
    s.end();
    assert.equal(await s.ended, null);
  });

  it('keeps the bytes a row took from its record after the batch’s message buffer carries later batches', async () => {
    // Batches of 120 kB come in pooled buffers (shared/src/grpc/framing.ts), used again once a
    // batch is transformed; the rows of a batch wait in the writer, in JS, until the flush. A
    // binary column of the raw value is the one cell the reference path would have kept as a
    // view of the message: it must hold its own bytes, not those of a later batch.
    const { ref } = await createTable(h, 'raw_values', [field(1, 'raw', 'binary'), field(2, 'offset', 'long')]);
    const fields = [
      { column: 'raw', path: '__value__', type: '', format: '' },
      { column: 'offset', path: '__offset__', type: '', format: '' },
    ];
    const s = new TestStream(h, openFor(ref, mapping({ format: MessageFormat.MESSAGE_FORMAT_TEXT, fields })));
    const letters = ['a', 'b', 'c', 'd'];
    for (const [i, letter] of letters.entries()) {
      const ack = await s.sendRange(
        'raw',
        0,
        3 * i,
        [0, 1, 2].map(() => letter.repeat(40_000)),
      );
      assert.deepEqual([ack.rows, ack.errors], [3, 0]);
    }
    const [report] = await flushAndWait(h, ref);
    const rows = await query(
      `SELECT "offset", octet_length(raw) AS n, length(replace(decode(raw), left(decode(raw), 1), '')) AS others, left(decode(raw), 1) AS letter
       FROM read_parquet(${sqlList(report.files.map((f) => f.filePath))}) ORDER BY "offset"`,
    );
    assert.deepEqual(
      rows.map((r) => [Number(r.offset), Number(r.n), Number(r.others), r.letter]),
      letters.flatMap((letter, i) => [0, 1, 2].map((k) => [3 * i + k, 40_000, 0, letter])),
    );
    s.end();
    assert.equal(await s.ended, null);
  });

  it("writes seed 002's pt partition (spaces, colons) under an encoded directory that DuckDB reads back", async () => {
    const pt = {
      column: 'pt',
      timeSource: TimeSource.TIME_SOURCE_RECORD_TIME,
      granularity: Granularity.GRANULARITY_MINUTE,
      timeZone: 'UTC',
      field: '',
      expression: '',
      value: '',
    };
    const { ref, location } = await createTable(h, 'by_pt', [field(1, 'id', 'long'), field(2, 'pt', 'string')], {
      specId: 0,
      fields: [{ sourceId: 2, fieldId: 1000, name: 'pt', transform: 'identity', sourceName: '' }],
    });
    const s = new TestStream(h, openFor(ref, flattenMapping({ partitionBy: pt })));
    await s.sendRange('t', 0, 0, ['{"id":1}'], { timestampMs: Date.UTC(2023, 6, 14, 13, 16, 5) });
    await s.sendRange('t', 0, 1, ['{"id":2}'], { timestampMs: Date.UTC(2023, 6, 14, 13, 17, 0) });
    const [report] = await flushAndWait(h, ref);
    assert.deepEqual(report.files.map((f) => f.filePath.slice(location.length).replace(/[^/]+\.parquet$/, '')).sort(), [
      '/data/pt=07-14-2023%2013%3A16/',
      '/data/pt=07-14-2023%2013%3A17/',
    ]);
    assert.deepEqual(report.files.map((f) => (f.partition[0].value!.kind as { value: string }).value).sort(), [
      '07-14-2023 13:16',
      '07-14-2023 13:17',
    ]);
    const rows = await query(`SELECT id, pt FROM read_parquet(${sqlList(report.files.map((f) => f.filePath))}) ORDER BY id`);
    assert.deepEqual(
      rows.map((r) => [Number(r.id), r.pt]),
      [
        [1, '07-14-2023 13:16'],
        [2, '07-14-2023 13:17'],
      ],
    );
  });

  it('refuses a batch whose cover does not continue the previous one, naming the partition and offsets, and deletes the unreported files', async () => {
    const { ref, location } = await createTable(h, 'gaps', [field(1, 'id', 'long')]);
    const s = new TestStream(h, openFor(ref, flattenMapping()));
    await s.sendRange('t', 3, 100, ['{"id":1}', '{"id":2}']);
    await flushAndWait(h, ref); // reported files stay
    await s.sendRange('t', 3, 102, ['{"id":3}']);
    const reported = await filesUnder(join(location, 'data'));
    assert.equal(reported.length, 1);
    await assert.rejects(s.sendRange('t', 3, 104, ['{"id":5}']), (err: { code: number; details: string }) => {
      assert.equal(err.code, status.INVALID_ARGUMENT);
      assert.match(err.details, /t\[3\].*starts at offset 104 but the previous batch ended at 103 \(offsets 103\.\.103 are missing\)/);
      return true;
    });
    // The rows of offset 102 were never reported: their file is gone (none was closed yet), the reported one stays.
    await waitFor('only the reported file left', async () => (await filesUnder(join(location, 'data'))).length === 1);
    assert.deepEqual(await filesUnder(join(location, 'data')), reported);
  });

  it('refuses an overlapping batch and a record outside its batch cover', async () => {
    const { ref } = await createTable(h, 'overlaps', [field(1, 'id', 'long')]);
    const s1 = new TestStream(h, openFor(ref, flattenMapping()));
    await s1.sendRange('t', 0, 0, ['{"id":1}', '{"id":2}']);
    await assert.rejects(s1.sendRange('t', 0, 1, ['{"id":2}']), /offsets 1\.\.1 were already covered/);
    const s2 = new TestStream(h, openFor(ref, flattenMapping()));
    await assert.rejects(
      s2.send([rec('t', 0, 7, '{"id":1}')], [{ topic: 't', partition: 0, startOffset: 0, endOffset: 5 }]),
      /offset 7 lies outside the batch's covers/,
    );
  });

  it('a broken (cancelled) stream deletes its unreported files, including rolled ones, and keeps the reported ones', async () => {
    const h2 = await startTransformationStack({ env: { TRANSFORMATION_TARGET_FILE_BYTES: '1024' } });
    try {
      const { ref, location } = await createTable(h2, 'rolls', [field(1, 'id', 'long'), field(2, 'pad', 'string')]);
      const s = new TestStream(h2, openFor(ref, flattenMapping()));
      const pad = 'x'.repeat(400);
      await s.sendRange(
        't',
        0,
        0,
        Array.from({ length: 20 }, (_, i) => JSON.stringify({ id: i, pad })),
      );
      const [report] = await flushAndWait(h2, ref);
      assert.ok(report.files.length > 1, `rolled into several files (${report.files.length})`);
      assert.equal(
        report.files.reduce((n, f) => n + f.recordCount, 0),
        20,
      );
      const reported = await filesUnder(join(location, 'data'));
      await s.sendRange(
        't',
        0,
        20,
        Array.from({ length: 20 }, (_, i) => JSON.stringify({ id: 100 + i, pad })),
      );
      await waitFor('rolled unreported files on disk', async () => (await filesUnder(join(location, 'data'))).length > reported.length);
      s.cancel();
      await waitFor('unreported files deleted', async () => (await filesUnder(join(location, 'data'))).length === reported.length);
      assert.deepEqual(await filesUnder(join(location, 'data')), reported);
      for (const f of report.files) assert.ok(existsSync(f.filePath));
    } finally {
      await h2.stop();
    }
  });

  it('reports only offsets when every record was refused, and an empty report when nothing was covered', async () => {
    const { ref } = await createTable(h, 'skips', [field(1, 'id', 'long')]);
    const s = new TestStream(
      h,
      openFor(ref, flattenMapping({ errorPolicy: { kind: ErrorPolicyKind.ERROR_POLICY_KIND_SKIP, maxErrors: 0, errorTopic: '' } })),
    );
    const ack = await s.sendRange('t', 0, 5, ['{"nope":1}', 'not json']);
    assert.deepEqual(
      [ack.rows, ack.errors, ack.errorReasons],
      [
        0,
        2,
        [
          { reason: 'invalid_json', count: 1 },
          { reason: 'unknown_field', count: 1 },
        ],
      ],
    );
    const [r1] = await flushAndWait(h, ref);
    assert.deepEqual([r1.files, r1.offsets, r1.recordCount], [[], [{ topic: 't', partition: 0, startOffset: 5, endOffset: 7 }], 0]);
    const [r2] = await flushAndWait(h, ref);
    assert.deepEqual([r2.files, r2.offsets], [[], []]);
  });

  it('answers a flush only for its own job, and publishes heartbeats with buffered bytes, alive=false at the end', async () => {
    const { ref } = await createTable(h, 'beats', [field(1, 'id', 'long')]);
    const hb = collectHeartbeats(h, ref);
    try {
      const s = new TestStream(h, openFor(ref, flattenMapping(), { job: 'jobA' }));
      await s.sendRange('t', 0, 0, ['{"id":1}']);
      await waitFor('a beat with the buffered bytes', () =>
        hb.beats.some((b) => b.workerId === s.open.workerId && b.alive && b.bufferedBytes === 8),
      );
      const ignored = publishFlush(h, ref, 'jobB');
      const [mine] = await flushAndWait(h, ref, 1, 'jobA');
      assert.equal(mine.job, 'jobA');
      assert.equal(h.recorder!.reportsOf(ignored).length, 0);
      await waitFor('a beat after the flush, nothing buffered', () =>
        hb.beats.some((b) => b.workerId === s.open.workerId && b.alive && b.bufferedBytes === 0),
      );
      s.end();
      await s.ended;
      await waitFor('the goodbye beat', () => hb.beats.some((b) => b.workerId === s.open.workerId && !b.alive));
      const mineBeats = hb.beats.filter((b) => b.workerId === s.open.workerId);
      assert.ok(mineBeats.every((b) => b.job === 'jobA' && b.table?.table === 'beats'));
    } finally {
      hb.stop();
    }
  });

  it('asks the coordinator for a flush once the buffered bytes pass flush_buffer_bytes', async () => {
    const { ref } = await createTable(h, 'buffers', [field(1, 'id', 'long'), field(2, 's', 'string')]);
    const s = new TestStream(h, openFor(ref, flattenMapping(), { job: 'bufjob', flushBufferBytes: 1000 }));
    await s.sendRange('t', 0, 0, [JSON.stringify({ id: 1, s: 'x'.repeat(100) })]);
    assert.equal(h.recorder!.triggers.filter((t) => t.job === 'bufjob').length, 0);
    await s.sendRange('t', 0, 1, [JSON.stringify({ id: 2, s: 'x'.repeat(1000) })]);
    await waitFor('TriggerFlush', () => h.recorder!.triggers.some((t) => t.job === 'bufjob'), { timeoutMs: 10_000 });
    await s.sendRange('t', 0, 2, [JSON.stringify({ id: 3, s: 'x'.repeat(1000) })]);
    assert.deepEqual(
      h.recorder!.triggers.filter((t) => t.job === 'bufjob').map((t) => ({ table: t.table, job: t.job })),
      [{ table: ref, job: 'bufjob' }],
    );
  });

  it('retries a report while the commit service is UNAVAILABLE; a refused report ends the stream with ABORTED', async () => {
    const { ref } = await createTable(h, 'retries', [field(1, 'id', 'long')]);
    const s = new TestStream(h, openFor(ref, flattenMapping()));
    await s.sendRange('t', 0, 0, ['{"id":1}']);
    h.recorder!.unavailableReports = 2;
    const [r] = await flushAndWait(h, ref);
    assert.equal(r.recordCount, 1);
    assert.equal(h.recorder!.unavailableReports, 0);

    await s.sendRange('t', 0, 1, ['{"id":2}']);
    h.recorder!.refuse = true;
    try {
      publishFlush(h, ref);
      const end = await s.ended;
      assert.equal(end?.code, status.ABORTED);
      assert.match(end!.details, /did not accept the report.*re-read it from the committed offsets/);
    } finally {
      h.recorder!.refuse = false;
    }
  });

  it('refuses bad opens with clear statuses', async () => {
    const { ref } = await createTable(h, 'opens', [field(1, 'id', 'long')]);
    const missing = new TestStream(h, openFor({ database: 'tdb', table: 'no_such' }, flattenMapping()));
    const e1 = await missing.ended;
    assert.deepEqual([e1?.code, e1?.details], [status.FAILED_PRECONDITION, 'table tdb.no_such does not exist in the catalog']);

    const badMapping = new TestStream(h, openFor(ref, flattenMapping({ fields: [{ column: 'nope', path: 'a', type: '', format: '' }] })));
    const e2 = await badMapping.ended;
    assert.equal(e2?.code, status.FAILED_PRECONDITION, 'the job cannot go on against this table: ingestion fails it');
    assert.match(e2!.details, /mapping for table tdb\.opens: .*"nope"/);

    const a = new TestStream(h, openFor(ref, flattenMapping(), { workerId: 'dup-worker' }));
    await a.sendRange('t', 0, 0, ['{"id":1}']);
    const b = new TestStream(h, openFor(ref, flattenMapping(), { workerId: 'dup-worker' }));
    const e3 = await b.ended;
    assert.equal(e3?.code, status.ALREADY_EXISTS);
    a.end();

    const noOpen = new TestStream(h, openFor(ref, flattenMapping()));
    noOpen.write({ message: { $case: 'open', value: noOpen.open } });
    const e4 = await noOpen.ended;
    assert.equal(e4?.code, status.INVALID_ARGUMENT);
    assert.match(e4!.details, /TransformOpen may only be sent once/);
  });

  it('stopping the service ends open streams with UNAVAILABLE at a batch boundary and deletes their unreported files', async () => {
    const h2 = await startTransformationStack();
    try {
      const { ref, location } = await createTable(h2, 'drains', [field(1, 'id', 'long')]);
      const s = new TestStream(h2, openFor(ref, flattenMapping()));
      await s.sendRange('t', 0, 0, ['{"id":1}']);
      const stopping = h2.transformation.stop();
      const end = await s.ended;
      assert.equal(end?.code, status.UNAVAILABLE);
      assert.match(end!.details, /shutting down/);
      assert.deepEqual(await filesUnder(join(location, 'data')), []);
      const late = new TestStream(h2, openFor(ref, flattenMapping()));
      assert.equal((await late.ended)?.code, status.UNAVAILABLE);
      await stopping;
    } finally {
      await h2.stop();
    }
  });
  it('serves InferSchema and PreviewMapping over gRPC, and refuses bad requests with INVALID_ARGUMENT', async () => {
    const samples = [
      rec('t', 0, 0, '{"id":1,"name":"a","info":{"x":1}}'),
      rec('t', 0, 1, '{"id":3000000000,"name":null,"info":{"x":2}}'),
      rec('t', 0, 2, 'oops'),
    ];
    const inferred = await h.client.inferSchema({ samples, mapping: flattenMapping() });
    assert.deepEqual(
      inferred.fields.map((f) => [f.name, f.type?.kind?.$case === 'primitive' ? f.type.kind.value : '?', f.required, f.sample]),
      [
        ['id', 'long', false, '1'],
        ['name', 'string', false, 'a'],
        ['info', 'string', false, '{"x":1}'],
      ],
    );
    assert.deepEqual(
      inferred.schema?.fields.map((f) => [f.id, f.name]),
      [
        [1, 'id'],
        [2, 'name'],
        [3, 'info'],
      ],
    );
    assert.equal(inferred.warnings.length, 1);
    assert.match(inferred.warnings[0], /offset 2: skipped/);

    const preview = await h.client.previewMapping({ samples, mapping: flattenMapping(), schema: inferred.schema });
    assert.deepEqual(
      preview.rows.map((r) => [r.offset, r.rowJson, r.error === '' ? '' : 'error']),
      [
        [0, '{"id":1,"name":"a","info":"{\\"x\\":1}"}', ''],
        [1, '{"id":3000000000,"name":null,"info":"{\\"x\\":2}"}', ''],
        [2, '', 'error'],
      ],
    );
    assert.match(preview.rows[2].error, /not valid JSON.*offset 2/);

    await assert.rejects(
      h.client.inferSchema({ samples: [rec('t', 0, 0, '{"a.b":1,"a":{"b":2}}')], mapping: flattenMapping({ flattenLevel: 2 }) }),
      (e: { code: number; details: string }) =>
        e.code === status.INVALID_ARGUMENT && e.details.startsWith('fields "a.b" and a.b both become column "a_b" at flatten level 2'),
    );
    await assert.rejects(
      h.client.inferSchema({ samples: [], mapping: flattenMapping() }),
      (e: { code: number; details: string }) => e.code === status.INVALID_ARGUMENT && /samples is empty/.test(e.details),
    );
    await assert.rejects(
      h.client.previewMapping({
        samples,
        mapping: flattenMapping({ fields: [{ column: 'missing', path: 'id', type: '', format: '' }] }),
        schema: inferred.schema,
      }),
      (e: { code: number; details: string }) => e.code === status.INVALID_ARGUMENT && /"missing"/.test(e.details),
    );
  });
});

const sqlList = (paths: string[]) => `[${paths.map((p) => `'${p.replaceAll("'", "''")}'`).join(', ')}]`;
