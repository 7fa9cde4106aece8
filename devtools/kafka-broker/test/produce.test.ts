import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { crc32c } from '#kafka-broker/protocol/crc32c.js';
import { BATCH, encodeBatch } from '#kafka-broker/protocol/record-batch.js';
import { Writer } from '#kafka-broker/protocol/writer.js';
import { ApiKey, ErrorCode, startDevBroker, type DevBroker } from '#kafka-broker/index.js';
import { RawClient } from './helpers.js';

let broker: DevBroker;
let raw: RawClient;
before(async () => {
  broker = await startDevBroker({ port: 0 });
  broker.createTopic('idem', 1);
  raw = await RawClient.connect(broker.port);
});
after(async () => {
  raw.close();
  await broker.stop();
});

/** A batch stamped as an idempotent producer's, with a valid CRC. */
function idempotentBatch(producerId: bigint, epoch: number, sequence: number, values: string[]): Buffer {
  const b = encodeBatch(values.map((value) => ({ value, timestamp: 1 })));
  b.writeBigInt64BE(producerId, BATCH.PRODUCER_ID);
  b.writeInt16BE(epoch, BATCH.PRODUCER_EPOCH);
  b.writeInt32BE(sequence, BATCH.BASE_SEQUENCE);
  b.writeUInt32BE(crc32c(b, BATCH.ATTRIBUTES), BATCH.CRC);
  return b;
}

async function produce(records: Buffer, acks = -1): Promise<{ error: number; baseOffset: number } | null> {
  const send = (w: Writer) =>
    w
      .nullableString(null)
      .int16(acks)
      .int32(5000)
      .array(['idem'], (w, t) => w.string(t).array([0], (w) => w.int32(0).bytes(records)));
  if (acks === 0) {
    raw.write(frameOf(send));
    return null;
  }
  const r = await raw.request(ApiKey.Produce, 7, send);
  const [[p]] = r.array(
    (r) => (
      r.string(), r.array((r) => ({ index: r.int32(), error: r.int16(), baseOffset: r.int64(), time: r.int64(), logStart: r.int64() }))
    ),
  );
  return { error: p.error, baseOffset: p.baseOffset };
}

function frameOf(body: (w: Writer) => void): Buffer {
  const w = new Writer();
  w.int16(ApiKey.Produce).int16(7).int32(999).string('raw');
  body(w);
  const payload = Buffer.concat(w.finish());
  const head = Buffer.alloc(4);
  head.writeInt32BE(payload.length, 0);
  return Buffer.concat([head, payload]);
}

test('idempotent producers: retries are deduplicated and sequence gaps refused', async () => {
  const r = await raw.request(ApiKey.InitProducerId, 1, (w) => w.nullableString(null).int32(60_000));
  r.int32();
  assert.equal(r.int16(), ErrorCode.NONE);
  const producerId = r.int64Big();
  assert.ok(producerId >= 0n);

  const first = idempotentBatch(producerId, 0, 0, ['a', 'b']);
  assert.deepEqual(await produce(first), { error: 0, baseOffset: 0 });
  assert.deepEqual(await produce(first), { error: 0, baseOffset: 0 }, 'a retried batch gets its original offset');
  assert.equal(broker.highWatermark('idem', 0), 2, 'and is not appended twice');
  assert.equal((await produce(idempotentBatch(producerId, 0, 5, ['gap'])))!.error, ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER);
  assert.deepEqual(await produce(idempotentBatch(producerId, 0, 2, ['c'])), { error: 0, baseOffset: 2 });
  assert.equal(broker.highWatermark('idem', 0), 3);
});

test('acks=0 produce is appended without a response', async () => {
  const before = broker.highWatermark('idem', 0);
  await produce(encodeBatch([{ value: 'fire-and-forget' }]), 0);
  // The next response on the connection must be the ApiVersions one (RawClient checks ids).
  const r = await raw.request(ApiKey.ApiVersions, 0, () => undefined);
  assert.equal(r.int16(), ErrorCode.NONE);
  assert.equal(broker.highWatermark('idem', 0), before + 1);
});

test('a corrupt batch is refused with CORRUPT_MESSAGE and nothing is appended', async () => {
  const before = broker.highWatermark('idem', 0);
  const bad = encodeBatch([{ value: 'x' }]);
  bad[bad.length - 1] ^= 1;
  assert.equal((await produce(bad))!.error, ErrorCode.CORRUPT_MESSAGE);
  assert.equal(broker.highWatermark('idem', 0), before);
});
