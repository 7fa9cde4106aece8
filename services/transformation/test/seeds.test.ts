/**
 * Every example of seeds 000 (flatten levels), 001 (field paths, meta fields, scheduling
 * expressions) and 002 (TEXT/CSV/JSON/FLATTEN formats, the error topic) as table cases.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Granularity, MessageFormat, MessageMode, TimeSource, ErrorPolicyKind } from '#shared/gen/sluice/v1/types.js';
import { compileExpression, compilePlan, DirtyDataPolicy, RecordError, transformRecord, zone, type Row } from '../src/core/index.js';
import { flatten } from '../src/core/flatten.js';
import { field, fixed, mapping, record, schema } from '#test-support/builders.js';

// Seed 000's example message, written as valid JSON (the seed has bare lag/zhangsan/limei).
const seed000 = {
  name: 'zhangle',
  age: 18,
  device: { os: { test: 'lag', member: { fa: 'zhangsan', mo: 'limei' } }, brand: 'none', version: '11.4.2' },
};
const seed000Text = JSON.stringify(seed000);

// [level, [JSON field, value, destination field name][]], exactly the seed's tables.
const levels: [number, [string, unknown, string][]][] = [
  [0, [['__value__', seed000, '__value__']]],
  [
    1,
    [
      ['name', 'zhangle', 'name'],
      ['age', 18, 'age'],
      ['device', seed000.device, 'device'],
    ],
  ],
  [
    2,
    [
      ['name', 'zhangle', 'name'],
      ['age', 18, 'age'],
      ['device.os', seed000.device.os, 'device_os'],
      ['device.brand', 'none', 'device_brand'],
      ['device.version', '11.4.2', 'device_version'],
    ],
  ],
  [
    3,
    [
      ['name', 'zhangle', 'name'],
      ['age', 18, 'age'],
      ['device.os.test', 'lag', 'device_os_test'],
      ['device.os.member', { fa: 'zhangsan', mo: 'limei' }, 'device_os_member'],
      ['device.brand', 'none', 'device_brand'],
      ['device.version', '11.4.2', 'device_version'],
    ],
  ],
  [
    4,
    [
      ['name', 'zhangle', 'name'],
      ['age', 18, 'age'],
      ['device.os.test', 'lag', 'device_os_test'],
      ['device.os.member.fa', 'zhangsan', 'device_os_member_fa'],
      ['device.os.member.mo', 'limei', 'device_os_member_mo'],
      ['device.brand', 'none', 'device_brand'],
      ['device.version', '11.4.2', 'device_version'],
    ],
  ],
];

for (const [level, expected] of levels) {
  test(`seed 000: flatten level ${level} gives the seed's fields, values and names`, () => {
    assert.deepEqual(
      flatten(seed000, level).map((e) => [e.path, e.value, e.name]),
      expected,
    );
  });

  test(`seed 000: level ${level} through a plan stores nested values as JSON text`, () => {
    const cols = expected.map(([, , name], i) => field(i + 1, name, name === 'age' ? 'int' : 'string'));
    const plan =
      level === 0
        ? compilePlan({
            schema: schema(...cols),
            mapping: mapping({
              format: MessageFormat.MESSAGE_FORMAT_JSON,
              fields: [{ column: '__value__', path: '__value__', type: '', format: '' }],
            }),
          })
        : compilePlan({ schema: schema(...cols), mapping: mapping({ format: MessageFormat.MESSAGE_FORMAT_FLATTEN, flattenLevel: level }) });
    const row = transformRecord(plan, record(seed000Text), { nowMs: 0 }) as Row;
    assert.ok(!(row instanceof RecordError), String(row));
    assert.deepEqual(
      row,
      expected.map(([, v]) => (typeof v === 'object' ? JSON.stringify(v) : v)),
    );
  });
}

test('seed 000: a "." in a key becomes "_" in the destination name', () => {
  assert.deepEqual(
    flatten({ 'a.b': 1, c: { 'd.e': 2 } }, 2).map((e) => e.name),
    ['a_b', 'c_d_e'],
  );
});

// Seed 001: field definitions by path.
const seed001 =
  '{"a":{"a1":"hello"},"b":"world","c":["xxxxxxx","yyyyyyy"],"d":[{"AA":"this","BB":"is_data"},{"AA":"that","BB":"is_also_data"}],"a.b":"unreachable"}';
const paths: [string, string | null][] = [
  ['a.a1', 'hello'],
  ['b', 'world'],
  ['c[1]', 'yyyyyyy'],
  ['d[0].AA', 'this'],
  ['a.b', null], // not retrievable: "." always separates names
];
for (const [path, expected] of paths) {
  test(`seed 001: field definition ${path} retrieves ${JSON.stringify(expected)}`, () => {
    const plan = compilePlan({
      schema: schema(field(1, 'out', 'string')),
      mapping: mapping({ fields: [{ column: 'out', path, type: '', format: '' }] }),
    });
    assert.deepEqual(transformRecord(plan, record(seed001), { nowMs: 0 }), [expected]);
  });
}

test('seed 001: the six Kafka meta fields', () => {
  const cols = [
    field(1, 'k', 'string'),
    field(2, 'v', 'string'),
    field(3, 'p', 'int'),
    field(4, 'h', 'string'),
    field(5, 'o', 'long'),
    field(6, 'ts', 'long'),
    field(7, 'unmapped', 'string'),
  ];
  const fields = [
    ['k', '__key__'],
    ['v', '__value__'],
    ['p', '__partition__'],
    ['h', '__headers__'],
    ['o', '__offset__'],
    ['ts', '__timestamp__'],
  ].map(([column, path]) => ({ column, path, type: '', format: '' }));
  const plan = compilePlan({ schema: schema(...cols), mapping: mapping({ format: MessageFormat.MESSAGE_FORMAT_TEXT, fields }) });
  const rec = record('abc', {
    keyText: '123',
    partition: 2,
    offset: 41,
    timestampMs: 1668967500000,
    headers: [{ key: 'trace', value: Buffer.from('t1') }],
  });
  // NULL is written to unmapped destination columns.
  assert.deepEqual(transformRecord(plan, rec, { nowMs: 0 }), ['123', 'abc', 2, '{"trace":"t1"}', 41, 1668967500000, null]);
});

test('seed 001: one source field cannot map to two columns, nor one column from two fields', () => {
  const s = schema(field(1, 'x', 'string'), field(2, 'y', 'string'));
  assert.throws(
    () =>
      compilePlan({
        schema: s,
        mapping: mapping({
          fields: [
            { column: 'x', path: 'b', type: '', format: '' },
            { column: 'y', path: 'b', type: '', format: '' },
          ],
        }),
      }),
    /mapped to more than one column/,
  );
  assert.throws(
    () =>
      compilePlan({
        schema: s,
        mapping: mapping({
          fields: [
            { column: 'x', path: 'a', type: '', format: '' },
            { column: 'x', path: 'b', type: '', format: '' },
          ],
        }),
      }),
    /mapped more than once/,
  );
});

// Seed 001's scheduling table: [expression, run time (Asia/Shanghai wall clock), result].
const run1005 = '2022-11-22 10:05';
const run1000 = '2022-11-22 10:00';
const expressions: [string, string, string][] = [
  ['$[yyyymmddhh24mi-8/24/60]00', run1000, '20221122095200'],
  ['$[yyyymmddhh24mi-3/24/60]00', run1000, '20221122095700'],
  ['$[yyyymmddhh24mi-8/24/60]', run1000, '202211220952'],
  ['$[yyyymmddhh24-1/24]0000', run1005, '20221122090000'],
  ['$[yyyymmddhh24]0000', run1005, '20221122100000'],
  ['$[yyyymmddhh24]', run1005, '2022112210'],
  ['$[yyyymmddhh24-2/24]0000', run1005, '20221122080000'],
  ['$[yyyymmddhh24-3/24]0000', run1005, '20221122070000'],
  ['$[yyyymmdd-1]000000', run1005, '20221121000000'],
  ['$[yyyymmdd]000000', run1005, '20221122000000'],
  ['$[yyyymmdd-1]', run1005, '20221121'],
  ['$[yyyymmdd-7]000000', run1005, '20221115000000'],
  ['$[add_months(yyyymmdd,-1)]000000', run1005, '20221022000000'],
];
for (const [expr, at, expected] of expressions) {
  test(`seed 001: ${expr} at ${at} is ${expected}`, () => {
    const z = zone('Asia/Shanghai');
    const [d, t] = at.split(' ');
    const [y, mo, da] = d.split('-').map(Number);
    const [h, mi] = t.split(':').map(Number);
    const instant = z.fromLocal(Date.UTC(y, mo - 1, da, h, mi));
    assert.equal(compileExpression(expr, z).render(instant), expected);
  });
}

// Seed 002: formats with the fixed columns topic/partition/offset and pt (MINUTE window).
const pt = {
  column: 'pt',
  timeSource: TimeSource.TIME_SOURCE_RECORD_TIME,
  granularity: Granularity.GRANULARITY_MINUTE,
  timeZone: '',
  field: '',
  expression: '',
  value: '',
};
const keyValue = [...fixed, field(4, 'key', 'string'), field(5, 'value', 'string'), field(6, 'pt', 'string')];
const at2113 = Date.UTC(2023, 6, 13, 21, 13, 30);
const at0028 = Date.UTC(2023, 6, 14, 0, 28, 1);

const formatCases: {
  name: string;
  cols: ReturnType<typeof field>[];
  format: MessageFormat;
  mode: MessageMode;
  /** Seed 002's JSON format keeps the whole value: seed 000's flatten level 0 (the default is 1). */
  flattenLevel?: number;
  topic: string;
  at: number;
  input: [string, string][];
  rows: unknown[][];
}[] = [
  {
    name: 'TEXT, mode VALUE: key is NULL',
    cols: keyValue,
    format: MessageFormat.MESSAGE_FORMAT_TEXT,
    mode: MessageMode.MESSAGE_MODE_VALUE,
    topic: 'topic_text',
    at: at2113,
    input: [
      ['123', 'abc'],
      ['456', 'edf'],
    ],
    rows: [
      ['topic_text', 0, 0, null, 'abc', '07-13-2023 21:13'],
      ['topic_text', 0, 1, null, 'edf', '07-13-2023 21:13'],
    ],
  },
  {
    name: 'TEXT, mode DEFAULT: key and value',
    cols: keyValue,
    format: MessageFormat.MESSAGE_FORMAT_TEXT,
    mode: MessageMode.MESSAGE_MODE_DEFAULT,
    topic: 'topic_text',
    at: at2113,
    input: [['123', 'abc']],
    rows: [['topic_text', 0, 0, '123', 'abc', '07-13-2023 21:13']],
  },
  {
    name: 'TEXT, mode KEY: value is NULL',
    cols: keyValue,
    format: MessageFormat.MESSAGE_FORMAT_TEXT,
    mode: MessageMode.MESSAGE_MODE_KEY,
    topic: 'topic_text',
    at: at2113,
    input: [['123', 'abc']],
    rows: [['topic_text', 0, 0, '123', null, '07-13-2023 21:13']],
  },
  {
    name: 'CSV',
    cols: [...fixed, field(4, 'id', 'long'), field(5, 'name', 'string'), field(6, 'region', 'string'), field(7, 'pt', 'string')],
    format: MessageFormat.MESSAGE_FORMAT_CSV,
    mode: MessageMode.MESSAGE_MODE_VALUE,
    topic: 'csv_test',
    at: Date.UTC(2023, 6, 14, 0, 10),
    input: [
      ['123', '1103,zhangsan,china'],
      ['456', '1104,lisi,usa'],
    ],
    rows: [
      ['csv_test', 0, 0, 1103, 'zhangsan', 'china', '07-14-2023 00:10'],
      ['csv_test', 0, 1, 1104, 'lisi', 'usa', '07-14-2023 00:10'],
    ],
  },
  {
    name: 'JSON',
    cols: keyValue,
    format: MessageFormat.MESSAGE_FORMAT_JSON,
    mode: MessageMode.MESSAGE_MODE_VALUE,
    flattenLevel: 0,
    topic: 'Topic_json',
    at: at0028,
    input: [
      ['123', '{"id":123,"name":"json-1","region":"beijing"}'],
      ['456', '{"id":456,"name":"json-2","region":"hangzhou"}'],
    ],
    rows: [
      ['Topic_json', 0, 0, null, '{"id":123,"name":"json-1","region":"beijing"}', '07-14-2023 00:28'],
      ['Topic_json', 0, 1, null, '{"id":456,"name":"json-2","region":"hangzhou"}', '07-14-2023 00:28'],
    ],
  },
  {
    // The seed shows extendinfo as {"sex":"M","region":"beijing"}: MaxCompute's JSON type reorders keys; we keep the source order.
    name: 'FLATTEN',
    cols: [...fixed, field(4, 'id', 'long'), field(5, 'name', 'string'), field(6, 'extendinfo', 'string'), field(7, 'pt', 'string')],
    format: MessageFormat.MESSAGE_FORMAT_FLATTEN,
    mode: MessageMode.MESSAGE_MODE_VALUE,
    topic: 'topic_flatten',
    at: Date.UTC(2023, 6, 14, 1, 33),
    input: [
      ['123', '{"id":123,"name":"json-1","extendinfo":{"region":"beijing","sex":"M"}}'],
      ['456', '{"id":456,"name":"json-2","extendinfo":{"region":"hangzhou","sex":"W"}}'],
    ],
    rows: [
      ['topic_flatten', 0, 0, 123, 'json-1', '{"region":"beijing","sex":"M"}', '07-14-2023 01:33'],
      ['topic_flatten', 0, 1, 456, 'json-2', '{"region":"hangzhou","sex":"W"}', '07-14-2023 01:33'],
    ],
  },
  {
    name: 'FLATTEN, seed 002 table example {"A":1,"B":"b","C":{"D":"d","E":"e"}}',
    cols: [...fixed, field(4, 'A', 'long'), field(5, 'B', 'string'), field(6, 'C', 'string'), field(7, 'pt', 'string')],
    format: MessageFormat.MESSAGE_FORMAT_FLATTEN,
    mode: MessageMode.MESSAGE_MODE_VALUE,
    topic: 't',
    at: at2113,
    input: [['', '{"A":1,"B":"b","C":{"D":"d","E":"e"}}']],
    rows: [['t', 0, 0, 1, 'b', '{"D":"d","E":"e"}', '07-13-2023 21:13']],
  },
];
for (const c of formatCases) {
  test(`seed 002: ${c.name}`, () => {
    const plan = compilePlan({
      schema: schema(...c.cols),
      mapping: mapping({ format: c.format, mode: c.mode, flattenLevel: c.flattenLevel, includeFixedColumns: true, partitionBy: pt }),
    });
    const rows = c.input.map(([k, v], offset) =>
      transformRecord(plan, record(v, { keyText: k, topic: c.topic, offset, timestampMs: c.at }), { nowMs: 0 }),
    );
    assert.deepEqual(rows, c.rows);
  });
}

test('seed 002: the error topic example routes record 101 and keeps 100 and 102', () => {
  const cols = [...fixed, field(4, 'id', 'long'), field(5, 'name', 'string'), field(6, 'extendinfo', 'string'), field(7, 'pt', 'string')];
  const plan = compilePlan({
    schema: schema(...cols),
    mapping: mapping({
      format: MessageFormat.MESSAGE_FORMAT_FLATTEN,
      mode: MessageMode.MESSAGE_MODE_VALUE,
      includeFixedColumns: true,
      partitionBy: pt,
    }),
  });
  const policy = new DirtyDataPolicy({ kind: ErrorPolicyKind.ERROR_POLICY_KIND_ERROR_TOPIC, maxErrors: 0, errorTopic: 'runtime_error' });
  // The seed's offsets: 0 and 1 were earlier records, so 100, 101, 102 are offsets 2, 3, 4.
  const input: [string, string][] = [
    ['100', '{"id":100,"name":"json-3","extendinfo":{"region":"beijing","gender":"M"}}'],
    ['101', '{"id":101,"name":"json-4","extendinfos":"null"}'],
    ['102', '{"id":102,"name":"json-5","extendinfo":{"region":"beijing","gender":"M"}}'],
  ];
  const kept: unknown[] = [];
  const routed: unknown[] = [];
  input.forEach(([k, v], i) => {
    const rec = record(v, { keyText: k, topic: 'flatten_test', offset: i + 2, timestampMs: Date.UTC(2023, 6, 14, 13, 16) });
    const out = transformRecord(plan, rec, { nowMs: 0 });
    if (out instanceof RecordError) routed.push(policy.decide(rec, out));
    else kept.push(out);
  });
  assert.deepEqual(kept, [
    ['flatten_test', 0, 2, 100, 'json-3', '{"region":"beijing","gender":"M"}', '07-14-2023 13:16'],
    ['flatten_test', 0, 4, 102, 'json-5', '{"region":"beijing","gender":"M"}', '07-14-2023 13:16'],
  ]);
  assert.equal(routed.length, 1);
  const d = routed[0] as {
    action: string;
    record: { topic: string; key: Buffer; value: Buffer; headers: { key: string; value: Buffer }[] };
  };
  assert.equal(d.action, 'error_topic');
  assert.equal(d.record.topic, 'runtime_error');
  assert.equal(d.record.value.toString(), '{"id":101,"name":"json-4","extendinfos":"null"}');
  assert.equal(d.record.key.toString(), '101');
  const h = Object.fromEntries(d.record.headers.map((x) => [x.key, x.value.toString()]));
  assert.deepEqual(
    [h['sluice.error.reason'], h['sluice.source.topic'], h['sluice.source.partition'], h['sluice.source.offset']],
    ['unknown_field', 'flatten_test', '0', '3'],
  );
  assert.deepEqual(policy.errorCounts(), [{ reason: 'unknown_field', count: 1 }]);
});
