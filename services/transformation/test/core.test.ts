/** Coercion, bad input under every policy, partitions and transforms, inference and previews. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { status } from '@grpc/grpc-js';
import { SluiceError } from '#shared/errors.js';
import {
  ErrorPolicyKind,
  Granularity,
  MessageFormat,
  MessageMode,
  SchemaEvolution,
  TimeSource,
  type ErrorPolicy,
  type Schema,
} from '#shared/gen/sluice/v1/types.js';
import { parsePrimitive } from '#shared/iceberg/single-value.js';
import {
  compilePlan,
  DirtyDataPolicy,
  inferSchema,
  partitionOf,
  previewRows,
  RecordError,
  SpecError,
  transformRecord,
  grownSchema,
  SchemaGrowth,
  type Row,
} from '../src/core/index.js';
import { parseCsvRecord } from '../src/core/csv.js';
import { jsonDepthOver, MAX_JSON_DEPTH } from '../src/core/decode.js';
import { MAX_RECORD_HEADERS } from '../src/core/plan.js';
import { flatten } from '../src/core/flatten.js';
import { murmur3 } from '../src/core/murmur3.js';
import { inferSchemaRpc } from '../src/inspect.js';
import { parseTransform } from '#shared/iceberg/partition.js';
import { applyTransform } from '../src/core/transforms.js';
import { field, fixed, mapping, record, schema } from '#test-support/builders.js';

/** One JSON field `v` into a column of the given type; returns the value or the error message. */
function coerce(type: string, json: string, timeZone = '', format = ''): unknown {
  const plan = compilePlan({
    schema: schema(field(1, 'amount', type)),
    mapping: mapping({ timeZone, fields: [{ column: 'amount', path: 'v', type: '', format }] }),
  });
  const out = transformRecord(plan, record(`{"v":${json}}`, { topic: 't', partition: 1, offset: 7 }), { nowMs: 0 });
  return out instanceof RecordError ? out.message : (out as Row)[0];
}

const us = (iso: string) => Date.parse(iso) * 1000;
const coercions: [string, string, unknown, string?][] = [
  ['int', '42', 42],
  ['int', '"42"', 42],
  ['int', '2147483648', 'column "amount": 2147483648 is out of range for int (beyond 32 bits) (topic t, partition 1, offset 7)'],
  ['int', '1.5', 'column "amount": 1.5 is not a int (topic t, partition 1, offset 7)'],
  ['long', '9007199254740991', 9007199254740991],
  ['long', '"9223372036854775807"', 9223372036854775807n],
  ['long', '"9007199254740993"', 9007199254740993n],
  [
    'long',
    '"9223372036854775808"',
    'column "amount": 9223372036854775808 is out of range for long (beyond int64) (topic t, partition 1, offset 7)',
  ],
  [
    'long',
    '9223372036854775808',
    'column "amount": 9223372036854775808 is out of range for long (beyond int64) (topic t, partition 1, offset 7)',
  ],
  // JSON integers are exact to 64 bits: a literal JSON.parse would round is read again exactly.
  ['long', '9007199254740993', 9007199254740993n],
  ['long', '-9223372036854775808', -9223372036854775808n],
  ['long', '9223372036854775807', 9223372036854775807n],
  ['long', '1234567890123456', 1234567890123456],
  [
    'long',
    '1e20',
    'column "amount": 100000000000000000000 is out of range for long (a JSON number beyond ±2^53 written with an exponent or fraction loses precision; write it as an integer literal or a string) (topic t, partition 1, offset 7)',
  ],
  ['string', '9007199254740993', '9007199254740993'],
  [
    'string',
    '{"id":9007199254740993,"n":[-12345678901234567890,1.5],"s":"9007199254740993"}',
    '{"id":9007199254740993,"n":[-12345678901234567890,1.5],"s":"9007199254740993"}',
  ],
  ['string', '{"s":"12345678901234567"}', '{"s":"12345678901234567"}'],
  ['decimal(20,0)', '12345678901234567891', 12345678901234567891n],
  ['double', '9007199254740993', 9007199254740992],
  [
    'int',
    '9007199254740993',
    'column "amount": 9007199254740993 is out of range for int (beyond 32 bits) (topic t, partition 1, offset 7)',
  ],
  ['decimal(10,2)', '"12.34"', 1234n],
  ['decimal(10,2)', '12.3', 1230n],
  ['decimal(10,2)', '"-0.5"', -50n],
  ['decimal(10,2)', '"1e2"', 10000n],
  ['decimal(10,2)', '0.1', 10n],
  ['decimal(10,2)', '-99999999.99', -9999999999n],
  [
    'decimal(10,2)',
    '1.234',
    'column "amount": 1.234 is not a decimal(10, 2) (more than 2 decimal places) (topic t, partition 1, offset 7)',
  ],
  [
    'decimal(10,2)',
    '100000000',
    'column "amount": 100000000 is out of range for decimal(10, 2) (more than 10 digits) (topic t, partition 1, offset 7)',
  ],
  ['decimal(10,2)', '"12x"', 'column "amount": "12x" is not a decimal(10, 2) (topic t, partition 1, offset 7)'],
  [
    'decimal(10,2)',
    '"1.234"',
    'column "amount": "1.234" is not a decimal(10, 2) (more than 2 decimal places) (topic t, partition 1, offset 7)',
  ],
  [
    'decimal(4,2)',
    '"123.4"',
    'column "amount": "123.4" is out of range for decimal(4, 2) (more than 4 digits) (topic t, partition 1, offset 7)',
  ],
  ['boolean', 'true', true],
  ['boolean', '"false"', false],
  ['boolean', '"yes"', 'column "amount": "yes" is not a boolean (topic t, partition 1, offset 7)'],
  ['double', '"NaN"', Number.NaN],
  ['float', '1e300', 'column "amount": 1e+300 is out of range for float (beyond 32-bit floating point) (topic t, partition 1, offset 7)'],
  ['double', '2.5', 2.5],
  ['string', '{"a":[1,2]}', '{"a":[1,2]}'],
  ['string', '18', '18'],
  ['date', '"2023-07-14"', 19552],
  ['date', '"2023-02-30"', 'column "amount": "2023-02-30" is not a date (expected yyyy-mm-dd) (topic t, partition 1, offset 7)'],
  ['timestamp', '"2023-07-14 01:33:00"', us('2023-07-14T01:33:00Z')],
  ['timestamp', '"2023-07-14T01:33:00.123456"', us('2023-07-14T01:33:00Z') + 123456],
  ['timestamptz', '"2023-07-14 09:33:00"', us('2023-07-14T01:33:00Z'), 'Asia/Shanghai'],
  ['timestamptz', '"2023-07-14T09:33:00+08:00"', us('2023-07-14T01:33:00Z')],
  ['timestamp', '"2023-07-14T01:33:00Z"', us('2023-07-14T09:33:00Z'), 'Asia/Shanghai'],
  ['timestamptz', '1689298380000', us('2023-07-14T01:33:00Z')],
  ['timestamptz', '"2023-03-26 02:30:00"', us('2023-03-26T01:30:00Z'), 'Europe/Berlin'], // in the DST gap: moves forward
  ['timestamptz', '"2023-10-29 02:30:00"', us('2023-10-29T00:30:00Z'), 'Europe/Berlin'], // in the overlap: the earlier instant
  [
    'timestamp',
    '"13:00"',
    'column "amount": "13:00" is not a timestamp (expected yyyy-mm-dd[ hh:mm[:ss[.ffffff]]][offset]) (topic t, partition 1, offset 7)',
  ],
  ['time', '"01:00:00.5"', 3_600_500_000],
  ['binary', '"AAEC"', new Uint8Array([0, 1, 2])],
  ['uuid', '"F79C3E09-677C-4BBD-A479-3F349CB785E7"', 'f79c3e09-677c-4bbd-a479-3f349cb785e7'],
];
for (const [type, json, expected, tz] of coercions) {
  test(`coerce ${json} into ${type}${tz ? ` in ${tz}` : ''}`, () => {
    const got = coerce(type, json, tz);
    if (expected instanceof Uint8Array) assert.deepEqual(new Uint8Array(got as Uint8Array), expected);
    else assert.deepEqual(got, expected);
  });
}

test('epoch units from the field mapping format', () => {
  assert.equal(coerce('timestamptz', '1689298380', '', 'epoch_s'), us('2023-07-14T01:33:00Z'));
  assert.equal(coerce('timestamptz', '1689298380000000', '', 'epoch_us'), us('2023-07-14T01:33:00Z'));
});

// Bad input: each gives a per-record error (or the documented interpretation), never a throw.
const flattenPlan = () =>
  compilePlan({
    schema: schema(field(1, 'id', 'long'), field(2, 'name', 'string')),
    mapping: mapping({ format: MessageFormat.MESSAGE_FORMAT_FLATTEN }),
    limits: { maxRecordBytes: 1024 * 1024 },
  });
const deep = (n: number) => `{"id":1,"name":${'['.repeat(n)}${']'.repeat(n)}}`;
const badInputs: [string, Buffer | undefined, string | unknown[]][] = [
  ['invalid UTF-8', Buffer.from([0x7b, 0x22, 0x69, 0x64, 0x22, 0x3a, 0xff, 0x7d]), 'invalid_utf8'],
  ['truncated JSON', Buffer.from('{"id":1,"na'), 'invalid_json'],
  ['a 10 MB message', Buffer.alloc(10 * 1024 * 1024, 0x20), 'too_large'],
  ['1000-level nesting (kept as JSON text)', Buffer.from(deep(1000)), [1, '['.repeat(1000) + ']'.repeat(1000)]],
  ['10000-level nesting (over MAX_JSON_DEPTH, refused before parsing)', Buffer.from(deep(10000)), 'nesting_too_deep'],
  ['200000-level nesting', Buffer.from(deep(200000)), 'nesting_too_deep'],
  ['1024 levels, the most kept (the object is one more)', Buffer.from(deep(1023)), [1, '['.repeat(1023) + ']'.repeat(1023)]],
  ['1025 levels, the fewest refused', Buffer.from(deep(1024)), 'nesting_too_deep'],
  ['1025 unclosed brackets (refused as too deep before JSON.parse)', Buffer.from('['.repeat(1025)), 'nesting_too_deep'],
  ['an integer beyond int64', Buffer.from('{"id":92233720368547758070}'), 'out_of_range'],
  ['NaN (not JSON)', Buffer.from('{"id":NaN}'), 'invalid_json'],
  ['duplicate keys (last wins)', Buffer.from('{"id":1,"id":2,"name":"x"}'), [2, 'x']],
  ['a BOM (stripped)', Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{"id":1}')]), [1, null]],
  ['an empty message', Buffer.alloc(0), 'empty'],
  ['a null value (tombstone)', undefined, 'null_value'],
  ['a JSON array', Buffer.from('[1,2]'), 'not_an_object'],
  ['an unknown field', Buffer.from('{"id":1,"age":3}'), 'unknown_field'],
];
const policies: [string, ErrorPolicy, string][] = [
  ['FAIL', { kind: ErrorPolicyKind.ERROR_POLICY_KIND_FAIL, maxErrors: 0, errorTopic: '' }, 'fail'],
  ['SKIP', { kind: ErrorPolicyKind.ERROR_POLICY_KIND_SKIP, maxErrors: 0, errorTopic: '' }, 'skip'],
  ['SKIP_UP_TO 5', { kind: ErrorPolicyKind.ERROR_POLICY_KIND_SKIP_UP_TO, maxErrors: 5, errorTopic: '' }, 'skip'],
  ['ERROR_TOPIC', { kind: ErrorPolicyKind.ERROR_POLICY_KIND_ERROR_TOPIC, maxErrors: 0, errorTopic: 'errs' }, 'error_topic'],
  [
    'ERROR_TABLE',
    { kind: ErrorPolicyKind.ERROR_POLICY_KIND_ERROR_TABLE, maxErrors: 0, errorTopic: '', errorTable: { database: 'd', table: 'errors' } },
    'error_table',
  ],
];
for (const [name, value, expected] of badInputs) {
  test(`bad input: ${name}`, () => {
    const plan = flattenPlan();
    const rec = record(value, { offset: 9 });
    const out = transformRecord(plan, rec, { nowMs: 0 });
    if (Array.isArray(expected)) {
      assert.deepEqual(out, expected);
      return;
    }
    assert.ok(out instanceof RecordError, `expected a record error, got ${String(out)}`);
    assert.equal(out.reason, expected);
    assert.match(out.message, /\(topic topic_test, partition 0, offset 9\)$/);
    assert.ok(!out.message.includes('\n    at '), 'no stack trace in the message');
    for (const [pname, policy, action] of policies) {
      const p = new DirtyDataPolicy(policy);
      const d = p.decide(rec, out);
      assert.equal(d.action, action, pname);
      assert.deepEqual(p.errorCounts(), [{ reason: expected, count: 1 }], pname);
      if (d.action === 'error_table') {
        assert.equal(d.row.source_offset, 9);
        assert.equal(d.row.reason.startsWith(expected), true);
        assert.equal(d.row.value, rec.value ?? null);
      }
    }
  });
}

test('SKIP_UP_TO skips N records, then fails with the count and the last error', () => {
  const p = new DirtyDataPolicy({ kind: ErrorPolicyKind.ERROR_POLICY_KIND_SKIP_UP_TO, maxErrors: 2, errorTopic: '' });
  const err = new RecordError('invalid_json', 'value is not valid JSON').at({ topic: 't', partition: 0, offset: 1 });
  const actions = [1, 2, 3].map(() => p.decide(record('x'), err).action);
  assert.deepEqual(actions, ['skip', 'skip', 'fail']);
  assert.equal(p.refusedCount, 3);
});

const csvCases: [string, string, (string | null)[] | string][] = [
  ['plain', '1103,zhangsan,china', ['1103', 'zhangsan', 'china']],
  ['quoted delimiter', '1,"a,b",c', ['1', 'a,b', 'c']],
  ['embedded newline', '1,"line1\nline2",c', ['1', 'line1\nline2', 'c']],
  ['doubled quote', '1,"say ""hi""",c', ['1', 'say "hi"', 'c']],
  ['empty unquoted is null, quoted is empty', ',"",x', [null, '', 'x']],
  ['trailing CRLF', 'a,b\r\n', ['a', 'b']],
  ['unterminated quote', '1,"abc', 'unterminated quoted field 2'],
  ['line break outside quotes', 'a,b\nc,d', 'line break outside quotes'],
];
for (const [name, text, expected] of csvCases) {
  test(`CSV: ${name}`, () => {
    if (typeof expected === 'string')
      assert.throws(
        () => parseCsvRecord(text, { delimiter: ',', quote: '"' }),
        (e: unknown) => e instanceof RecordError && e.message.includes(expected),
      );
    else assert.deepEqual(parseCsvRecord(text, { delimiter: ',', quote: '"' }), expected);
  });
}

test('CSV with a custom delimiter and the wrong number of fields', () => {
  const plan = compilePlan({
    schema: schema(field(1, 'a', 'int'), field(2, 'b', 'string')),
    mapping: mapping({ format: MessageFormat.MESSAGE_FORMAT_CSV, csv: { delimiter: '|', quote: "'", columns: [] } }),
  });
  assert.deepEqual(transformRecord(plan, record("1|'x|y'"), { nowMs: 0 }), [1, 'x|y']);
  const bad = transformRecord(plan, record('1|2|3'), { nowMs: 0 });
  assert.ok(bad instanceof RecordError && bad.message.startsWith('value has 3 CSV fields, expected 2 (a, b)'), String(bad));
});

test('BINARY keeps bytes; JSON validates its value; TEXT keeps a tombstone as NULL', () => {
  const kv = schema(...fixed, field(4, 'key', 'binary'), field(5, 'value', 'binary'));
  const bin = compilePlan({ schema: kv, mapping: mapping({ format: MessageFormat.MESSAGE_FORMAT_BINARY, includeFixedColumns: true }) });
  const row = transformRecord(bin, record(Buffer.from([0xff, 0]), { keyText: 'k' }), { nowMs: 0 }) as Row;
  assert.deepEqual([...(row[4] as Uint8Array)], [0xff, 0]);
  const json = compilePlan({
    schema: schema(field(1, 'value', 'string')),
    mapping: mapping({ format: MessageFormat.MESSAGE_FORMAT_JSON, flattenLevel: 0 }),
  });
  assert.equal((transformRecord(json, record('{"a":'), { nowMs: 0 }) as RecordError).reason, 'invalid_json');
  assert.deepEqual(transformRecord(json, record(undefined), { nowMs: 0 }), [null]);
  const text = compilePlan({
    schema: schema(field(1, 'value', 'string')),
    mapping: mapping({ format: MessageFormat.MESSAGE_FORMAT_TEXT, mode: MessageMode.MESSAGE_MODE_VALUE }),
  });
  assert.deepEqual(transformRecord(text, record(undefined), { nowMs: 0 }), [null]);
});

const specErrors: [string, () => unknown, RegExp][] = [
  [
    'unknown time zone',
    () => compilePlan({ schema: schema(field(1, 'a', 'string')), mapping: mapping({ timeZone: 'Mars/Olympus' }) }),
    /not an IANA time zone/,
  ],
  [
    'DEFAULT mode with CSV',
    () =>
      compilePlan({
        schema: schema(field(1, 'a', 'string')),
        mapping: mapping({ format: MessageFormat.MESSAGE_FORMAT_CSV, mode: MessageMode.MESSAGE_MODE_DEFAULT }),
      }),
    /DEFAULT \(key and value\) applies to TEXT and BINARY only/,
  ],
  [
    'flatten level 5',
    () =>
      compilePlan({
        schema: schema(field(1, 'a', 'string')),
        mapping: mapping({ format: MessageFormat.MESSAGE_FORMAT_FLATTEN, flattenLevel: 5 }),
      }),
    /outside 0..4/,
  ],
  [
    'bad path',
    () =>
      compilePlan({
        schema: schema(field(1, 'a', 'string')),
        mapping: mapping({ fields: [{ column: 'a', path: 'c[x]', type: '', format: '' }] }),
      }),
    /field path "c\[x\]" is invalid/,
  ],
  [
    'required column unmapped',
    () =>
      compilePlan({
        schema: schema(field(1, 'a', 'string', true), field(2, 'b', 'string')),
        mapping: mapping({ fields: [{ column: 'b', path: 'b', type: '', format: '' }] }),
      }),
    /column "a" is required but nothing maps to it/,
  ],
  [
    'nested column',
    () =>
      compilePlan({
        schema: schema(field(1, 's', { kind: { $case: 'struct', value: { fields: [] } } })),
        mapping: mapping({}),
      }),
    /nested columns are not written yet/,
  ],
  [
    'type disagreement',
    () =>
      compilePlan({
        schema: schema(field(1, 'a', 'string')),
        mapping: mapping({ fields: [{ column: 'a', path: 'a', type: 'long', format: '' }] }),
      }),
    /mapping says long but the table column is string/,
  ],
  [
    'bad expression',
    () =>
      compilePlan({
        schema: schema(field(1, 'pt', 'string')),
        mapping: mapping({
          partitionBy: {
            column: 'pt',
            timeSource: TimeSource.TIME_SOURCE_RECORD_TIME,
            granularity: Granularity.GRANULARITY_DAY,
            timeZone: '',
            field: '',
            expression: '$[yyyyqq]',
            value: '',
          },
        }),
      }),
    /unknown format element/,
  ],
];
for (const [name, fn, re] of specErrors) {
  test(`spec error: ${name}`, () => assert.throws(fn, (e: unknown) => e instanceof SpecError && re.test(e.message)));
}

test('pt from record time, processing time and a field, in a time zone', () => {
  const cols = schema(field(1, 'ts', 'timestamptz'), field(2, 'pt', 'string'));
  const make = (pb: object) =>
    compilePlan({
      schema: cols,
      mapping: mapping({
        format: MessageFormat.MESSAGE_FORMAT_FLATTEN,
        partitionBy: {
          column: 'pt',
          timeSource: TimeSource.TIME_SOURCE_UNSPECIFIED,
          granularity: Granularity.GRANULARITY_UNSPECIFIED,
          timeZone: '',
          field: '',
          expression: '',
          value: '',
          ...pb,
        },
      }),
    });
  const rec = record('{"ts":"2023-07-14T23:59:00Z"}', { timestampMs: Date.UTC(2023, 6, 13, 16, 30) });
  const now = { nowMs: Date.UTC(2024, 0, 1, 0, 0) };
  const pt = (pb: object) => (transformRecord(make(pb), rec, now) as Row)[1];
  assert.equal(
    pt({ timeSource: TimeSource.TIME_SOURCE_RECORD_TIME, granularity: Granularity.GRANULARITY_DAY, timeZone: 'Asia/Shanghai' }),
    '07-14-2023',
  );
  assert.equal(pt({ timeSource: TimeSource.TIME_SOURCE_RECORD_TIME, granularity: Granularity.GRANULARITY_HOUR }), '07-13-2023 16');
  assert.equal(pt({ timeSource: TimeSource.TIME_SOURCE_PROCESSING_TIME, granularity: Granularity.GRANULARITY_MINUTE }), '01-01-2024 00:00');
  assert.equal(pt({ field: 'ts', granularity: Granularity.GRANULARITY_DAY, timeZone: 'Asia/Shanghai' }), '07-15-2023');
  assert.equal(pt({ timeSource: TimeSource.TIME_SOURCE_RECORD_TIME, expression: '$[yyyymmddhh24-1/24]' }), '2023071315');
});

// Iceberg spec appendix B hash test vectors, through the bucket transform's byte layout.
const hashVectors: [string, unknown, number][] = [
  ['int', 34, 2017239379],
  ['long', 34, 2017239379],
  ['decimal(4,2)', 1420n, -500754589],
  ['date', 17486, -653330422],
  ['time', 81068000000, -662762989],
  ['timestamp', 1510871468000000, -2047944441],
  ['timestamptz', 1510871468000000, -2047944441],
  ['string', 'iceberg', 1210000089],
  ['uuid', 'f79c3e09-677c-4bbd-a479-3f349cb785e7', 1488055340],
  ['binary', new Uint8Array([0, 1, 2, 3]), -188683207],
];
for (const [type, value, hash] of hashVectors) {
  test(`bucket hash of ${type} ${String(value)} is the spec's ${hash}`, () => {
    const t = parsePrimitive(type);
    assert.equal(applyTransform(parseTransform('bucket[2147483647]'), t, value as never), (hash & 0x7fffffff) % 2147483647);
  });
}
test('murmur3 of "iceberg" bytes', () => assert.equal(murmur3(Buffer.from('iceberg')), 1210000089));

const transforms: [string, string, unknown, unknown][] = [
  ['truncate[10]', 'int', 1, 0],
  ['truncate[10]', 'int', -1, -10],
  ['truncate[10]', 'long', 9n * 10n ** 18n + 5n, 9n * 10n ** 18n],
  ['truncate[50]', 'decimal(9,2)', 1065n, 1050n],
  ['truncate[3]', 'string', 'iceberg', 'ice'],
  ['year', 'date', 17486, 47],
  ['month', 'timestamp', 1510871468000000, 574],
  ['day', 'timestamptz', 1510871468000000, 17486],
  ['hour', 'timestamp', 1510871468000000, 419686],
  ['identity', 'string', 'x', 'x'],
  ['void', 'string', 'x', null],
];
for (const [tr, type, v, expected] of transforms) {
  test(`${tr} of ${type} ${String(v)} is ${String(expected)}`, () =>
    assert.deepEqual(applyTransform(parseTransform(tr), parsePrimitive(type), v as never), expected));
}

test('Iceberg partition tuple and path from a partition spec', () => {
  const plan = compilePlan({
    schema: schema(field(1, 'id', 'long'), field(2, 'ts', 'timestamptz'), field(3, 'pt', 'string')),
    mapping: mapping({
      format: MessageFormat.MESSAGE_FORMAT_FLATTEN,
      partitionBy: {
        column: 'pt',
        timeSource: TimeSource.TIME_SOURCE_RECORD_TIME,
        granularity: Granularity.GRANULARITY_MINUTE,
        timeZone: '',
        field: '',
        expression: '',
        value: '',
      },
    }),
    partitionSpec: {
      specId: 1,
      fields: [
        { sourceId: 3, fieldId: 1000, name: 'pt', transform: 'identity', sourceName: '' },
        { sourceId: 1, fieldId: 1001, name: 'id_bucket', transform: 'bucket[16]', sourceName: '' },
        { sourceId: 2, fieldId: 1002, name: 'ts_day', transform: 'day', sourceName: '' },
      ],
    },
  });
  const row = transformRecord(plan, record('{"id":34,"ts":"2017-11-16T22:31:08Z"}', { timestampMs: Date.UTC(2023, 6, 13, 21, 13) }), {
    nowMs: 0,
  }) as Row;
  const p = partitionOf(plan, row);
  assert.equal(p.path, `pt=07-13-2023%2021%3A13/id_bucket=${(2017239379 & 0x7fffffff) % 16}/ts_day=2017-11-16`);
  assert.deepEqual(
    p.values.map((v) => [v.fieldId, v.name, v.value?.kind?.value]),
    [
      [1000, 'pt', '07-13-2023 21:13'],
      [1001, 'id_bucket', 2017239379 % 16],
      [1002, 'ts_day', 17486],
    ],
  );
  assert.equal(partitionOf(plan, row), p, 'the same tuple object is reused for the same key');
});

test('a null partition value and the string "null" share a path but not a partition', () => {
  const plan = compilePlan({
    schema: schema(field(1, 'id', 'long'), field(2, 'country', 'string', false)),
    mapping: mapping({ format: MessageFormat.MESSAGE_FORMAT_JSON, flattenLevel: 1 }),
    partitionSpec: { specId: 1, fields: [{ sourceId: 2, fieldId: 1000, name: 'country', transform: 'identity', sourceName: '' }] },
  });
  const tuple = (text: string) => partitionOf(plan, transformRecord(plan, record(text), { nowMs: 0 }) as Row);
  const text = tuple('{"id":1,"country":"null"}');
  const none = tuple('{"id":2,"country":null}');
  assert.equal(text.path, 'country=null');
  assert.equal(none.path, 'country=null');
  assert.notEqual(none.key, text.key);
  assert.deepEqual(text.values[0].value?.kind, { $case: 'stringValue', value: 'null' });
  assert.equal(none.values[0].value?.kind, undefined);
  assert.equal(tuple('{"id":3,"country":"null"}').key, text.key);
});

const json = (flattenLevel: number, extra: Partial<Parameters<typeof mapping>[0]> = {}) =>
  mapping({ format: MessageFormat.MESSAGE_FORMAT_JSON, flattenLevel, ...extra });
const columnsOf = (r: ReturnType<typeof inferSchema>) => r.fields.map((f) => [f.name, f.type]);

// [what, JSON values of one field across samples, the inferred type]
const typeCases: [string, string[], string][] = [
  ['small whole numbers are long, not int', ['1', '42'], 'long'],
  ['64-bit whole numbers are long', ['9007199254740993', '-9223372036854775808'], 'long'],
  ['beyond 64 bits is double', ['9223372036854775808'], 'double'],
  ['a fixed scale is decimal', ['12.50', '3.99', '-0.10'], 'decimal(18, 2)'],
  ['a wide fixed-scale number keeps its digits', ['1234567890123456789.5'], 'decimal(20, 1)'],
  ['scales that disagree are double', ['9.5', '-0.25'], 'double'],
  ['a whole number among decimals is double', ['12.50', '10'], 'double'],
  ['an exponent is double', ['1e6'], 'double'],
  ['ISO-8601 with Z is timestamptz', ['"2024-05-01T08:00:00Z"', '"2024-05-01T09:30:00.123+02:00"'], 'timestamptz'],
  ['ISO-8601 without offset is timestamp', ['"2024-05-01T08:00:00"', '"2024-05-01 08:00"'], 'timestamp'],
  ['an ISO date is date', ['"2024-05-01"', '"2024-02-29"'], 'date'],
  ['dates and times widen to the time', ['"2024-05-01"', '"2024-05-01T08:00:00"'], 'timestamp'],
  ['with and without offset widen to timestamptz', ['"2024-05-01T08:00:00"', '"2024-05-01T08:00:00Z"'], 'timestamptz'],
  ['no such date is a string', ['"2024-02-30"'], 'string'],
  ['digits in quotes stay text', ['"00123"'], 'string'],
  ['booleans', ['true', 'false'], 'boolean'],
  ['booleans and numbers are string', ['true', '1'], 'string'],
  ['a date and a number are string', ['"2024-05-01"', '7'], 'string'],
  ['nested values below the level are JSON text', ['{"x":1}', '[1,2]'], 'string'],
  ['null in every sample is string', ['null'], 'string'],
  ['nulls do not change the type', ['null', '5', 'null'], 'long'],
];
for (const [what, values, type] of typeCases) {
  test(`inference types JSON: ${what}`, () => {
    const r = inferSchema(
      values.map((v, i) => record(`{"f":${v}}`, { offset: i })),
      json(1),
    );
    assert.deepEqual(columnsOf(r), [['f', type]]);
  });
}

// [what, CSV field texts across samples, the inferred type]
const csvTextCases: [string, string[], string][] = [
  ['whole numbers', ['1103', '-4'], 'long'],
  ['leading zeros make a code', ['007', '12'], 'string'],
  ['a fixed scale', ['12.50', '0.99'], 'decimal(18, 2)'],
  ['true/false', ['true', 'FALSE'], 'boolean'],
  ['ISO-8601', ['2024-05-01T08:00:00Z'], 'timestamptz'],
  ['text', ['china', 'usa'], 'string'],
];
for (const [what, values, type] of csvTextCases) {
  test(`inference types CSV text: ${what}`, () => {
    const r = inferSchema(
      values.map((v, i) => record(`${v},x`, { offset: i })),
      mapping({ format: MessageFormat.MESSAGE_FORMAT_CSV, csv: { delimiter: ',', quote: '"', columns: ['f', 'g'] } }),
    );
    assert.deepEqual(columnsOf(r)[0], ['f', type]);
  });
}

test('inference shows the exact literal of a 64-bit integer and of a decimal as its sample', () => {
  const r = inferSchema([record('{"id":9007199254740993,"amount":12.50}')], json(1));
  assert.deepEqual(
    r.fields.map((f) => [f.name, f.type, f.sample]),
    [
      ['id', 'long', '9007199254740993'],
      ['amount', 'decimal(18, 2)', '12.50'],
    ],
  );
});

test('inference: every column is optional, as job create makes it; unparseable samples are warnings', () => {
  const r = inferSchema(
    ['{"a":1,"c":"x","d":{"e":true}}', '{"a":2,"c":2,"d":{"e":false}}', 'not json', '[1,2]'].map((v, i) => record(v, { offset: i })),
    mapping({ format: MessageFormat.MESSAGE_FORMAT_FLATTEN, flattenLevel: 2 }),
  );
  assert.deepEqual(
    r.fields.map((f) => [f.name, f.path, f.type, f.required]),
    [
      ['a', 'a', 'long', false],
      ['c', 'c', 'string', false],
      ['d_e', 'd.e', 'boolean', false],
    ],
  );
  assert.ok(
    r.schema.fields.every((f) => !f.required),
    'the schema says optional too',
  );
  assert.equal(r.warnings.length, 3, r.warnings.join('; '));
  assert.equal(r.warnings[0], 'field "c" is string in one sample and long in another; typed string');
  assert.match(r.warnings[1], /^offset 2: skipped, value is not valid JSON/);
  assert.equal(r.warnings[2], 'offset 3: skipped, value is an array, flattening needs a JSON object');
});

test('inference names fields as the data path flattens them (seed 000, levels 1 to 4)', () => {
  const doc = { name: 'zhangle', age: 18, device: { os: { test: 'lag', member: { fa: 'z', mo: 'l' } }, 'brand.x': 'none' } };
  for (const level of [1, 2, 3, 4]) {
    assert.deepEqual(
      inferSchema([record(JSON.stringify(doc))], json(level)).fields.map((f) => [f.name, f.path]),
      flatten(doc, level).map((e) => [e.name, e.path]),
      `level ${level}`,
    );
  }
});

test('inference of TEXT warns about the parts the job reads only', () => {
  const bad = Buffer.from([0xff, 0xfe]);
  const r = inferSchema(
    [record(bad, { key: bad }), record('ok', { offset: 1, key: bad })],
    mapping({ format: MessageFormat.MESSAGE_FORMAT_TEXT, mode: MessageMode.MESSAGE_MODE_VALUE }),
  );
  assert.deepEqual(r.warnings, ['offset 0: value is not valid UTF-8 (first bad byte at offset 0); the job would refuse this record']);
  assert.deepEqual(
    r.fields.map((f) => [f.name, f.sample]),
    [
      ['key', ''],
      ['value', 'ok'],
    ],
  );
});

test('inference refuses two fields that flatten to one column, naming both', () => {
  const collide = (docs: string[], level: number) => () =>
    inferSchema(
      docs.map((d, i) => record(d, { offset: i })),
      json(level),
    );
  assert.throws(
    collide(['{"a.b":1,"a":{"b":2}}'], 2),
    (e: Error) => e instanceof SpecError && e.message.startsWith('fields "a.b" and a.b both become column "a_b" at flatten level 2'),
  );
  assert.throws(collide(['{"a.b":1}', '{"a":{"b":2}}'], 2), /fields "a.b" and a.b both become column "a_b"/, 'across samples too');
  assert.deepEqual(columnsOf(collide(['{"a.b":1,"a":{"b":2}}'], 1)()), [
    ['a_b', 'long'],
    ['a', 'string'],
  ]);
  assert.throws(
    () => inferSchema([record('{"offset":1}')], json(1, { includeFixedColumns: true })),
    /field offset would be column "offset", which includeFixedColumns fills with the record's Kafka offset/,
  );
});

// Each format: the proposed columns, and the rows the data path makes of the samples with them.
const formatCases: {
  what: string;
  mapping: ReturnType<typeof mapping>;
  samples: ReturnType<typeof record>[];
  columns: [string, string][];
  rows: unknown[][];
}[] = [
  {
    what: 'TEXT: key and value columns',
    mapping: mapping({ format: MessageFormat.MESSAGE_FORMAT_TEXT, mode: MessageMode.MESSAGE_MODE_DEFAULT }),
    samples: [record('abc', { keyText: 'k1' }), record('edf', { offset: 1 })],
    columns: [
      ['key', 'string'],
      ['value', 'string'],
    ],
    rows: [
      ['k1', 'abc'],
      [null, 'edf'],
    ],
  },
  {
    what: 'BINARY: key and value as binary',
    mapping: mapping({ format: MessageFormat.MESSAGE_FORMAT_BINARY, mode: MessageMode.MESSAGE_MODE_VALUE }),
    samples: [record(Buffer.from([0, 255]))],
    columns: [
      ['key', 'binary'],
      ['value', 'binary'],
    ],
    rows: [[null, Buffer.from([0, 255])]],
  },
  {
    what: 'JSON at level 0: the whole message as value',
    mapping: json(0),
    samples: [record('{"a":{"b":1}}')],
    columns: [
      ['key', 'string'],
      ['value', 'string'],
    ],
    rows: [[null, '{"a":{"b":1}}']],
  },
  {
    what: 'CSV with csv.columns: the named columns, typed',
    mapping: mapping({ format: MessageFormat.MESSAGE_FORMAT_CSV, csv: { delimiter: ',', quote: '"', columns: ['id', 'name', 'region'] } }),
    samples: [record('1103,zhangsan,china'), record('1104,lisi,usa', { offset: 1 })],
    columns: [
      ['id', 'long'],
      ['name', 'string'],
      ['region', 'string'],
    ],
    rows: [
      [1103, 'zhangsan', 'china'],
      [1104, 'lisi', 'usa'],
    ],
  },
  {
    what: 'CSV without csv.columns: c1..cN by position',
    mapping: mapping({ format: MessageFormat.MESSAGE_FORMAT_CSV }),
    samples: [record('1,2024-05-01')],
    columns: [
      ['c1', 'long'],
      ['c2', 'date'],
    ],
    rows: [[1, 19844]],
  },
  {
    what: 'JSON at level 1 with the fixed columns first',
    mapping: json(1, { includeFixedColumns: true }),
    samples: [record('{"id":42,"at":"2024-05-01T08:00:00Z","amount":12.50}', { topic: 't', partition: 1, offset: 7 })],
    columns: [
      ['topic', 'string'],
      ['partition', 'long'],
      ['offset', 'long'],
      ['id', 'long'],
      ['at', 'timestamptz'],
      ['amount', 'decimal(18, 2)'],
    ],
    rows: [['t', 1, 7, 42, Date.UTC(2024, 4, 1, 8) * 1000, 1250n]],
  },
];
for (const c of formatCases) {
  test(`inference follows the format, and the data path fills what it proposes: ${c.what}`, () => {
    const r = inferSchema(c.samples, c.mapping);
    assert.deepEqual(columnsOf(r), c.columns);
    const plan = compilePlan({ schema: r.schema, mapping: c.mapping });
    assert.deepEqual(
      c.samples.map((s) => transformRecord(plan, s, { nowMs: 0 })),
      c.rows,
    );
  });
}

test('preview renders rows readably and reports refused records', () => {
  const plan = compilePlan({
    schema: schema(field(1, 'amount', 'decimal(10,2)'), field(2, 'ts', 'timestamptz'), field(3, 'day', 'date')),
    mapping: mapping({ format: MessageFormat.MESSAGE_FORMAT_FLATTEN }),
  });
  const rows = previewRows(
    plan,
    [record('{"amount":"12.5","ts":"2023-07-14T01:33:00.25Z","day":"2023-07-14"}'), record('{"amount":"12x"}', { offset: 1 })],
    { nowMs: 0 },
  );
  assert.deepEqual(JSON.parse(rows[0].rowJson), { amount: '12.50', ts: '2023-07-14T01:33:00.250000Z', day: '2023-07-14' });
  assert.equal(rows[1].rowJson, '');
  assert.equal(rows[1].error, 'column "amount": "12x" is not a decimal(10, 2) (topic topic_test, partition 0, offset 1)');
});

test('JSON at a flatten level maps fields to columns like FLATTEN; with schema evolution none it counts and drops fields the table lacks', () => {
  const cols = schema(field(1, 'id', 'long'), field(2, 'customer_country', 'string'), field(3, 'items', 'string'));
  const message = '{"id":7,"customer":{"country":"NL","id":3},"items":[1,2],"added_later":true}';
  const unmapped = new Map<string, number>();
  const run = (format: MessageFormat, flattenLevel: number) => {
    const plan = compilePlan({
      schema: cols,
      mapping: mapping({ format, flattenLevel, schemaEvolution: SchemaEvolution.SCHEMA_EVOLUTION_NONE }),
    });
    const out = transformRecord(plan, record(message), { nowMs: 0, unmapped });
    return out instanceof RecordError ? `${out.reason}: ${out.message}` : out;
  };
  assert.deepEqual(
    run(MessageFormat.MESSAGE_FORMAT_JSON, 2),
    [7, 'NL', '[1,2]'],
    'level 2: customer.country → customer_country; unknown fields dropped',
  );
  assert.deepEqual(Object.fromEntries(unmapped), { 'customer.id': 1, added_later: 1 }, 'and counted by path');
  unmapped.clear();
  assert.deepEqual(run(MessageFormat.MESSAGE_FORMAT_JSON, 1), [7, null, '[1,2]'], 'level 1: customer stays one (unmapped) field');
  assert.deepEqual(Object.fromEntries(unmapped), { customer: 1, added_later: 1 });
  assert.match(
    String(run(MessageFormat.MESSAGE_FORMAT_FLATTEN, 2)),
    /^unknown_field: field "customer.id" \(as "customer_id"\) has no column in the table/,
    'FLATTEN stays strict',
  );

  const valueColumn = compilePlan({
    schema: schema(field(1, 'value', 'string')),
    mapping: mapping({ format: MessageFormat.MESSAGE_FORMAT_JSON, flattenLevel: 0 }),
  });
  assert.deepEqual(transformRecord(valueColumn, record(message), { nowMs: 0 }), [message], 'level 0: the whole message in one column');
  const wholeValue = compilePlan({
    schema: schema(field(1, '__value__', 'string')),
    mapping: mapping({ format: MessageFormat.MESSAGE_FORMAT_JSON, flattenLevel: 0 }),
  });
  const big = '{"id":9007199254740993,"a":[1]}';
  assert.deepEqual(
    transformRecord(wholeValue, record(big), { nowMs: 0 }),
    [big],
    'level 0: seed 000 names the column __value__, exact as sent',
  );
  assert.equal((transformRecord(wholeValue, record('{"a":'), { nowMs: 0 }) as RecordError).reason, 'invalid_json', 'and still JSON');
  assert.deepEqual(
    transformRecord(compilePlan({ schema: cols, mapping: mapping() }), record('{"id":7,"items":[1]}'), { nowMs: 0 }),
    [7, null, '[1]'],
    "an unset flatten level is seed 000's default, 1",
  );

  const tombstone = transformRecord(compilePlan({ schema: cols, mapping: mapping({ flattenLevel: 1 }) }), record(undefined), { nowMs: 0 });
  assert.ok(tombstone instanceof RecordError && tombstone.reason === 'null_value', 'a tombstone has no fields to flatten');
});

/** One message through JSON at a flatten level with these columns: the row, or `reason: message`. */
function flat(cols: Schema, level: number, message: string): unknown {
  const plan = compilePlan({ schema: cols, mapping: mapping({ flattenLevel: level }) });
  const out = transformRecord(plan, record(message, { offset: 3 }), { nowMs: 0 });
  if (out instanceof SchemaGrowth) return `grow: ${out.describe()}`;
  return out instanceof RecordError ? `${out.reason}: ${out.message}` : out;
}

const evolving = schema(
  field(1, 'id', 'long'),
  field(2, 'n', 'int'),
  field(3, 'amount', 'decimal(5,2)'),
  field(4, 'f', 'float'),
  field(5, 'a_b', 'string'),
);
const flattenCases: [string, number, string, unknown][] = [
  ['known fields', 1, '{"id":1,"n":2,"amount":1.5,"f":0.5}', [1, 2, 150n, 0.5, null]],
  ['a 64-bit id at level 1', 1, '{"id":9007199254740993}', [9007199254740993n, null, null, null, null]],
  [
    'a new field adds a column typed by its value',
    1,
    '{"id":1,"tag":"x","ok":true,"ratio":0.5,"seq":7,"meta":{"k":1}}',
    'grow: added tag (string), ok (boolean), ratio (double), seq (long), meta (string)',
  ],
  ['a new field that is null adds nothing yet', 1, '{"id":1,"later":null}', [1, null, null, null, null]],
  ['a new nested field at level 2', 2, '{"id":1,"device":{"os":"linux"}}', 'grow: added device_os (string)'],
  ['int beyond 32 bits widens to long', 1, '{"n":3000000000}', 'grow: widened n to long'],
  ['decimal beyond its precision widens it', 1, '{"amount":12345.67}', 'grow: widened amount to decimal(7, 2)'],
  ['float beyond its range widens to double', 1, '{"f":1e300}', 'grow: widened f to double'],
  [
    'more decimal places than the scale is incompatible',
    1,
    '{"amount":1.234}',
    'type_mismatch: column "amount": 1.234 is not a decimal(5, 2) (more than 2 decimal places) (topic topic_test, partition 0, offset 3)',
  ],
  [
    'a string in a long column is incompatible',
    1,
    '{"id":"x","tag":"y"}',
    'type_mismatch: column "id": "x" is not a long (topic topic_test, partition 0, offset 3)',
  ],
  [
    'level 1: key "a.b" and key a_b collide',
    1,
    '{"a.b":"1","a_b":"2"}',
    'field_collision: fields "a.b" and a_b both flatten to column "a_b"; map them with explicit fields (topic topic_test, partition 0, offset 3)',
  ],
  [
    'level 2: key "a.b" and nested a.b collide',
    2,
    '{"a.b":"1","a":{"b":"2"}}',
    'field_collision: fields "a.b" and a.b both flatten to column "a_b"; map them with explicit fields (topic topic_test, partition 0, offset 3)',
  ],
  [
    'level 2: two new fields collide',
    2,
    '{"x":{"y":1},"x.y":2}',
    'field_collision: fields x.y and "x.y" both flatten to column "x_y"; map them with explicit fields (topic topic_test, partition 0, offset 3)',
  ],
];
for (const [name, level, message, expected] of flattenCases) {
  test(`JSON flatten level ${level}: ${name}`, () => assert.deepEqual(flat(evolving, level, message), expected));
}

test('a schema growth numbers new columns after the last column id and widens in place', () => {
  const plan = compilePlan({ schema: evolving, mapping: mapping() });
  const growth = transformRecord(plan, record('{"n":3000000000,"tag":"x","seq":1}'), { nowMs: 0 });
  assert.ok(growth instanceof SchemaGrowth);
  const { schema: grown, lastColumnId } = grownSchema(evolving, 9, growth);
  assert.equal(lastColumnId, 11);
  assert.deepEqual(
    grown.fields.map((f) => [f.id, f.name, f.type?.kind?.$case === 'primitive' ? f.type.kind.value : '', f.required]),
    [
      [1, 'id', 'long', false],
      [2, 'n', 'long', false],
      [3, 'amount', 'decimal(5,2)', false],
      [4, 'f', 'float', false],
      [5, 'a_b', 'string', false],
      [10, 'tag', 'string', false],
      [11, 'seq', 'long', false],
    ],
  );
  const again = transformRecord(compilePlan({ schema: grown, mapping: mapping() }), record('{"n":3000000000,"tag":"x","seq":1}'), {
    nowMs: 0,
  });
  assert.deepEqual(again, [null, 3000000000, null, null, null, 'x', 1], 'the record fits the grown schema');
});

test('inferring a table (sluice infer, job create) refuses sampled fields that flatten to one column, naming both paths', () => {
  const samples = [record('{"a":{"b":1}}', { offset: 0 }), record('{"a.b":2,"a":{"b":3}}', { offset: 1 })];
  const infer = (flattenLevel: number) => () =>
    inferSchemaRpc({ samples, mapping: mapping({ flattenLevel, mode: MessageMode.MESSAGE_MODE_VALUE }) });
  assert.throws(
    infer(2),
    (e: unknown) =>
      e instanceof Error && /^fields (a\.b and "a\.b"|"a\.b" and a\.b) both become column "a_b" at flatten level 2/.test(e.message),
  );
  assert.deepEqual(
    infer(1)().fields.map((f) => f.name),
    ['a', 'a_b'],
    'at level 1, a stays whole: no collision',
  );
});

test('JSON nesting depth: one pass over the text, strings skipped', () => {
  const cases: [string, string, number, number][] = [
    ['flat', '{"a":1}', 1, -1],
    ['at the limit', '[[[]]]', 3, -1],
    ['one over', '[[[[]]]]', 3, 3],
    ['brackets in strings do not count', '["[[[[","{{{{"]', 1, -1],
    ['an escaped quote does not end the string', String.raw`["\"[[[[",[[]]]`, 3, -1],
  ];
  for (const [name, text, limit, at] of cases) assert.equal(jsonDepthOver(text, limit), at, name);
  assert.equal(MAX_JSON_DEPTH, 1024);
});

test('a record with more headers than MAX_RECORD_HEADERS is dirty data (too_many_headers); at the limit it is a row', () => {
  const plan = flattenPlan();
  const headers = (n: number) => Array.from({ length: n }, (_, i) => ({ key: `h${i}`, value: Buffer.from('v') }));
  const over = transformRecord(plan, record('{"id":1}', { offset: 4, headers: headers(MAX_RECORD_HEADERS + 1) }), { nowMs: 0 });
  assert.ok(over instanceof RecordError);
  assert.equal(over.reason, 'too_many_headers');
  assert.match(
    over.message,
    /^the record has 1001 headers, more than the 1000 a record may carry \(topic topic_test, partition 0, offset 4\)$/,
  );
  assert.deepEqual(transformRecord(plan, record('{"id":1}', { headers: headers(MAX_RECORD_HEADERS) }), { nowMs: 0 }), [1, null]);
});

test('InferSchema on a sample nested 10,000 levels deep is INVALID_ARGUMENT naming the sample', () => {
  const samples = [record('{"a":1}', { offset: 10 }), record(`{"a":${'['.repeat(10_000)}${']'.repeat(10_000)}}`, { offset: 11 })];
  for (const format of [MessageFormat.MESSAGE_FORMAT_JSON, MessageFormat.MESSAGE_FORMAT_FLATTEN]) {
    assert.throws(
      () => inferSchemaRpc({ samples, mapping: mapping({ format, flattenLevel: 4 }) }),
      (e: Error) =>
        e instanceof SluiceError &&
        e.code === status.INVALID_ARGUMENT &&
        e.message === 'samples.1 (offset 11): value is nested deeper than 1024 levels',
    );
  }
});
