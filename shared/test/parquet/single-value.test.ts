import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  deserializeSingleValue,
  parsePrimitive,
  serializeSingleValue,
  twosComplementBigEndian,
  type SingleValue,
} from '#shared/iceberg/single-value.js';

// [type, value, expected bytes (hex)] from the Iceberg spec's single-value serialization.
const cases: [string, SingleValue, string][] = [
  ['boolean', true, '01'],
  ['boolean', false, '00'],
  ['int', 1, '01000000'],
  ['int', -2, 'feffffff'],
  ['date', 19552, '604c0000'],
  ['long', 34, '2200000000000000'],
  ['long', -1n, 'ffffffffffffffff'],
  ['long', 9223372036854775807n, 'ffffffffffffff7f'],
  ['timestamp', 1510871468000000, '00c3262d215e0500'],
  ['timestamptz', 1510871468000000, '00c3262d215e0500'],
  ['time', 81068000000, '008307e012000000'],
  ['float', 1.5, '0000c03f'],
  ['double', -2.25, '00000000000002c0'],
  ['decimal(10,2)', 1420n, '058c'],
  ['decimal(10,2)', 0n, '00'],
  ['decimal(10,2)', -1n, 'ff'],
  ['decimal(10,2)', 128n, '0080'],
  ['decimal(10,2)', -129n, 'ff7f'],
  ['string', 'iceberg', '69636562657267'],
  ['string', 'é', 'c3a9'],
  ['uuid', 'f79c3e09-677c-4bbd-a479-3f349cb785e7', 'f79c3e09677c4bbda4793f349cb785e7'],
  ['binary', new Uint8Array([0, 1, 2, 3]), '00010203'],
  ['fixed[2]', new Uint8Array([9, 8]), '0908'],
];
for (const [type, value, hex] of cases) {
  test(`single value: ${type} ${String(value)} is ${hex}, and reads back`, () => {
    const t = parsePrimitive(type);
    const bytes = serializeSingleValue(t, value);
    assert.equal(bytes.toString('hex'), hex);
    const back = deserializeSingleValue(t, bytes);
    const norm = (v: SingleValue) =>
      typeof v === 'bigint' ? v : typeof v === 'number' && ['long', 'time', 'timestamp', 'timestamptz'].includes(t.kind) ? BigInt(v) : v;
    assert.deepEqual(back instanceof Uint8Array ? [...back] : back, value instanceof Uint8Array ? [...value] : norm(value));
  });
}

test("decimal bytes are minimal two's complement", () => {
  for (let v = -70000n; v <= 70000n; v += 997n) {
    const b = twosComplementBigEndian(v);
    assert.equal(deserializeSingleValue(parsePrimitive('decimal(38,0)'), b), v);
    if (b.length > 1) assert.ok(!(b[0] === 0 && (b[1] & 0x80) === 0) && !(b[0] === 0xff && (b[1] & 0x80) !== 0), `not minimal for ${v}`);
  }
});

test('type strings', () => {
  assert.deepEqual(parsePrimitive('decimal( 38 , 10 )'), { kind: 'decimal', precision: 38, scale: 10 });
  assert.throws(() => parsePrimitive('decimal(39,0)'), /not an Iceberg primitive type/);
  assert.throws(() => parsePrimitive('varchar'), /"varchar" is not an Iceberg primitive type/);
});
