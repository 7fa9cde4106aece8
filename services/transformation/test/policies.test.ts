/**
 * Dirty-data policies and bad input through the real Transform stream: FAIL, SKIP,
 * SKIP_UP_TO, ERROR_TOPIC (read back from the dev broker with kafkajs) and ERROR_TABLE
 * (Parquet files of the error table, reported in the same flush).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { status } from '@grpc/grpc-js';
import { Kafka, logLevel } from 'kafkajs';
import { startDevBroker, type DevBroker } from '#kafka-broker/index.js';
import type { TransformOpen } from '#shared/gen/sluice/v1/transformation.js';
import { ErrorPolicyKind, Granularity, TimeSource, type ErrorPolicy, type MappingSpec } from '#shared/gen/sluice/v1/types.js';
import { errorTableColumns } from '../src/core/index.js';
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
import { field, flattenMapping } from '#test-support/builders.js';
import { waitFor } from '#test-support/wait.js';

const SEED_COLUMNS = [
  field(1, 'topic', 'string'),
  field(2, 'partition', 'long'),
  field(3, 'offset', 'long'),
  field(4, 'id', 'long'),
  field(5, 'name', 'string'),
  field(6, 'extendinfo', 'string'),
  field(7, 'pt', 'string'),
];
const PT = {
  column: 'pt',
  timeSource: TimeSource.TIME_SOURCE_RECORD_TIME,
  granularity: Granularity.GRANULARITY_MINUTE,
  timeZone: 'UTC',
  field: '',
  expression: '',
  value: '',
};
const SEED_AT = Date.UTC(2023, 6, 14, 13, 16);
/** Seed 002's error-topic example: offsets 2, 3, 4 hold ids 100, 101 (an unknown field) and 102. */
const SEED_RECORDS = [
  ['100', '{"id":100,"name":"json-3","extendinfo":{"region":"beijing","gender":"M"}}'],
  ['101', '{"id":101,"name":"json-4","extendinfos":"null"}'],
  ['102', '{"id":102,"name":"json-5","extendinfo":{"region":"beijing","gender":"M"}}'],
];

/** The refused record (101) carries headers: text, bytes that are not UTF-8, and one without a value. */
const SEED_HEADERS = [
  [],
  [
    { key: 'origin', value: Buffer.from('seed') },
    { key: 'sig', value: Buffer.from([0xff, 0x00]) },
    { key: 'empty', value: undefined },
  ],
];

const seedMapping = (errorPolicy: ErrorPolicy): MappingSpec => flattenMapping({ includeFixedColumns: true, partitionBy: PT, errorPolicy });
const policy = (kind: ErrorPolicyKind, more: Partial<ErrorPolicy> = {}): ErrorPolicy => ({ kind, maxErrors: 0, errorTopic: '', ...more });

let n = 0;
const openFor = (table: { database: string; table: string }, mapping: MappingSpec): TransformOpen => ({
  job: 'pjob',
  table,
  mapping,
  workerId: `pw-${process.pid}-${++n}`,
  flushBufferBytes: 0,
});
const sendSeed = (s: TestStream) =>
  s.send(
    SEED_RECORDS.map(([k, v], i) => ({
      ...rec('flatten_test', 0, 2 + i, v, { key: k, timestampMs: SEED_AT }),
      headers: SEED_HEADERS[i] ?? [],
    })),
    [{ topic: 'flatten_test', partition: 0, startOffset: 2, endOffset: 5 }],
  );

describe('dirty-data policies through the stream', () => {
  let h: TransformationStack;
  let broker: DevBroker;
  before(async () => {
    [h, broker] = await Promise.all([startTransformationStack(), startDevBroker()]);
  });
  after(async () => {
    await Promise.all([h.stop(), broker.stop()]);
  });

  it('ERROR_TOPIC (seed 002): record 101 comes back as an error record that lands on the error topic; 100 and 102 are kept', async () => {
    const { ref } = await createTable(h, 'seed_topic', SEED_COLUMNS);
    const s = new TestStream(
      h,
      openFor(ref, seedMapping(policy(ErrorPolicyKind.ERROR_POLICY_KIND_ERROR_TOPIC, { errorTopic: 'runtime_error' }))),
    );
    const ack = await sendSeed(s);
    assert.deepEqual([ack.rows, ack.errors, ack.errorReasons], [2, 1, [{ reason: 'unknown_field', count: 1 }]]);
    assert.equal(ack.errorRecords.length, 1);

    // Ingestion owns the producer (BatchAck.error_records); produce them as it does and read them back.
    const kafka = new Kafka({ clientId: 'transform-test', brokers: [broker.address], logLevel: logLevel.NOTHING });
    const producer = kafka.producer({ allowAutoTopicCreation: true });
    await producer.connect();
    await producer.sendBatch({
      topicMessages: ack.errorRecords.map((r) => ({
        topic: r.topic,
        messages: [
          { key: r.key ?? null, value: r.value ?? null, headers: Object.fromEntries(r.headers.map((x) => [x.key, x.value ?? ''])) },
        ],
      })),
    });
    await producer.disconnect();
    s.confirmErrorsProduced(ack.sequence);
    const consumer = kafka.consumer({ groupId: `g-${process.pid}` });
    await consumer.connect();
    await consumer.subscribe({ topic: 'runtime_error', fromBeginning: true });
    const got = await new Promise<{ key: string; value: string; headers: Record<string, string> }>((resolve) => {
      void consumer.run({
        eachMessage: async ({ message }) =>
          resolve({
            key: message.key!.toString(),
            value: message.value!.toString(),
            headers: Object.fromEntries(Object.entries(message.headers ?? {}).map(([k, v]) => [k, String(v)])),
          }),
      });
    });
    await consumer.disconnect();
    assert.equal(got.key, '101');
    assert.equal(got.value, SEED_RECORDS[1][1]);
    assert.deepEqual(
      [
        got.headers['sluice.error.reason'],
        got.headers['sluice.source.topic'],
        got.headers['sluice.source.partition'],
        got.headers['sluice.source.offset'],
      ],
      ['unknown_field', 'flatten_test', '0', '3'],
    );
    assert.match(got.headers['sluice.error.message'], /extendinfos/);

    const [report] = await flushAndWait(h, ref);
    assert.deepEqual(report.offsets, [{ topic: 'flatten_test', partition: 0, startOffset: 2, endOffset: 5 }]);
    const rows = await query(
      `SELECT topic, "partition", "offset", id, name, extendinfo, pt FROM read_parquet('${report.files[0].filePath}') ORDER BY id`,
    );
    assert.deepEqual(
      rows.map((r) => Object.values(r).map((v) => (typeof v === 'bigint' ? Number(v) : v))),
      [
        ['flatten_test', 0, 2, 100, 'json-3', '{"region":"beijing","gender":"M"}', '07-14-2023 13:16'],
        ['flatten_test', 0, 4, 102, 'json-5', '{"region":"beijing","gender":"M"}', '07-14-2023 13:16'],
      ],
    );
  });

  it("ERROR_TOPIC: a flush reports only after ingestion confirms the covered batches' error records produced; batches go on meanwhile", async () => {
    const { ref } = await createTable(h, 'seed_held', SEED_COLUMNS);
    const s = new TestStream(
      h,
      openFor(ref, seedMapping(policy(ErrorPolicyKind.ERROR_POLICY_KIND_ERROR_TOPIC, { errorTopic: 'runtime_error' }))),
    );
    const first = await sendSeed(s); // batch 1: record 101 goes to the error topic
    assert.equal(first.errorRecords.length, 1);
    const beats = collectHeartbeats(h, ref);
    const flushId = publishFlush(h, ref);
    // The cut empties the open files: a heartbeat says so (buffered bytes back to 0).
    await waitFor('the flush cut', () => beats.beats.some((b) => b.workerId === s.open.workerId && b.bufferedBytes === 0));
    beats.stop();
    // Batches after the cut are transformed and acknowledged while the report waits.
    const second = await s.sendRange('flatten_test', 0, 5, ['{"id":103,"name":"json-6","extendinfo":{}}']);
    assert.equal(second.rows, 1);
    await new Promise((r) => setTimeout(r, 300));
    assert.deepEqual(h.recorder!.reportsOf(flushId), [], 'no report before the confirmation');
    s.confirmErrorsProduced(first.sequence);
    await waitFor('the report after the confirmation', () => h.recorder!.reportsOf(flushId).length === 1, { timeoutMs: 10_000 });
    const [report] = h.recorder!.reportsOf(flushId);
    assert.deepEqual(
      report.offsets,
      [{ topic: 'flatten_test', partition: 0, startOffset: 2, endOffset: 5 }],
      'the cut was at the flush, before batch 2',
    );
    assert.equal(report.recordCount, 2);
    // Batch 2 had no error records: the next flush owes nothing and reports at once.
    const [next] = await flushAndWait(h, ref);
    assert.deepEqual(next.offsets, [{ topic: 'flatten_test', partition: 0, startOffset: 5, endOffset: 6 }]);
    s.end();
    assert.equal(await s.ended, null);
  });

  it('ERROR_TOPIC: a report still unconfirmed at the flush deadline ends the stream with ABORTED and is never sent', async () => {
    const { ref, location } = await createTable(h, 'seed_unconfirmed', SEED_COLUMNS);
    const s = new TestStream(
      h,
      openFor(ref, seedMapping(policy(ErrorPolicyKind.ERROR_POLICY_KIND_ERROR_TOPIC, { errorTopic: 'runtime_error' }))),
    );
    await sendSeed(s);
    const flushId = publishFlush(h, ref, '', Date.now() + 400);
    const end = await s.ended;
    assert.equal(end?.code, status.ABORTED);
    assert.match(end!.details, /the error records of batch 1 were not confirmed produced to the error topic by the flush deadline/);
    assert.deepEqual(h.recorder!.reportsOf(flushId), []);
    await waitFor('the unreported files deleted', async () => (await filesUnder(`${location}/data`)).length === 0);
  });

  it('ERROR_TOPIC: ErrorsProduced naming a batch never acknowledged is refused', async () => {
    const { ref } = await createTable(h, 'seed_badconfirm', SEED_COLUMNS);
    const s = new TestStream(
      h,
      openFor(ref, seedMapping(policy(ErrorPolicyKind.ERROR_POLICY_KIND_ERROR_TOPIC, { errorTopic: 'runtime_error' }))),
    );
    await sendSeed(s);
    s.confirmErrorsProduced(7);
    const end = await s.ended;
    assert.equal(end?.code, status.INVALID_ARGUMENT);
    assert.match(end!.details, /ErrorsProduced names batch 7, but the batches acknowledged so far end at 1/);
  });

  it('ERROR_TABLE: refused records become rows of the error table, reported in the same flush without offsets', async () => {
    const errorFields = errorTableColumns.map((c, i) => field(i + 1, c.name, c.type, c.required));
    const { ref: errRef, location: errLocation } = await createTable(h, 'seed_errors', errorFields);
    const { ref } = await createTable(h, 'seed_table', SEED_COLUMNS);
    const s = new TestStream(h, openFor(ref, seedMapping(policy(ErrorPolicyKind.ERROR_POLICY_KIND_ERROR_TABLE, { errorTable: errRef }))));
    const ack = await sendSeed(s);
    assert.deepEqual([ack.rows, ack.errors, ack.errorRecords], [2, 1, []]);
    const reports = await flushAndWait(h, ref, 2);
    const errReport = reports.find((r) => r.table?.table === 'seed_errors')!;
    const mainReport = reports.find((r) => r.table?.table === 'seed_table')!;
    assert.ok(reports.indexOf(errReport) < reports.indexOf(mainReport), 'the error table is reported first');
    assert.deepEqual(errReport.offsets, []);
    assert.equal(errReport.job, 'pjob');
    assert.equal(errReport.recordCount, 1);
    assert.ok(errReport.files[0].filePath.startsWith(`${errLocation}/data/`));
    assert.deepEqual(mainReport.offsets, [{ topic: 'flatten_test', partition: 0, startOffset: 2, endOffset: 5 }]);
    assert.equal(mainReport.recordCount, 2);
    assert.equal(mainReport.errorReports, 1, 'the data report says an error report came first');
    assert.equal(errReport.errorReports, undefined);
    const [row] = await query(
      `SELECT source_topic, source_partition, source_offset, epoch_ms(source_timestamp) AS ts, decode(key) AS key, decode(value) AS value, reason, headers FROM read_parquet('${errReport.files[0].filePath}')`,
    );
    assert.deepEqual(
      { ...row, source_offset: Number(row.source_offset), ts: Number(row.ts) },
      {
        source_topic: 'flatten_test',
        source_partition: 0,
        source_offset: 3,
        ts: SEED_AT,
        key: '101',
        value: SEED_RECORDS[1][1],
        reason: 'unknown_field: field "extendinfos" has no column in the table',
        headers: '[{"key":"origin","value":"seed"},{"key":"sig","base64":"/wA="},{"key":"empty"}]',
      },
    );
  });

  it('ERROR_TABLE with an error table that cannot hold refused records is refused when the stream opens', async () => {
    const { ref: errRef } = await createTable(h, 'bad_errors', [field(1, 'source_topic', 'long', true)]);
    const { ref } = await createTable(h, 'seed_table2', SEED_COLUMNS);
    const s = new TestStream(h, openFor(ref, seedMapping(policy(ErrorPolicyKind.ERROR_POLICY_KIND_ERROR_TABLE, { errorTable: errRef }))));
    const end = await s.ended;
    assert.equal(end?.code, status.FAILED_PRECONDITION);
    assert.match(end!.details, /error table tdb\.bad_errors: column "source_topic" \(long, required\) cannot hold refused records/);
  });

  it('FAIL (and an unspecified policy) ends the stream with FAILED_PRECONDITION naming topic, partition, offset and reason', async () => {
    const { ref } = await createTable(h, 'seed_fail', SEED_COLUMNS);
    for (const p of [policy(ErrorPolicyKind.ERROR_POLICY_KIND_FAIL), policy(ErrorPolicyKind.ERROR_POLICY_KIND_UNSPECIFIED)]) {
      const s = new TestStream(h, openFor(ref, seedMapping(p)));
      await assert.rejects(sendSeed(s), (err: { code: number; details: string }) => {
        assert.equal(err.code, status.FAILED_PRECONDITION);
        assert.equal(
          err.details,
          'dirty record refused (unknown_field): field "extendinfos" has no column in the table (topic flatten_test, partition 0, offset 3)',
        );
        return true;
      });
    }
  });

  it('SKIP counts and drops; SKIP_UP_TO skips max_errors records, then fails on the next', async () => {
    const { ref } = await createTable(h, 'seed_skip', SEED_COLUMNS);
    const skip = new TestStream(h, openFor(ref, seedMapping(policy(ErrorPolicyKind.ERROR_POLICY_KIND_SKIP))));
    const a = await sendSeed(skip);
    assert.deepEqual([a.rows, a.errors, a.errorReasons, a.errorRecords], [2, 1, [{ reason: 'unknown_field', count: 1 }], []]);

    const upTo = new TestStream(h, openFor(ref, seedMapping(policy(ErrorPolicyKind.ERROR_POLICY_KIND_SKIP_UP_TO, { maxErrors: 2 }))));
    const bad = (offset: number) => rec('t', 0, offset, '{"unknown":1}');
    const b1 = await upTo.send([bad(0), rec('t', 0, 1, '{"id":1}'), bad(2)], [{ topic: 't', partition: 0, startOffset: 0, endOffset: 3 }]);
    assert.deepEqual([b1.rows, b1.errors], [1, 2]);
    await assert.rejects(
      upTo.send([bad(3)], [{ topic: 't', partition: 0, startOffset: 3, endOffset: 4 }]),
      (err: { code: number; details: string }) => {
        assert.equal(err.code, status.FAILED_PRECONDITION);
        assert.match(
          err.details,
          /^dirty record refused \(unknown_field\): more than 2 dirty records; the last: .*\(topic t, partition 0, offset 3\)$/,
        );
        return true;
      },
    );
  });
});

describe('bad input through the stream never crashes the service', () => {
  let h: TransformationStack;
  before(async () => {
    h = await startTransformationStack();
  });
  after(async () => {
    await h.stop();
  });

  const deep = (levels: number) => `{"id":7,"name":${'['.repeat(levels)}${']'.repeat(levels)}}`;
  const CASES: { what: string; value: Buffer | string | undefined; reason: string | null }[] = [
    { what: 'invalid UTF-8', value: Buffer.from([0x7b, 0x22, 0x69, 0x64, 0x22, 0x3a, 0xff, 0x7d]), reason: 'invalid_utf8' },
    { what: 'truncated JSON', value: '{"id":1,"na', reason: 'invalid_json' },
    { what: 'a 10 MB message', value: `{"id":1,"name":"${'x'.repeat(10 * 1024 * 1024)}"}`, reason: 'too_large' },
    { what: '1000-level nesting (kept as JSON text)', value: deep(1000), reason: null },
    { what: '10000-level nesting (over the depth limit)', value: deep(10_000), reason: 'nesting_too_deep' },
    { what: '100000-level nesting', value: deep(100_000), reason: 'nesting_too_deep' },
    { what: 'an integer beyond int64', value: '{"id":9223372036854775808}', reason: 'out_of_range' },
    { what: 'NaN', value: '{"id":NaN}', reason: 'invalid_json' },
    { what: 'duplicate keys (the last wins)', value: '{"id":1,"id":2}', reason: null },
    { what: 'a BOM', value: Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{"id":3}')]), reason: null },
    { what: 'an empty message', value: Buffer.alloc(0), reason: 'empty' },
    { what: 'a null value (tombstone)', value: undefined, reason: 'null_value' },
  ];
  const mapping = (kind: ErrorPolicyKind): MappingSpec => flattenMapping({ errorPolicy: policy(kind) });

  it('with SKIP: each bad record is counted by reason, the good ones are written, the stream goes on', async () => {
    const { ref } = await createTable(h, 'bad_skip', [field(1, 'id', 'long'), field(2, 'name', 'string')]);
    const s = new TestStream(h, openFor(ref, mapping(ErrorPolicyKind.ERROR_POLICY_KIND_SKIP)));
    for (const [i, c] of CASES.entries()) {
      const ack = await s.sendRange('bad', 0, i, [c.value]);
      if (c.reason === null) assert.deepEqual([ack.rows, ack.errors], [1, 0], c.what);
      else assert.deepEqual([ack.rows, ack.errorReasons], [0, [{ reason: c.reason, count: 1 }]], c.what);
    }
    await s.sendRange('bad', 0, CASES.length, ['{"id":42,"name":"fine"}']);
    const [report] = await flushAndWait(h, ref);
    assert.deepEqual(report.offsets, [{ topic: 'bad', partition: 0, startOffset: 0, endOffset: CASES.length + 1 }]);
    const rows = await query(`SELECT id, length(name) AS len FROM read_parquet('${report.files[0].filePath}') ORDER BY id`);
    assert.deepEqual(
      rows.map((r) => [Number(r.id), r.len === null ? null : Number(r.len)]),
      [
        [2, null],
        [3, null],
        [7, 2000],
        [42, 4],
      ],
    );
  });

  it('with SKIP: a record with more headers than the limit is counted as too_many_headers, the stream goes on', async () => {
    const { ref } = await createTable(h, 'bad_headers', [field(1, 'id', 'long'), field(2, 'name', 'string')]);
    const s = new TestStream(h, openFor(ref, mapping(ErrorPolicyKind.ERROR_POLICY_KIND_SKIP)));
    const headers = Array.from({ length: 1001 }, (_, i) => ({ key: `h${i}`, value: Buffer.from('v') }));
    const covers = [{ topic: 'bad', partition: 0, startOffset: 0, endOffset: 2 }];
    const ack = await s.send([{ ...rec('bad', 0, 0, '{"id":1}'), headers }, rec('bad', 0, 1, '{"id":2}')], covers);
    assert.deepEqual([ack.rows, ack.errorReasons], [1, [{ reason: 'too_many_headers', count: 1 }]]);
  });

  it('with FAIL: each bad record ends only its own stream, with its reason; the service keeps serving', async () => {
    const { ref } = await createTable(h, 'bad_fail', [field(1, 'id', 'long'), field(2, 'name', 'string')]);
    for (const c of CASES.filter((x) => x.reason !== null)) {
      const s = new TestStream(h, openFor(ref, mapping(ErrorPolicyKind.ERROR_POLICY_KIND_FAIL)));
      await assert.rejects(s.sendRange('bad', 0, 0, [c.value]), (err: { code: number; details: string }) => {
        assert.equal(err.code, status.FAILED_PRECONDITION, c.what);
        assert.ok(err.details.startsWith(`dirty record refused (${c.reason}): `), `${c.what}: ${err.details.slice(0, 200)}`);
        assert.ok(err.details.endsWith('(topic bad, partition 0, offset 0)'), c.what);
        assert.ok(err.details.length < 500, `${c.what}: the message does not echo the payload`);
        return true;
      });
    }
    const ok = new TestStream(h, openFor(ref, mapping(ErrorPolicyKind.ERROR_POLICY_KIND_FAIL)));
    assert.equal((await ok.sendRange('bad', 0, 0, ['{"id":1}'])).rows, 1);
  });
});
