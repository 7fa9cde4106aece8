/**
 * Ingestion's batch encoder (encodeBatch: a TransformRequest's bytes straight from fetched
 * records) against the reference (the generated encoder over recordRuns of record objects):
 * the same bytes, for generated batches with every shape a message may take.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { KafkaHeader, KafkaRecord, OffsetRange } from '#shared/gen/sluice/v1/types.js';
import { TransformRequest } from '#shared/gen/sluice/v1/transformation.js';
import { recordRuns } from '#shared/record-runs.js';
import { encodeBatch } from '../src/batch-encoder.js';
import { FetchedRecords, type RecordHeader } from '../src/kafka/fetched-records.js';
import { seededRandom } from '#test-support/random.js';

const OVERHEAD = 64;

function bytesOrNull(next: () => number, long: boolean): Buffer | null {
  const r = next();
  if (r < 0.15) return null;
  if (r < 0.25) return Buffer.alloc(0);
  return Buffer.from(Array.from({ length: 1 + Math.floor(next() * (long ? 400 : 40)) }, () => Math.floor(next() * 256)));
}

/**
 * Records as the fetch path decodes them: keys and values are ranges of the buffers they came
 * in, one after another with a few bytes between (a batch's record headers), several records
 * to a buffer and now and then a new buffer (a batch decompressed on its own). So the encoder's
 * copy stretches meet gaps of every size, buffer changes, and values long and short.
 */
function fetched(seed: number, count: number): FetchedRecords {
  const next = seededRandom(seed);
  const records = new FetchedRecords();
  let offset = Math.floor(next() * 1e6);
  const keyed = next() < 0.6;
  const long = next() < 0.3;
  /** The buffer being filled: its parts, and the records placed in it (positions in it). */
  let parts: Buffer[] = [];
  let size = 0;
  let placed: { offset: number; timestamp: number; key: Range; value: Range; headers: RecordHeader[] | null }[] = [];
  /** Appends a few bytes of gap, then the bytes: where they start and how long (-1: null). */
  const put = (bytes: Buffer | null): Range => {
    const gap = Buffer.alloc(Math.floor(next() * 10), 0xee);
    parts.push(gap, bytes ?? Buffer.alloc(0));
    size += gap.length;
    const start = size;
    size += bytes?.length ?? 0;
    return { start, length: bytes ? bytes.length : -1 };
  };
  /** The buffer is complete: its records are added, pointing into it. */
  const flush = () => {
    const data = Buffer.concat([...parts, Buffer.alloc(Math.floor(next() * 5), 0xee)]);
    for (const r of placed) records.add(r.offset, r.timestamp, data, r.key.start, r.key.length, r.value.start, r.value.length, r.headers);
    parts = [];
    size = 0;
    placed = [];
  };
  for (let n = 0; n < count; n++) {
    if (placed.length > 0 && next() < 0.15) flush();
    offset += next() < 0.1 ? 1 + Math.floor(next() * 100) : 1; // gaps, as compaction leaves
    const headers: RecordHeader[] = [];
    if (next() < 0.2) headers.push({ key: 'a', value: Buffer.from('x') });
    if (next() < 0.1) headers.push({ key: 'b', value: Buffer.from('1') }, { key: 'b', value: Buffer.from('two') });
    if (next() < 0.05) headers.push({ key: 'c', value: null });
    const key = put(keyed ? bytesOrNull(next, long) : null);
    const value = put(bytesOrNull(next, long));
    const timestamp = next() < 0.05 ? -1 : 1_700_000_000_000 + Math.floor(next() * 1e9);
    placed.push({ offset, timestamp, key, value, headers: headers.length > 0 ? headers : null });
  }
  flush();
  return records;
}

interface Range {
  start: number;
  length: number;
}

/** The records to send: all of them, or (as a time window leaves) some, in order. */
function picked(seed: number, records: FetchedRecords): number[] {
  const next = seededRandom(seed * 31 + 7);
  const all = Array.from({ length: records.count }, (_, i) => i);
  if (seed % 3 !== 0) return all;
  return all.filter(() => next() < 0.6);
}

/** The reference: one record object per message, as ingestion built them before runs. */
function asRecord(topic: string, partition: number, records: FetchedRecords, i: number): KafkaRecord {
  const headers: KafkaHeader[] = (records.headers(i) ?? []).map(({ key, value }) => ({ key, value: value ?? undefined }));
  return {
    topic,
    partition,
    offset: records.offsets[i],
    timestampMs: records.timestamps[i],
    key: records.key(i) ?? undefined,
    value: records.value(i) ?? undefined,
    headers,
  };
}

test('encodeBatch writes a batch exactly as the generated encoder does', () => {
  for (let seed = 1; seed <= 400; seed++) {
    const records = fetched(seed, seed % 60);
    const send = picked(seed, records);
    const topic = seed % 7 === 0 ? 'zamówienia' : 'orders';
    const partition = seed % 5;
    const offsets = send.map((i) => records.offsets[i]);
    const covers: OffsetRange[] =
      send.length > 0
        ? [{ topic, partition, startOffset: offsets[0], endOffset: offsets[offsets.length - 1] + 1 }]
        : [{ topic, partition, startOffset: seed, endOffset: seed + 3 }];
    const traceparent = seed % 3 === 0 ? '' : `00-${seed.toString(16).padStart(32, '0')}-${seed.toString(16).padStart(16, '0')}-01`;
    const { request, inFlightBytes } = encodeBatch(seed, covers, topic, partition, records, Int32Array.from(send), OVERHEAD, traceparent);
    const reference = TransformRequest.encode({
      message: {
        $case: 'batch',
        value: { sequence: seed, covers, runs: recordRuns(send.map((i) => asRecord(topic, partition, records, i))), traceparent },
      },
    }).finish();
    assert.deepEqual(TransformRequest.decode(request), TransformRequest.decode(reference), `seed ${seed}`);
    assert.deepEqual(request, Buffer.from(reference), `seed ${seed}: the same bytes`);
    const payload = send.reduce((n, i) => n + Math.max(0, records.keyLengths[i]) + Math.max(0, records.valueLengths[i]), 0);
    assert.equal(inFlightBytes, OVERHEAD * (send.length + 1) + payload, `seed ${seed}: in-flight bytes`);
  }
});

test('a batch of covers only carries no run', () => {
  const covers = [{ topic: 'orders', partition: 2, startOffset: 5, endOffset: 9 }];
  const { request, inFlightBytes } = encodeBatch(3, covers, 'orders', 2, null, [], OVERHEAD);
  const reference = TransformRequest.encode({
    message: { $case: 'batch', value: { sequence: 3, covers, runs: [], traceparent: '' } },
  }).finish();
  assert.deepEqual(request, Buffer.from(reference));
  assert.equal(inFlightBytes, OVERHEAD);
});

test('encodeBatch refuses records out of offset order instead of encoding a wrong delta', () => {
  const records = fetched(7, 2);
  assert.throws(() => encodeBatch(1, [], 'orders', 0, records, [1, 0], OVERHEAD), /offset \d+ of orders\/0 does not follow \d+/);
});
