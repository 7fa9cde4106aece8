import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileSchema, readContainer, writeContainer, AvroError, avroSafeName, type AvroSchema } from '#shared/iceberg/avro/index.js';
import { ByteSink, ByteSource } from '#shared/iceberg/avro/bytes.js';

const roundTrip = (schema: AvroSchema, value: unknown) => {
  const { encode, decode } = compileSchema(schema);
  const sink = new ByteSink(4);
  encode(sink, value);
  const src = new ByteSource(sink.written());
  const out = decode(src);
  assert.equal(src.remaining, 0, 'decoder consumed every byte');
  return out;
};

test('values round-trip through the binary encoding', () => {
  const cases: [string, AvroSchema, unknown, unknown?][] = [
    ['boolean', 'boolean', true],
    ['int min', 'int', -2147483648],
    ['int max', 'int', 2147483647],
    ['long zero', 'long', 0],
    ['long 2^53-1', 'long', Number.MAX_SAFE_INTEGER],
    ['long -(2^53-1)', 'long', -Number.MAX_SAFE_INTEGER],
    ['long 2^52+1', 'long', 2 ** 52 + 1],
    ['long -(2^49)', 'long', -(2 ** 49)],
    ['long from bigint', 'long', 1234567890123n, 1234567890123],
    ['float', 'float', 1.5],
    ['double', 'double', -0.1],
    ['string utf-8', 'string', 'héllo ✓ 𝄞'],
    ['bytes', 'bytes', new Uint8Array([0, 255, 7])],
    ['fixed', { type: 'fixed', name: 'f4', size: 4 }, new Uint8Array([1, 2, 3, 4])],
    ['enum', { type: 'enum', name: 'e', symbols: ['A', 'B'] }, 'B'],
    ['optional null', ['null', 'long'], null],
    ['optional value', ['null', 'long'], 42],
    ['general union', ['string', 'long', 'null'], 7],
    ['array', { type: 'array', items: 'int' }, [1, -2, 3]],
    ['empty array', { type: 'array', items: 'int' }, []],
    ['map', { type: 'map', values: 'long' }, { a: 1, b: 2 }],
    ['map from Map', { type: 'map', values: 'string' }, new Map([['k', 'v']]), { k: 'v' }],
    [
      'nested record',
      {
        type: 'record',
        name: 'r',
        fields: [
          { name: 'a', type: 'int' },
          { name: 'b', type: { type: 'record', name: 's', fields: [{ name: 'c', type: ['null', 'string'] }] } },
        ],
      },
      { a: 1, b: { c: 'x' } },
    ],
  ];
  for (const [name, schema, value, expected] of cases) {
    assert.deepEqual(roundTrip(schema, value), expected ?? value, name);
  }
});

test('longs use zig-zag varints exactly as the Avro spec shows', () => {
  const cases: [number, number[]][] = [
    [0, [0x00]],
    [-1, [0x01]],
    [1, [0x02]],
    [-64, [0x7f]],
    [64, [0x80, 0x01]],
    [-8193, [0x81, 0x80, 0x01]],
  ];
  for (const [value, bytes] of cases) {
    const sink = new ByteSink();
    sink.long(value);
    assert.deepEqual([...sink.written()], bytes, String(value));
  }
});

test('encoding errors name the field path', () => {
  const schema: AvroSchema = {
    type: 'record',
    name: 'r',
    fields: [{ name: 'outer', type: { type: 'record', name: 'i', fields: [{ name: 'n', type: 'long' }] } }],
  };
  const { encode } = compileSchema(schema);
  assert.throws(
    () => encode(new ByteSink(), { outer: { n: 'x' } }),
    (e: unknown) => e instanceof AvroError && e.field === 'outer.n',
  );
  assert.throws(() => encode(new ByteSink(), { outer: { n: 1.5 } }), /expected long/);
});

test('a long beyond 2^53 is refused on read rather than rounded', () => {
  const sink = new ByteSink();
  sink.bigLong(2n ** 60n);
  assert.throws(() => new ByteSource(sink.written()).long(), /outside the supported range/);
});

test('container files round-trip with both codecs, many blocks and header metadata', () => {
  const schema: AvroSchema = {
    type: 'record',
    name: 'row',
    fields: [
      { name: 'id', type: 'long', 'field-id': 1 },
      { name: 's', type: ['null', 'string'], 'field-id': 2 },
    ],
  };
  const records = Array.from({ length: 2500 }, (_, i) => ({ id: i * 1_000_003, s: i % 3 === 0 ? null : `v${i}` }));
  for (const codec of ['null', 'deflate'] as const) {
    const bytes = writeContainer(schema, records, { codec, metadata: { 'format-version': '2' }, blockBytes: 4096 });
    const back = readContainer(bytes);
    assert.equal(back.codec, codec);
    assert.deepEqual(back.metadata, { 'format-version': '2' });
    assert.deepEqual(back.schema, schema);
    assert.deepEqual(back.records, records);
  }
});

test('corrupt containers are refused with a clear reason', () => {
  const schema: AvroSchema = { type: 'record', name: 'row', fields: [{ name: 'id', type: 'long' }] };
  const good = writeContainer(schema, [{ id: 1 }, { id: 2 }], { codec: 'null' });
  assert.throws(() => readContainer(new Uint8Array([1, 2, 3, 4, 5])), /bad magic/);
  const badSync = good.slice();
  badSync[badSync.length - 1] ^= 0xff;
  assert.throws(() => readContainer(badSync), /sync marker mismatch/);
  assert.throws(() => readContainer(good.slice(0, good.length - 10)), AvroError);
});

test('field names are made Avro-safe like the Java implementation', () => {
  const cases: [string, string][] = [
    ['plain_name', 'plain_name'],
    ['a.b', 'a_x2Eb'],
    ['1st', '_1st'],
    ['a-b', 'a_x2Db'],
  ];
  for (const [input, expected] of cases) assert.equal(avroSafeName(input), expected, input);
});
