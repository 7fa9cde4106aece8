/**
 * Ingestion's own fetch path (kafka/broker-connection.ts, kafka/fetch.ts,
 * kafka/record-batches.ts) against the dev broker over TCP, with kcat (librdkafka, an
 * independent client, read_committed by default) as the reference: keys, null keys and values,
 * headers, committed and aborted transactions. kcat (librdkafka 2.0.2) compresses only zstd
 * here: it asks the broker for Produce v0-v2 before it uses gzip, snappy or lz4, and sends those
 * plain; kafka-fetch.test.ts reads batches kafkajs compressed with each of them. Then the cases a broker makes
 * rarely: a batch cut at the size limit, an offset past the end, and malformed batches.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Kafka, logLevel } from 'kafkajs';
import { type DevBroker, startDevBroker } from '#kafka-broker/index.js';
import { kcat as runKcat } from '#test-support/kcat.js';
import { encodeBatch as encodeDevBatch } from '#kafka-broker/protocol/record-batch.js';
import { BrokerConnection } from '../src/kafka/broker-connection.js';
import { decodeFetchResponse, encodeFetchRequest, type FetchedPartition } from '../src/kafka/fetch.js';
import { FetchedRecords } from '../src/kafka/fetched-records.js';
import { decodeRecordBatches, RecordBatchError } from '../src/kafka/record-batches.js';
import { roundOrder } from '../src/partition-fetcher.js';
import { type TakenRecord, takeRecords } from './support/taken-records.js';

let broker: DevBroker;
let conn: BrokerConnection;

before(async () => {
  broker = await startDevBroker({ port: 0, defaultPartitions: 1 });
  const [host, port] = broker.address.split(':');
  conn = await BrokerConnection.connect(host, Number(port), { clientId: 'fetch-path-test', connectTimeoutMs: 5_000 });
});
after(async () => {
  conn.close();
  await broker.stop();
});

async function kcat(args: string[], input = ''): Promise<string> {
  const res = await runKcat(broker.address, args, input);
  assert.equal(res.code, 0, res.stderr);
  return res.stdout;
}

function fetchOnce(topic: string, fetchOffset: number, maxBytes = 1 << 20): Promise<FetchedPartition> {
  const body = encodeFetchRequest({
    maxWaitMs: 0,
    minBytes: 0,
    maxBytes,
    isolationLevel: 1,
    topic,
    partitions: [{ partition: 0, fetchOffset, maxBytes }],
  });
  return conn.request(1, 11, body, { timeoutMs: 10_000 }).then((res) => {
    const { errorCode, partitions } = decodeFetchResponse(res, topic);
    assert.equal(errorCode, 0);
    assert.equal(partitions.length, 1);
    return partitions[0];
  });
}

/**
 * Every record of partition 0, fetched from 0 on as a consumer would: each fetch at the last
 * nextOffset, its records taken out (copied) before the next.
 */
async function fetchAll(topic: string, maxBytes?: number): Promise<{ records: TakenRecord[]; fetches: number }> {
  const records: TakenRecord[] = [];
  let position = 0;
  let fetches = 0;
  for (;;) {
    const p = await fetchOnce(topic, position, maxBytes);
    fetches++;
    assert.equal(p.errorCode, 0, `fetch at ${position}`);
    for (const r of takeRecords(p.records)) if (r.offset >= position) records.push(r);
    if (p.nextOffset === null || p.nextOffset >= p.highWatermark) {
      if (p.nextOffset !== null) position = p.nextOffset;
      if (position >= p.highWatermark) return { records, fetches };
    } else position = p.nextOffset;
    assert.ok(fetches < 10_000, 'fetching ends');
  }
}

/** A record as kcat prints it with the format below: offset, timestamp, key, value, headers. */
const KCAT_FORMAT = '%o|%T|%k|%s|%h\\n';
function asKcatLine(r: TakenRecord): string {
  const headers = r.headers?.map((h) => `${h.key}=${h.value?.toString() ?? 'NULL'}`).join(',') ?? '';
  return `${r.offset}|${r.timestamp}|${r.key?.toString() ?? 'NULL'}|${r.value?.toString() ?? 'NULL'}|${headers}`;
}

describe('the fetch path reads what librdkafka reads', () => {
  it('zstd and plain batches, keys and null keys, unicode, headers (repeated, null), across many fetches', async () => {
    const topic = 'codecs';
    broker.createTopic(topic, 1);
    for (const codec of ['none', 'gzip', 'snappy', 'lz4', 'zstd']) {
      const lines = Array.from({ length: 300 }, (_, i) => `${codec}-k${i}\t{"n":${i},"s":"zażółć ✓ ${codec} ${'x'.repeat(i % 40)}"}`);
      await kcat(
        ['-P', '-t', topic, '-p', '0', '-K', '\t', '-z', codec, '-H', 'origin=kcat', '-H', 'origin=again', '-H', 'empty'],
        `${lines.join('\n')}\n`,
      );
      await kcat(['-P', '-t', topic, '-p', '0', '-z', codec], 'no key here\n');
    }
    const want = (await kcat(['-C', '-t', topic, '-p', '0', '-e', '-Z', '-f', KCAT_FORMAT])).trimEnd().split('\n');
    assert.equal(want.length, 5 * 301);
    const { records, fetches } = await fetchAll(topic, 16 << 10);
    assert.ok(fetches > 3, `small fetches (${fetches}) cut the topic into many responses`);
    assert.deepEqual(records.map(asKcatLine), want);
    assert.equal(records.filter((r) => r.headers?.length === 3).length, 5 * 300);
  });

  it('read_committed: aborted transactions and markers are left out, yet covered by nextOffset', async () => {
    const topic = 'transactions';
    broker.createTopic(topic, 1);
    const kafka = new Kafka({ clientId: 'fetch-path-tx', brokers: [broker.address], logLevel: logLevel.NOTHING });
    const producer = kafka.producer({ transactionalId: 'fetch-path-tx', idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    try {
      const send = async (values: string[], commit: boolean) => {
        const tx = await producer.transaction();
        await tx.send({ topic, messages: values.map((value) => ({ value })) });
        await (commit ? tx.commit() : tx.abort());
      };
      await send(['c1', 'c2'], true);
      await send(['a1', 'a2', 'a3'], false);
      await producer.send({ topic, messages: [{ value: 'plain' }] });
      await send(['c3'], true);
      await send(['a4'], false); // the partition ends with an aborted transaction and its marker
    } finally {
      await producer.disconnect();
    }
    const want = (await kcat(['-C', '-t', topic, '-p', '0', '-e', '-Z', '-f', KCAT_FORMAT])).trimEnd().split('\n');
    const { records } = await fetchAll(topic);
    assert.deepEqual(records.map(asKcatLine), want);
    assert.deepEqual(
      records.map((r) => r.value?.toString()),
      ['c1', 'c2', 'plain', 'c3'],
    );
    const last = await fetchOnce(topic, records[records.length - 1].offset + 1);
    assert.equal(last.records.count, 0);
    assert.equal(last.nextOffset, last.highWatermark, 'the trailing aborted records and marker are covered');
  });

  it('an offset past the end is OFFSET_OUT_OF_RANGE; at the end, nothing and no next offset', async () => {
    const topic = 'ends';
    broker.createTopic(topic, 1);
    broker.append(topic, 0, [{ value: 'a' }, { value: 'b' }]);
    assert.equal((await fetchOnce(topic, 3)).errorCode, 1);
    const atEnd = await fetchOnce(topic, 2);
    assert.deepEqual([atEnd.errorCode, atEnd.records.count, atEnd.nextOffset, atEnd.highWatermark], [0, 0, null, 2]);
    const middle = await fetchOnce(topic, 1);
    assert.deepEqual(
      takeRecords(middle.records).map((r) => r.offset),
      [0, 1],
      'the whole batch holding the fetch offset comes back; the caller skips what is below it',
    );
  });
});

describe('record batches, decoded on their own', () => {
  const batch = (baseOffset: number, values: string[]) => {
    const b = encodeDevBatch(
      values.map((value) => ({ value, timestamp: 1_700_000_000_000 })),
      0,
    );
    b.writeBigInt64BE(BigInt(baseOffset), 0);
    return b;
  };

  it('a batch cut short at the end is left for the next fetch, not an error', () => {
    const first = batch(10, ['a', 'b']);
    const second = batch(12, ['c', 'd', 'e']);
    const records = new FetchedRecords();
    const field = Buffer.concat([first, second.subarray(0, second.length - 5)]);
    const { nextOffset } = decodeRecordBatches(field, 0, field.length, null, records);
    assert.deepEqual(
      takeRecords(records).map((r) => [r.offset, r.value?.toString()]),
      [
        [10, 'a'],
        [11, 'b'],
      ],
    );
    assert.equal(nextOffset, 12);
    assert.equal(decodeRecordBatches(field, 0, 20, null, new FetchedRecords()).nextOffset, null, 'a cut header: nothing complete');
  });

  const cases: [string, (b: Buffer) => Buffer, RegExp][] = [
    ['magic 1', (b) => (b.writeInt8(1, 16), b), /^record batch at offset 42: magic 1 \(message format v0\/v1\)/],
    ['an unknown codec', (b) => (b.writeInt16BE(7, 21), b), /^record batch at offset 42: unknown compression codec 7$/],
    [
      'a record longer than its batch',
      (b) => {
        b[61] = 0x7e; // the first record's length: 63 bytes, far past the batch's end
        return b;
      },
      /^record batch at offset 42: record 0 runs past the end of its batch$/,
    ],
    [
      'more records than the batch holds',
      (b) => (b.writeInt32BE(5, 57), b),
      /^record batch at offset 42: a record runs past the end of its batch$/,
    ],
  ];
  for (const [name, corrupt, message] of cases)
    it(`${name}: a RecordBatchError naming the batch's offset`, () => {
      const b = corrupt(batch(42, ['x']));
      assert.throws(
        () => decodeRecordBatches(b, 0, b.length, null, new FetchedRecords()),
        (err: unknown) => err instanceof RecordBatchError && err.offset === 42 && message.test(err.message),
      );
    });
});

describe('the order partitions are asked in', () => {
  // A broker hands a batch over the partition limit whole only to the first partition with data.
  const cases: [number[], number, number[]][] = [
    [[0, 1, 2], 0, [0, 1, 2]],
    [[0, 1, 2], 1, [1, 2, 0]],
    [[0, 1, 2], 2, [2, 0, 1]],
    [[0, 1, 2], 3, [0, 1, 2]],
    [[5], 7, [5]],
    [[], 3, []],
  ];
  for (const [targets, round, want] of cases)
    it(`round ${round} of ${JSON.stringify(targets)}: ${JSON.stringify(want)}`, () => assert.deepEqual(roundOrder(targets, round), want));
  it('every partition is asked first within as many rounds as there are partitions', () => {
    const firsts = new Set(Array.from({ length: 4 }, (_, round) => roundOrder([7, 8, 9, 10], round)[0]));
    assert.equal(firsts.size, 4);
  });
});
