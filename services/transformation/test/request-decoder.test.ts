/**
 * The Transform stream's request decoder (request-decoder.ts) against the generated
 * TransformRequest.decode: the same message from every input, the same refusal of malformed
 * ones, and record bytes viewed instead of copied.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { BinaryWriter } from '@bufbuild/protobuf/wire';
import { type RecordRun, TransformOpen, TransformRequest } from '#shared/gen/sluice/v1/transformation.js';
import { seededRandom } from '#test-support/random.js';
import { decodeTransformRequest } from '../src/request-decoder.js';

function randomRun(next: () => number, index: number): RecordRun {
  const count = Math.floor(next() * 6);
  const withKeys = next() < 0.5;
  const values: Buffer[] = [];
  const keys: Buffer[] = [];
  const run: RecordRun = {
    topic: `topic-${index}-ü`,
    partition: Math.floor(next() * 4),
    baseOffset: next() < 0.2 ? 0 : Math.floor(next() * 2 ** 40),
    offsetDeltas: [],
    timestampsMs: [],
    values: Buffer.alloc(0),
    valueLengths: [],
    keys: Buffer.alloc(0),
    keyLengths: [],
    headers: [],
  };
  for (let i = 0; i < count; i++) {
    run.offsetDeltas.push(i + Math.floor(next() * 3));
    run.timestampsMs.push(next() < 0.1 ? -1 : 1_700_000_000_000 + Math.floor(next() * 1e9));
    const value = next() < 0.15 ? null : Buffer.from(`{"n":${i},"s":"${'x'.repeat(Math.floor(next() * 40))}"}`);
    if (value) values.push(value);
    run.valueLengths.push(value?.length ?? -1);
    if (withKeys) {
      const key = next() < 0.3 ? null : Buffer.from(`k${i}`);
      if (key) keys.push(key);
      run.keyLengths.push(key?.length ?? -1);
    }
    if (next() < 0.2) run.headers.push({ index: i, headers: [{ key: 'h', value: next() < 0.5 ? Buffer.from('v') : undefined }] });
  }
  run.values = Buffer.concat(values);
  run.keys = Buffer.concat(keys);
  return run;
}

function randomRequest(next: () => number): TransformRequest {
  const pick = next();
  if (pick < 0.1) return { message: { $case: 'errorsProduced', value: { sequence: Math.floor(next() * 1000) } } };
  if (pick < 0.2) {
    const open = { job: `job-${Math.floor(next() * 9)}`, workerId: 'w-1', flushBufferBytes: 1024, errorsCommitted: 2 };
    return { message: { $case: 'open', value: TransformOpen.fromPartial(open) } };
  }
  const runs = Array.from({ length: Math.floor(next() * 3) }, (_, i) => randomRun(next, i));
  return {
    message: {
      $case: 'batch',
      value: {
        sequence: Math.floor(next() * 10_000),
        covers: runs.map((r) => ({ topic: r.topic, partition: r.partition, startOffset: r.baseOffset, endOffset: r.baseOffset + 10 })),
        runs,
        traceparent: next() < 0.5 ? '' : '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
      },
    },
  };
}

/** What a decoder makes of `bytes`: its message, or that it threw. */
/**
 * Our decoder with its runs' typed-array columns read back as arrays (the generated decoder's
 * form), so the two compare element by element.
 */
function ourDecode(bytes: Uint8Array): TransformRequest {
  const request = decodeTransformRequest(bytes);
  if (request.message?.$case === 'batch')
    for (const run of request.message.value.runs) {
      run.offsetDeltas = Array.from(run.offsetDeltas);
      run.timestampsMs = Array.from(run.timestampsMs);
      run.valueLengths = Array.from(run.valueLengths);
      run.keyLengths = Array.from(run.keyLengths);
    }
  return request;
}

function outcome(decode: (b: Uint8Array) => TransformRequest, bytes: Uint8Array): TransformRequest | 'throws' {
  try {
    return decode(bytes);
  } catch {
    return 'throws';
  }
}

describe('decodeTransformRequest', () => {
  test('gives the generated decoder’s message for 2,000 random requests', () => {
    const next = seededRandom(15);
    for (let i = 0; i < 2000; i++) {
      const bytes = TransformRequest.encode(randomRequest(next)).finish();
      assert.deepStrictEqual(ourDecode(bytes), TransformRequest.decode(bytes), `request ${i}`);
    }
  });

  test('agrees with it on truncated and corrupted bytes: the same message, or both refuse', () => {
    const next = seededRandom(16);
    let refused = 0;
    for (let i = 0; i < 3000; i++) {
      const bytes = Buffer.from(TransformRequest.encode(randomRequest(next)).finish());
      let broken: Buffer;
      if (next() < 0.5) broken = bytes.subarray(0, Math.floor(next() * bytes.length));
      else {
        broken = Buffer.from(bytes);
        for (let k = 0; k < 3; k++) broken[Math.floor(next() * broken.length)] = Math.floor(next() * 256);
      }
      const ours = outcome(ourDecode, broken);
      assert.deepStrictEqual(ours, outcome(TransformRequest.decode, broken), `input ${i}: ${broken.toString('hex')}`);
      if (ours === 'throws') refused++;
    }
    // The corpus must reach the refusals, not only inputs both happen to read.
    assert.ok(refused > 300, `only ${refused} inputs were refused`);
  });

  test('reads repeated scalars written unpacked, and skips unknown fields', () => {
    const w = new BinaryWriter();
    const run = new BinaryWriter();
    run.uint32(10).string('t');
    run.uint32(32).uint32(0).uint32(32).uint32(2); // offset_deltas, one value per tag
    run.uint32(41).double(5).uint32(41).double(6);
    run.uint32(56).sint32(-1).uint32(56).sint32(0);
    run.uint32(72).sint32(1).uint32(72).sint32(-1);
    run.uint32(66).bytes(Buffer.from('k'));
    run.uint32(99 * 8).uint32(7); // an unknown varint field
    run.uint32(98 * 8 + 2).bytes(Buffer.from('ignored'));
    w.uint32(18).fork().uint32(8).int64(3).uint32(34).bytes(run.finish()).join();
    const bytes = w.finish();
    const ours = ourDecode(bytes);
    assert.deepStrictEqual(ours, TransformRequest.decode(bytes));
    const batch = ours.message?.$case === 'batch' ? ours.message.value : assert.fail('not a batch');
    assert.deepStrictEqual(batch.runs[0].offsetDeltas, [0, 2]);
    assert.deepStrictEqual(batch.runs[0].keyLengths, [1, -1]);
  });

  test('views the record bytes in the received message instead of copying them', () => {
    const run = randomRun(seededRandom(3), 0);
    run.values = Buffer.from('{"a":1}{"a":2}');
    run.valueLengths = [7, 7];
    run.offsetDeltas = [0, 1];
    run.timestampsMs = [1, 2];
    run.keys = Buffer.from('kk');
    run.keyLengths = [1, 1];
    const bytes = Buffer.from(
      TransformRequest.encode({ message: { $case: 'batch', value: { sequence: 1, covers: [], runs: [run], traceparent: '' } } }).finish(),
    );
    const decoded = decodeTransformRequest(bytes);
    const got = decoded.message?.$case === 'batch' ? decoded.message.value.runs[0] : assert.fail('not a batch');
    assert.equal(got.values.toString(), '{"a":1}{"a":2}');
    assert.equal(got.values.buffer, bytes.buffer, 'values share the message’s memory');
    assert.equal(got.keys.buffer, bytes.buffer, 'keys share the message’s memory');
    // Packed columns come as typed arrays, which the collector does not copy element by element.
    const columns = got as unknown as Record<string, unknown>;
    assert.ok(columns.offsetDeltas instanceof Uint32Array && columns.timestampsMs instanceof Float64Array);
    assert.ok(columns.valueLengths instanceof Int32Array && columns.keyLengths instanceof Int32Array);
    assert.deepStrictEqual([...got.offsetDeltas, ...got.timestampsMs, ...got.valueLengths, ...got.keyLengths], [0, 1, 1, 2, 7, 7, 1, 1]);
    // The generated decoder copies: its values do not change with the message.
    const generated = TransformRequest.decode(bytes);
    bytes[bytes.indexOf('{"a":1}')] = 0x5b;
    assert.equal(got.values.toString().charAt(0), '[');
    assert.equal((generated.message!.value as { runs: RecordRun[] }).runs[0].values.toString().charAt(0), '{');
  });
});
