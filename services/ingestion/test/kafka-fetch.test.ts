/**
 * Ingestion's fetch path (kafka/broker-connection.ts, kafka/fetch.ts, kafka/record-batches.ts)
 * against the dev broker, with kafkajs's own consumer as the reference: every record kafkajs
 * reads (offset, timestamp, key, value, headers) the fetch path must read the same, and no
 * other. fetch-path.test.ts does this with kcat (librdkafka) as the reference; this file adds
 * what kafkajs produces (plain, gzip, a large batch, two producers' interleaved transactions,
 * snappy and lz4 from the pure-JS compressors), read_uncommitted, a real response cut at every
 * byte, and the decoder's malformed-input and aborted-transaction rules on hand-made batches.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import kafkajs, { CompressionTypes, Kafka, type KafkaMessage, logLevel, type Message } from 'kafkajs';
import { compress as lz4Compress } from 'lz4js';
import { compress as snappyCompress } from 'snappyjs';
import { type DevBroker, startDevBroker } from '#kafka-broker/index.js';
import { ControlType, encodeBatch, encodeControlBatch } from '#kafka-broker/protocol/record-batch.js';
import { Codec, decompress } from '#shared/kafka-compression.js';
import { kcat as runKcat } from '#test-support/kcat.js';
import { waitFor } from '#test-support/wait.js';
import { BrokerConnection } from '../src/kafka/broker-connection.js';
import { decodeFetchResponse, encodeFetchRequest, type FetchedPartition } from '../src/kafka/fetch.js';
import { FetchedRecords } from '../src/kafka/fetched-records.js';
import { decodeRecordBatches, RecordBatchError } from '../src/kafka/record-batches.js';
import { type TakenRecord, takeRecords } from './support/taken-records.js';

const FETCH = 1;
const OFFSET_OUT_OF_RANGE = 1;

// kafkajs ships gzip only. These give its producer snappy and lz4 (the pure-JS compressors) and
// its consumer all three; the consumer decompresses with the same module as the fetch path, so
// here kafkajs judges the records inside, and fetch-path.test.ts (kcat, librdkafka's native
// codecs) judges the decompression.
const kafkajsCodec = (codec: number, compress?: (data: Buffer) => Buffer) => () => ({
  async compress(encoder: { buffer: Buffer }): Promise<Buffer> {
    if (!compress) throw new Error(`no compressor for codec ${codec}`);
    return compress(encoder.buffer);
  },
  async decompress(data: Buffer): Promise<Buffer> {
    return decompress(codec, data);
  },
});
// (CompressionCodecs through the default export: Node's CommonJS export detection misses it.)
const { CompressionCodecs } = kafkajs;
CompressionCodecs[CompressionTypes.Snappy] = kafkajsCodec(Codec.SNAPPY, (data) => snappyCompress(data));
CompressionCodecs[CompressionTypes.LZ4] = kafkajsCodec(Codec.LZ4, (data) => Buffer.from(lz4Compress(data)));
CompressionCodecs[CompressionTypes.ZSTD] = kafkajsCodec(Codec.ZSTD);

let broker: DevBroker;
let client: Kafka;
let conn: BrokerConnection;

before(async () => {
  broker = await startDevBroker({ port: 0, defaultPartitions: 1 });
  client = new Kafka({
    clientId: 'kafka-fetch-test',
    brokers: [broker.address],
    logLevel: logLevel.NOTHING,
    retry: { retries: 5, initialRetryTime: 50 },
  });
  const [host, port] = broker.address.split(':');
  conn = await BrokerConnection.connect(host, Number(port), { clientId: 'kafka-fetch-test', connectTimeoutMs: 5_000 });
});
after(async () => {
  conn.close();
  await broker.stop();
});

async function produce(topic: string, batches: { messages: Message[]; compression?: CompressionTypes }[]): Promise<void> {
  const producer = client.producer({ allowAutoTopicCreation: false });
  await producer.connect();
  try {
    for (const b of batches) await producer.send({ topic, messages: b.messages, compression: b.compression });
  } finally {
    await producer.disconnect();
  }
}

async function kcat(args: string[], input: string): Promise<void> {
  const res = await runKcat(broker.address, args, input);
  assert.equal(res.code, 0, res.stderr);
}

interface Fetched {
  readonly body: Buffer;
  readonly partition: FetchedPartition;
}

async function fetchOnce(topic: string, fetchOffset: number, opts: { maxBytes?: number; isolationLevel?: 0 | 1 } = {}): Promise<Fetched> {
  const maxBytes = opts.maxBytes ?? 1 << 20;
  const request = encodeFetchRequest({
    maxWaitMs: 0,
    minBytes: 0,
    maxBytes,
    isolationLevel: opts.isolationLevel ?? 1,
    topic,
    partitions: [{ partition: 0, fetchOffset, maxBytes }],
  });
  const body = await conn.request(FETCH, 11, request, { timeoutMs: 10_000 });
  const { errorCode, partitions } = decodeFetchResponse(body, topic);
  assert.equal(errorCode, 0);
  assert.equal(partitions.length, 1);
  return { body, partition: partitions[0] };
}

/** Partition 0 read from offset 0 as a consumer reads it: each fetch at the previous nextOffset. */
async function fetchAll(
  topic: string,
  opts: { maxBytes?: number; isolationLevel?: 0 | 1 } = {},
): Promise<{ records: TakenRecord[]; fetches: number; position: number }> {
  const records: TakenRecord[] = [];
  let position = 0;
  for (let fetches = 1; ; fetches++) {
    const { partition: p } = await fetchOnce(topic, position, opts);
    assert.equal(p.errorCode, 0, `fetch at ${position}`);
    for (const r of takeRecords(p.records)) if (r.offset >= position) records.push(r); // a batch comes whole
    if (p.nextOffset === null) return { records, fetches, position };
    assert.ok(p.nextOffset > position, `nextOffset ${p.nextOffset} moves past ${position}`);
    position = p.nextOffset;
    assert.ok(fetches < 10_000, 'fetching ends');
  }
}

/**
 * What kafkajs's consumer reads of the topic from the beginning, in a group of its own, until
 * a batch it processed (a filtered-out one included) reaches the high watermark.
 */
async function kafkajsReads(topic: string, readUncommitted = false): Promise<KafkaMessage[]> {
  const consumer = client.consumer({
    groupId: `reference-${topic}-${readUncommitted ? 'uncommitted' : 'committed'}`,
    readUncommitted,
    maxWaitTimeInMs: 50,
    sessionTimeout: 10_000,
    heartbeatInterval: 500,
  });
  const messages: KafkaMessage[] = [];
  let atEnd = false;
  consumer.on(consumer.events.END_BATCH_PROCESS, ({ payload }) => {
    if (Number(payload.lastOffset) >= Number(payload.highWatermark) - 1) atEnd = true;
  });
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({ eachMessage: async ({ message }) => void messages.push(message) });
    await waitFor(`kafkajs to read ${topic} to its end`, () => atEnd);
  } finally {
    await consumer.disconnect();
  }
  return messages;
}

type Headers = Record<string, Buffer | null | (Buffer | null)[]>;

/** A record as kafkajs gives it: decimal strings, Buffers, headers folded into an object. */
interface Seen {
  offset: string;
  timestamp: string;
  key: Buffer | null;
  value: Buffer | null;
  headers: Headers;
}

function seenByKafkajs(m: KafkaMessage): Seen {
  return { offset: m.offset, timestamp: m.timestamp, key: m.key ?? null, value: m.value, headers: (m.headers ?? {}) as Headers };
}

/** Folds headers as kafkajs does: a repeated key becomes an array of its values, in order. */
function seenByUs(r: TakenRecord): Seen {
  const headers: Headers = {};
  for (const { key, value } of r.headers ?? []) {
    const had = headers[key];
    headers[key] = had === undefined ? value : Array.isArray(had) ? [...had, value] : [had, value];
  }
  return { offset: String(r.offset), timestamp: String(r.timestamp), key: r.key, value: r.value, headers };
}

/** The batches of a response's (single) records field: where each starts and its offsets. */
function batchesOf(body: Buffer): { start: number; end: number; baseOffset: number; nextOffset: number; codec: number }[] {
  const field = recordsField(body);
  const out = [];
  for (let pos = field.start; pos < field.start + field.size; ) {
    const end = pos + 12 + body.readInt32BE(pos + 8);
    const baseOffset = Number(body.readBigInt64BE(pos));
    out.push({
      start: pos,
      end,
      baseOffset,
      nextOffset: baseOffset + body.readInt32BE(pos + 23) + 1,
      codec: body.readInt16BE(pos + 21) & 7,
    });
    pos = end;
  }
  return out;
}

/** Where the records field of a Fetch v11 response with one topic and one partition lies. */
function recordsField(body: Buffer): { sizeAt: number; start: number; size: number } {
  let at = 4 + 2 + 4 + 4; // throttle time, error code, session id, topic count
  at += 2 + body.readInt16BE(at); // topic name
  at += 4 + 4 + 2 + 3 * 8; // partition count, partition, error code, three offsets
  at += 4 + Math.max(0, body.readInt32BE(at)) * 16; // aborted transactions
  at += 4; // preferred read replica
  return { sizeAt: at, start: at + 4, size: body.readInt32BE(at) };
}

/** The response as a broker cuts it at a size limit: only the first `keep` bytes of its records. */
function cutRecords(body: Buffer, keep: number): Buffer {
  const field = recordsField(body);
  const cut = Buffer.from(body.subarray(0, field.start + keep));
  cut.writeInt32BE(keep, field.sizeAt);
  return cut;
}

/** A Fetch v11 response with one partition holding `records`, as a broker encodes it. */
function fetchResponse(topic: string, partition: number, records: Buffer, aborted: readonly [bigint, number][] | null = null): Buffer {
  const name = Buffer.from(topic);
  const head = Buffer.alloc(14 + 2 + name.length + 4 + 6 + 24 + 4 + (aborted?.length ?? 0) * 16 + 8);
  let at = head.writeInt32BE(0, 0); // throttle time
  at = head.writeInt16BE(0, at);
  at = head.writeInt32BE(0, at); // session id
  at = head.writeInt32BE(1, at);
  at = head.writeInt16BE(name.length, at);
  at += name.copy(head, at);
  at = head.writeInt32BE(1, at);
  at = head.writeInt32BE(partition, at);
  at = head.writeInt16BE(0, at);
  at = head.writeBigInt64BE(1000n, at); // high watermark
  at = head.writeBigInt64BE(1000n, at); // last stable offset
  at = head.writeBigInt64BE(0n, at); // log start offset
  at = head.writeInt32BE(aborted === null ? -1 : aborted.length, at);
  for (const [producerId, firstOffset] of aborted ?? []) {
    at = head.writeBigInt64BE(producerId, at);
    at = head.writeBigInt64BE(BigInt(firstOffset), at);
  }
  at = head.writeInt32BE(-1, at); // preferred read replica
  head.writeInt32BE(records.length, at);
  return Buffer.concat([head, records]);
}

const TIME = 1_700_000_000_000;

/** An uncompressed batch of the dev broker's encoder, moved to baseOffset. */
function batch(baseOffset: number, values: (string | null)[], producer?: { id: bigint; transactional: boolean }): Buffer {
  const b = encodeBatch(
    values.map((value, i) => ({ value, timestamp: TIME + i })),
    TIME,
  );
  b.writeBigInt64BE(BigInt(baseOffset), 0);
  if (producer) {
    b.writeBigInt64BE(producer.id, 43);
    if (producer.transactional) b.writeInt16BE(0x10, 21);
  }
  return b;
}

function marker(offset: number, producerId: bigint, type: number): Buffer {
  const b = encodeControlBatch(producerId, 0, type, TIME);
  b.writeBigInt64BE(BigInt(offset), 0);
  return b;
}

const values = (records: readonly TakenRecord[]) => records.map((r) => r.value?.toString() ?? null);

/** The records of every complete batch in `field`, taken out of their holder, and where the last one ends. */
function decoded(field: Buffer, aborted: { producerId: string; firstOffset: number }[] | null = null) {
  const records = new FetchedRecords();
  const { nextOffset } = decodeRecordBatches(field, 0, field.length, aborted, records);
  return { records: takeRecords(records), nextOffset };
}

describe('the fetch path reads what kafkajs reads', () => {
  it('kafkajs batches plain and gzip: null and empty keys and values, unicode, binary, headers, a large batch', async () => {
    const topic = 'kafkajs-plain';
    broker.createTopic(topic, 1);
    const large = Array.from({ length: 4_000 }, (_, i) => ({
      key: `customer-${i % 97}`,
      value: JSON.stringify({ id: i, name: `customer ${i}`, email: `c${i}@example.com`, amount: i * 3.25, note: 'ż'.repeat(i % 30) }),
    }));
    await produce(topic, [
      {
        messages: [
          { key: 'k-0', value: 'plain', timestamp: String(TIME + 1) },
          { key: null, value: 'no key' },
          { key: 'tombstone', value: null },
          { key: '', value: '' },
          { key: 'ключ', value: 'zażółć gęślą jaźń ✓ 🚀', headers: { заголовок: 'значение', rep: ['x', 'y', 'z'], empty: '' } },
          { key: Buffer.from([0, 1, 2, 255]), value: Buffer.from([255, 254, 0, 0x80]) },
          { key: 'old', value: 'an hour back', timestamp: String(Date.now() - 3_600_000) },
        ],
      },
      {
        compression: CompressionTypes.GZIP,
        messages: Array.from({ length: 300 }, (_, i) => ({
          key: i % 3 === 0 ? null : `g${i}`,
          value: i % 7 === 0 ? null : `gzip ${i} ${'abc'.repeat(i % 20)}`,
          headers: i % 5 === 0 ? { trace: `t-${i}`, 'x-rep': ['1', '2'] } : undefined,
        })),
      },
      { messages: large },
    ]);
    // kafkajs cannot send a header with a null value (its size computation takes the byte
    // length of null), so kcat sends those: `-H name` alone is a null value.
    await kcat(['-P', '-t', topic, '-p', '0', '-K', '\t', '-H', 'rep=1', '-H', 'nul', '-H', 'rep=2'], 'kk\tnull header\n');
    const total = 7 + 300 + 4_000 + 1;

    const want = (await kafkajsReads(topic)).map(seenByKafkajs);
    assert.equal(want.length, total);
    const whole = await fetchAll(topic);
    assert.deepEqual(whole.records.map(seenByUs), want);
    const small = await fetchAll(topic, { maxBytes: 4 << 10 });
    assert.ok(small.fetches > whole.fetches, `4 KiB fetches (${small.fetches}) take more rounds than 1 MiB ones (${whole.fetches})`);
    assert.deepEqual(small.records.map(seenByUs), want);

    const last = whole.records[whole.records.length - 1];
    assert.deepEqual(last.headers, [
      { key: 'rep', value: Buffer.from('1') },
      { key: 'nul', value: null },
      { key: 'rep', value: Buffer.from('2') },
    ]);
    assert.equal(whole.records.filter((r) => r.headers === null).length, total - 1 - 60 - 1, 'headers only where sent');
    assert.equal(whole.position, total, 'the last nextOffset is the end of the log');
  });

  it("snappy, lz4 and zstd: librdkafka's zstd batches, the pure-JS compressors' from kafkajs", async () => {
    const topic = 'kafkajs-codecs';
    broker.createTopic(topic, 1);
    // zstd from kcat; snappy and lz4 from kafkajs with the pure-JS compressors. kcat (librdkafka
    // 2.0) sends gzip, snappy and lz4 uncompressed to the dev broker: it requires Produce v0 for
    // them ("Broker does not support compression type"), and the dev broker speaks v3 and up.
    const lines = Array.from({ length: 150 }, (_, i) => `zstd-${i}\t{"n":${i},"pad":"${'x'.repeat(50)}","s":"żółw ✓"}`);
    await kcat(
      ['-P', '-t', topic, '-p', '0', '-K', '\t', '-z', 'zstd', '-X', 'linger.ms=200', '-H', 'codec=zstd'],
      `${lines.join('\n')}\n`,
    );
    for (const compression of [CompressionTypes.Snappy, CompressionTypes.LZ4]) {
      await produce(topic, [
        {
          compression,
          messages: Array.from({ length: 150 }, (_, i) => ({
            key: i % 10 === 0 ? null : `js-${compression}-${i}`,
            value: i % 11 === 0 ? null : `{"n":${i},"compression":${compression},"pad":"${'y'.repeat(60)}"}`,
            headers: i % 4 === 0 ? { h: ['a', 'b'] } : undefined,
          })),
        },
      ]);
    }
    const { body } = await fetchOnce(topic, 0, { maxBytes: 8 << 20 });
    assert.deepEqual(
      [...new Set(batchesOf(body).map((b) => b.codec))].sort(),
      [Codec.SNAPPY, Codec.LZ4, Codec.ZSTD],
      'every batch compressed, with each of the three codecs',
    );

    const want = (await kafkajsReads(topic)).map(seenByKafkajs);
    assert.equal(want.length, 3 * 150);
    assert.deepEqual((await fetchAll(topic)).records.map(seenByUs), want);
    assert.deepEqual((await fetchAll(topic, { maxBytes: 2 << 10 })).records.map(seenByUs), want);
  });

  it('transactions of two producers, interleaved: read_committed leaves the aborted ones out, nextOffset covers the markers', async () => {
    const topic = 'kafkajs-transactions';
    broker.createTopic(topic, 1);
    const transactional = (id: string) => client.producer({ transactionalId: id, idempotent: true, maxInFlightRequests: 1 });
    const a = transactional('fetch-tx-a');
    const b = transactional('fetch-tx-b');
    const plain = client.producer();
    await Promise.all([a.connect(), b.connect(), plain.connect()]);
    try {
      const send = (tx: { send: typeof plain.send }, ...vals: string[]) => tx.send({ topic, messages: vals.map((value) => ({ value })) });
      const txA = await a.transaction();
      await send(txA, 'a1');
      const txB = await b.transaction();
      await send(txB, 'b1');
      await send(txA, 'a2', 'a3');
      await send(plain, 'p1');
      await txB.commit();
      await send(txA, 'a4');
      await txA.abort();
      const txA2 = await a.transaction();
      await send(txA2, 'a5');
      await txA2.commit();
      const txB2 = await b.transaction();
      await send(txB2, 'b2', 'b3');
      await txB2.abort(); // the log ends with an aborted transaction and its marker
    } finally {
      await Promise.all([a.disconnect(), b.disconnect(), plain.disconnect()]);
    }

    const committed = await fetchAll(topic);
    assert.deepEqual(values(committed.records), ['b1', 'p1', 'a5']);
    assert.deepEqual(committed.records.map(seenByUs), (await kafkajsReads(topic)).map(seenByKafkajs));

    const uncommitted = await fetchAll(topic, { isolationLevel: 0 });
    assert.deepEqual(values(uncommitted.records), ['a1', 'b1', 'a2', 'a3', 'p1', 'a4', 'a5', 'b2', 'b3'], 'markers are never records');
    assert.deepEqual(uncommitted.records.map(seenByUs), (await kafkajsReads(topic, true)).map(seenByKafkajs));

    // One batch at a time (the broker returns at least one): the aborted ones and the markers
    // alone in a response still move nextOffset on.
    const oneByOne = await fetchAll(topic, { maxBytes: 1 });
    assert.deepEqual(values(oneByOne.records), ['b1', 'p1', 'a5']);

    const whole = await fetchOnce(topic, 0);
    assert.equal(whole.partition.lastStableOffset, whole.partition.highWatermark);
    assert.equal(whole.partition.nextOffset, whole.partition.highWatermark, 'the trailing aborted records and marker are covered');
    const tail = await fetchOnce(topic, committed.records[committed.records.length - 1].offset + 1);
    assert.equal(tail.partition.records.count, 0);
    assert.equal(tail.partition.nextOffset, tail.partition.highWatermark);
  });

  it('an offset inside a batch returns the whole batch; at the end nothing; past it OFFSET_OUT_OF_RANGE', async () => {
    const topic = 'kafkajs-positions';
    broker.createTopic(topic, 1);
    await produce(topic, [{ messages: Array.from({ length: 10 }, (_, i) => ({ value: `v${i}` })) }, { messages: [{ value: 'v10' }] }]);
    const middle = (await fetchOnce(topic, 5)).partition;
    assert.deepEqual(
      takeRecords(middle.records).map((r) => r.offset),
      [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
      'the batch holding offset 5 comes whole; the caller skips what is below the offset',
    );
    assert.equal(middle.nextOffset, 11);
    const atEnd = (await fetchOnce(topic, 11)).partition;
    assert.deepEqual([atEnd.errorCode, atEnd.records.count, atEnd.nextOffset, atEnd.highWatermark], [0, 0, null, 11]);
    for (const offset of [12, 2 ** 32 + 5, 2 ** 52]) {
      const past = (await fetchOnce(topic, offset)).partition;
      assert.deepEqual([past.errorCode, past.records.count, past.nextOffset], [OFFSET_OUT_OF_RANGE, 0, null], `fetch at ${offset}`);
    }
  });
});

describe('a response cut at the size limit', () => {
  it('cut at every byte: the complete batches only, nextOffset where the cut batch starts', async () => {
    const topic = 'kafkajs-cuts';
    broker.createTopic(topic, 1);
    await produce(topic, [
      { messages: [{ key: 'a', value: 'first' }] },
      { messages: Array.from({ length: 5 }, (_, i) => ({ value: `second ${i}`, headers: { n: String(i) } })) },
      { compression: CompressionTypes.GZIP, messages: Array.from({ length: 20 }, (_, i) => ({ value: `third ${i}` })) },
      { messages: [{ value: null }, { value: 'fourth' }] },
    ]);
    const { body, partition: full } = await fetchOnce(topic, 0);
    const batches = batchesOf(body);
    assert.equal(batches.length, 4);
    const fieldStart = recordsField(body).start;
    for (let keep = 0; keep <= batches[3].end - fieldStart; keep++) {
      const complete = batches.filter((b) => b.end - fieldStart <= keep);
      const nextOffset = complete.length === 0 ? null : complete[complete.length - 1].nextOffset;
      const [p] = decodeFetchResponse(cutRecords(body, keep), topic).partitions;
      assert.equal(p.nextOffset, nextOffset, `cut after ${keep} bytes`);
      assert.deepEqual(
        takeRecords(p.records).map(seenByUs),
        takeRecords(full.records)
          .filter((r) => nextOffset !== null && r.offset < nextOffset)
          .map(seenByUs),
        `cut after ${keep} bytes`,
      );
    }
  });
});

describe('record batches, decoded on their own', () => {
  /** A message set of format v1 (Kafka before 0.11): one message, as a 0.10 broker stores it. */
  function messageSetV1(offset: number, magic: 0 | 1, value: string): Buffer {
    const v = Buffer.from(value);
    const message = Buffer.alloc(4 + 1 + 1 + (magic === 1 ? 8 : 0) + 4 + 4 + v.length);
    let at = message.writeUInt32BE(0, 0); // crc (not checked)
    at = message.writeInt8(magic, at);
    at = message.writeInt8(0, at); // attributes
    if (magic === 1) at = message.writeBigInt64BE(BigInt(TIME), at);
    at = message.writeInt32BE(-1, at); // null key
    at = message.writeInt32BE(v.length, at);
    v.copy(message, at);
    const head = Buffer.alloc(12);
    head.writeBigInt64BE(BigInt(offset), 0);
    head.writeInt32BE(message.length, 8);
    return Buffer.concat([head, message]);
  }

  const cases: [string, () => Buffer, RegExp][] = [
    [
      'a message set of magic 1',
      () => messageSetV1(7, 1, 'old'),
      /^record batch at offset 7: magic 1 \(message format v0\/v1\); Sluice reads/,
    ],
    ['a message set of magic 0', () => messageSetV1(7, 0, 'older'), /^record batch at offset 7: magic 0 \(message format v0\/v1\)/],
    [
      'an unknown codec 7',
      () => {
        const b = batch(7, ['x']);
        b.writeInt16BE(7, 21);
        return b;
      },
      /^record batch at offset 7: unknown compression codec 7$/,
    ],
    [
      'a truncated record',
      () => {
        const b = batch(7, ['first', 'second']);
        const cut = b.subarray(0, b.length - 3);
        cut.writeInt32BE(cut.length - 12, 8); // the batch is whole; its last record is not
        return cut;
      },
      /^record batch at offset 7: record 1 runs past the end of its batch$/,
    ],
    [
      'a length field shorter than a batch header',
      () => {
        const b = batch(7, ['x']);
        b.writeInt32BE(20, 8);
        return b;
      },
      /^record batch at offset 7: its length field says 20 bytes, less than a batch header$/,
    ],
    [
      'gzip records that are not gzip',
      () => {
        const b = batch(7, ['not compressed']);
        b.writeInt16BE(1, 21);
        return b;
      },
      /^record batch at offset 7: its records do not decompress \(codec 1\): /,
    ],
  ];
  for (const [name, make, message] of cases)
    it(`${name}: a RecordBatchError naming the batch's offset, and its partition from the response`, () => {
      const bad = make();
      const before = batch(3, ['a', 'b', 'c', 'd']); // a good batch first: the error is the bad one's
      const field = Buffer.concat([before, bad]);
      assert.throws(
        () => decodeRecordBatches(field, 0, field.length, null, new FetchedRecords()),
        (err: unknown) => err instanceof RecordBatchError && err.offset === 7 && message.test(err.message),
      );
      assert.throws(
        () => decodeFetchResponse(fetchResponse('orders', 3, field), 'orders'),
        (err: unknown) =>
          err instanceof RecordBatchError &&
          err.offset === 7 &&
          err.partition === 'orders/3' &&
          err.message.startsWith('orders/3: record batch at offset 7: '),
      );
    });

  it('a malformed batch of another topic is not read', () => {
    const bad = batch(7, ['x']);
    bad.writeInt16BE(7, 21);
    assert.deepEqual(decodeFetchResponse(fetchResponse('other', 0, bad), 'orders').partitions, []);
  });

  it('LogAppendTime: every record stamped with the batch maximum timestamp', () => {
    const b = batch(0, ['a', 'b', 'c']);
    b.writeInt16BE(0x08, 21);
    b.writeBigInt64BE(BigInt(TIME + 60_000), 35);
    assert.deepEqual(
      decoded(b).records.map((r) => r.timestamp),
      [TIME + 60_000, TIME + 60_000, TIME + 60_000],
    );
    assert.deepEqual(
      decoded(batch(0, ['a', 'b', 'c'])).records.map((r) => r.timestamp),
      [TIME, TIME + 1, TIME + 2],
    );
  });

  it("aborted transactions, as the Java consumer reads them: by producer, from the first offset to the producer's ABORT marker", () => {
    const p1 = { id: 1001n, transactional: true };
    const p2 = { id: 2_000_000_000_002n, transactional: true }; // above 2^32: compared whole
    const p3 = { id: 2_000_000_000_002n + 2n ** 32n, transactional: true }; // the same low half as p2
    const field = Buffer.concat([
      batch(0, ['p1 committed'], p1),
      marker(1, p1.id, ControlType.COMMIT),
      batch(2, ['p1 aborted', 'p1 aborted too'], p1),
      batch(4, ['p2 aborted'], p2),
      batch(5, ['p3 committed'], p3),
      batch(6, ['not transactional'], { id: p1.id, transactional: false }),
      marker(7, p1.id, ControlType.ABORT),
      batch(8, ['p1 after its abort'], p1),
      batch(9, ['p2 aborted later'], p2),
      marker(10, p2.id, ControlType.ABORT),
      marker(11, p3.id, ControlType.COMMIT),
      marker(12, p1.id, ControlType.COMMIT),
    ]);
    // Listed out of order, as nothing in the protocol promises an order.
    const aborted = [
      { producerId: String(p2.id), firstOffset: 4 },
      { producerId: String(p1.id), firstOffset: 2 },
    ];
    const { records, nextOffset } = decoded(field, aborted);
    assert.equal(nextOffset, 13);
    assert.deepEqual(values(records), ['p1 committed', 'p3 committed', 'not transactional', 'p1 after its abort']);

    assert.deepEqual(values(decoded(field).records), [
      'p1 committed',
      'p1 aborted',
      'p1 aborted too',
      'p2 aborted',
      'p3 committed',
      'not transactional',
      'p1 after its abort',
      'p2 aborted later',
    ]);

    // The same through a response: the aborted list arrives with the partition.
    const [p] = decodeFetchResponse(
      fetchResponse('orders', 0, field, [
        [p2.id, 4],
        [p1.id, 2],
      ]),
      'orders',
    ).partitions;
    assert.deepEqual(values(takeRecords(p.records)), values(records));
    assert.equal(p.nextOffset, 13);
  });

  it('a control batch alone, or an aborted batch alone, yields no records but a nextOffset', () => {
    const only = marker(40, 5n, ControlType.COMMIT);
    assert.deepEqual(decoded(only), { records: [], nextOffset: 41 });
    const abortedBatch = batch(41, ['gone', 'gone too'], { id: 5n, transactional: true });
    assert.deepEqual(decoded(abortedBatch, [{ producerId: '5', firstOffset: 41 }]), { records: [], nextOffset: 43 });
  });

  it('null keys, null values and a key or value of zero bytes are told apart', () => {
    const b = encodeBatch(
      [
        { key: null, value: null, timestamp: TIME },
        { key: '', value: '', timestamp: TIME },
        { key: 'k', value: 'v', timestamp: TIME },
      ],
      TIME,
    );
    const records = new FetchedRecords();
    decodeRecordBatches(b, 0, b.length, null, records);
    assert.deepEqual(
      Array.from({ length: records.count }, (_, i) => [
        records.keyLengths[i],
        records.valueLengths[i],
        records.key(i)?.toString() ?? null,
        records.value(i)?.toString() ?? null,
      ]),
      [
        [-1, -1, null, null],
        [0, 0, '', ''],
        [1, 1, 'k', 'v'],
      ],
    );
    assert.ok(
      records.data.slice(0, records.count).every((data) => data === b),
      'uncompressed records point into the buffer they came in',
    );
  });
});
