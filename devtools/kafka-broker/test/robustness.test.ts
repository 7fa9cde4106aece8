import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { ApiKey, ErrorCode, startDevBroker, type DevBroker } from '#kafka-broker/index.js';
import { kafka, RawClient } from './helpers.js';

let broker: DevBroker;
before(async () => {
  broker = await startDevBroker({ port: 0, maxFrameBytes: 1024 * 1024 });
});
after(() => broker.stop());

function frame(body: Buffer, declared = body.length): Buffer {
  const head = Buffer.alloc(4);
  head.writeInt32BE(declared, 0);
  return Buffer.concat([head, body]);
}
function header(apiKey: number, version: number): Buffer {
  const b = Buffer.alloc(10);
  b.writeInt16BE(apiKey, 0);
  b.writeInt16BE(version, 2);
  b.writeInt32BE(7, 4);
  b.writeInt16BE(-1, 8);
  return b;
}

/** A simple deterministic PRNG so a failure can be replayed. */
function randomBytes(seed: number, n: number): Buffer {
  const out = Buffer.alloc(n);
  let x = seed;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

async function assertHealthy(): Promise<void> {
  const admin = kafka(broker.address).admin();
  await admin.connect();
  assert.ok(Array.isArray(await admin.listTopics()));
  await admin.disconnect();
}

test('malformed, oversized and unknown requests close only their own connection', async () => {
  const closing: [string, Buffer][] = [
    ['oversized frame', frame(Buffer.alloc(16), 0x7fffffff)],
    ['negative size', frame(Buffer.alloc(16), -5)],
    ['frame smaller than a header', frame(Buffer.alloc(3))],
    ['unknown API key', frame(header(999, 0))],
    ['unsupported Produce v0', frame(Buffer.concat([header(0, 0), Buffer.alloc(20)]))],
    ['Metadata with a lying array count', frame(Buffer.concat([header(3, 1), Buffer.from([0x7f, 0xff, 0xff, 0xff])]))],
    ['Metadata with a truncated topic name', frame(Buffer.concat([header(3, 1), Buffer.from([0, 0, 0, 1, 0, 50, 65])]))],
    [
      'Produce with records past the frame',
      frame(
        Buffer.concat([
          header(0, 7),
          Buffer.from([0xff, 0xff, 0, 1, 0, 0, 0, 10, 0, 0, 0, 1, 0, 1, 65, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 9, 99]),
        ]),
      ),
    ],
  ];
  for (const [name, bytes] of closing) {
    const raw = await RawClient.connect(broker.port);
    raw.write(bytes);
    const outcome = await Promise.race([raw.closed.then(() => 'closed'), new Promise((r) => setTimeout(() => r('still open'), 5_000))]);
    assert.equal(outcome, 'closed', name);
  }
  // Random garbage and frames cut short by a client that then disconnects.
  for (let seed = 1; seed <= 20; seed++) {
    const raw = await RawClient.connect(broker.port);
    const garbage = randomBytes(seed, 64 + seed * 97);
    raw.write(seed % 2 ? garbage : frame(garbage, garbage.length + 100));
    await new Promise((r) => setTimeout(r, 5));
    raw.close();
  }
  await assertHealthy();
});

test('a too-new ApiVersions gets the KIP-511 answer, v3 the flexible one', async () => {
  const raw = await RawClient.connect(broker.port);
  try {
    const r = await raw.request(ApiKey.ApiVersions, 9, () => undefined);
    assert.equal(r.int16(), ErrorCode.UNSUPPORTED_VERSION);
    const ranges = r.array((r) => [r.int16(), r.int16(), r.int16()]);
    assert.deepEqual(
      ranges.find(([k]) => k === ApiKey.ApiVersions),
      [18, 0, 3],
    );
    const v3 = await raw.request(ApiKey.ApiVersions, 3, (w) =>
      w.uvarint(0).uvarint(4).raw(Buffer.from('raw')).uvarint(2).raw(Buffer.from('1')).uvarint(0),
    );
    assert.equal(v3.int16(), ErrorCode.NONE);
    const count = v3.uvarint() - 1;
    assert.equal(count, ranges.length);
  } finally {
    raw.close();
  }
});

/** Fetch v11 of one partition; returns error, high watermark, log start and record bytes. */
async function fetchOnce(raw: RawClient, topic: string, offset: number, maxWaitMs: number) {
  const r = await raw.request(ApiKey.Fetch, 11, (w) => {
    w.int32(-1)
      .int32(maxWaitMs)
      .int32(1)
      .int32(1 << 20)
      .int8(0)
      .int32(0)
      .int32(-1);
    w.array([topic], (w, t) =>
      w.string(t).array([0], (w) =>
        w
          .int32(0)
          .int32(-1)
          .int64(offset)
          .int64(-1)
          .int32(1 << 20),
      ),
    );
    w.int32(0).string('');
  });
  r.int32();
  assert.equal(r.int16(), 0);
  r.int32();
  const [[p]] = r.array(
    (r) => (
      r.string(),
      r.array((r) => {
        const partition = { index: r.int32(), error: r.int16(), hwm: r.int64(), lso: r.int64(), logStart: r.int64() };
        r.int32();
        r.int32();
        return { ...partition, records: r.bytes() };
      })
    ),
  );
  return p;
}

test('fetch long-polls until a produce arrives and reports offsets out of range', { timeout: 15_000 }, async () => {
  broker.createTopic('poll', 1);
  const raw = await RawClient.connect(broker.port);
  try {
    // Empty partition, short wait: an empty answer with the right watermarks.
    const empty = await fetchOnce(raw, 'poll', 0, 50);
    assert.deepEqual([empty.error, empty.hwm, empty.logStart, empty.records.length], [0, 0, 0, 0]);
    // A wait far longer than the test timeout: only the append can end it.
    const waiting = fetchOnce(raw, 'poll', 0, 600_000);
    setTimeout(() => broker.append('poll', 0, [{ value: 'wake' }]), 50);
    const woken = await waiting;
    assert.equal(woken.error, 0);
    assert.equal(woken.hwm, 1);
    assert.ok(woken.records.includes(Buffer.from('wake')));

    broker.append('poll', 0, [{ value: 'x' }, { value: 'y' }]);
    broker.deleteRecordsBefore('poll', 0, 2);
    const below = await fetchOnce(raw, 'poll', 1, 0);
    assert.deepEqual([below.error, below.logStart, below.hwm], [ErrorCode.OFFSET_OUT_OF_RANGE, 2, 3]);
    const beyond = await fetchOnce(raw, 'poll', 4, 0);
    assert.equal(beyond.error, ErrorCode.OFFSET_OUT_OF_RANGE);
    const unknown = await fetchOnce(raw, 'no-such-topic', 0, 0);
    assert.equal(unknown.error, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION);
  } finally {
    raw.close();
  }
});

test('fault injection: failNext errors reach the client, delays hold responses, drops close sockets', async () => {
  broker.createTopic('faulty', 1);
  const producer = kafka(broker.address).producer({ retry: { retries: 0 } });
  await producer.connect();
  try {
    broker.faults.failNext(ApiKey.Produce, 1, ErrorCode.INVALID_RECORD);
    await assert.rejects(producer.send({ topic: 'faulty', messages: [{ value: 'no' }] }), (err: unknown) => {
      const cause = (err as { cause?: unknown }).cause ?? err;
      return (cause as { type?: string }).type === 'INVALID_RECORD';
    });
    await producer.send({ topic: 'faulty', messages: [{ value: 'yes' }] });
    assert.equal(broker.highWatermark('faulty', 0), 1, 'only the second send landed');
  } finally {
    await producer.disconnect();
  }

  broker.faults.setResponseDelay(200);
  const raw = await RawClient.connect(broker.port);
  const started = Date.now();
  await raw.request(ApiKey.ApiVersions, 0, () => undefined);
  assert.ok(Date.now() - started >= 190, 'response held back by the injected delay');
  broker.faults.clear();

  assert.throws(() => broker.faults.failNext(999, 1, ErrorCode.INVALID_RECORD), /API key 999 is not implemented/);
  assert.throws(() => broker.faults.setResponseDelay(-1), /response delay/);

  broker.faults.dropAllConnections();
  await raw.closed;
  await assertHealthy();
});

test('stopping the broker answers parked fetches and frees the port', async () => {
  const b = await startDevBroker({ port: 0 });
  b.createTopic('t', 1);
  const raw = await RawClient.connect(b.port);
  const parked = fetchOnce(raw, 't', 0, 600_000).catch(() => 'closed');
  await new Promise((r) => setTimeout(r, 20));
  await b.stop();
  await raw.closed;
  void parked;
  const refused = await new Promise((resolve) =>
    connect(b.port, '127.0.0.1')
      .on('error', () => resolve(true))
      .on('connect', () => resolve(false)),
  );
  assert.equal(refused, true);
});
