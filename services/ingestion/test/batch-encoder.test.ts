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
import { FetchedRecord, type RecordHeader } from '../src/kafka/fetched-record.js';
import { seededRandom } from '#test-support/random.js';

const OVERHEAD = 64;

function bytesOrNull(next: () => number): Buffer | null {
  const r = next();
  if (r < 0.15) return null;
  if (r < 0.25) return Buffer.alloc(0);
  return Buffer.from(Array.from({ length: 1 + Math.floor(next() * 40) }, () => Math.floor(next() * 256)));
}

/**
 * Records as the fetch path makes them: key and value are ranges of one buffer, at a random
 * place in it (so a range that starts at 0 is not the only one tried).
 */
function messages(seed: number, count: number): FetchedRecord[] {
  const next = seededRandom(seed);
  let offset = Math.floor(next() * 1e6);
  const keyed = next() < 0.6;
  return Array.from({ length: count }, () => {
    offset += next() < 0.1 ? 1 + Math.floor(next() * 100) : 1; // gaps, as compaction leaves
    const headers: RecordHeader[] = [];
    if (next() < 0.2) headers.push({ key: 'a', value: Buffer.from('x') });
    if (next() < 0.1) headers.push({ key: 'b', value: Buffer.from('1') }, { key: 'b', value: Buffer.from('two') });
    if (next() < 0.05) headers.push({ key: 'c', value: null });
    const key = keyed ? bytesOrNull(next) : null;
    const value = bytesOrNull(next);
    const lead = Math.floor(next() * 8);
    const data = Buffer.concat([Buffer.alloc(lead, 0xee), key ?? Buffer.alloc(0), value ?? Buffer.alloc(0)]);
    const timestamp = next() < 0.05 ? -1 : 1_700_000_000_000 + Math.floor(next() * 1e9);
    const keyLength = key ? key.length : -1;
    const valueStart = lead + (key?.length ?? 0);
    return new FetchedRecord(
      offset,
      timestamp,
      data,
      lead,
      keyLength,
      valueStart,
      value ? value.length : -1,
      headers.length > 0 ? headers : null,
    );
  });
}

/** The reference: one record object per message, as ingestion built them before runs. */
function asRecord(topic: string, partition: number, m: FetchedRecord): KafkaRecord {
  const headers: KafkaHeader[] = (m.headers ?? []).map(({ key, value }) => ({ key, value: value ?? undefined }));
  return {
    topic,
    partition,
    offset: m.offset,
    timestampMs: m.timestamp,
    key: m.key() ?? undefined,
    value: m.value() ?? undefined,
    headers,
  };
}

test('encodeBatch writes a batch exactly as the generated encoder does', () => {
  for (let seed = 1; seed <= 300; seed++) {
    const batch = messages(seed, seed % 50);
    const topic = seed % 7 === 0 ? 'zamówienia' : 'orders';
    const partition = seed % 5;
    const covers: OffsetRange[] =
      batch.length > 0
        ? [{ topic, partition, startOffset: batch[0].offset, endOffset: batch[batch.length - 1].offset + 1 }]
        : [{ topic, partition, startOffset: seed, endOffset: seed + 3 }];
    const traceparent = seed % 3 === 0 ? '' : `00-${seed.toString(16).padStart(32, '0')}-${seed.toString(16).padStart(16, '0')}-01`;
    const { request, inFlightBytes } = encodeBatch(seed, covers, topic, partition, batch, OVERHEAD, traceparent);
    const reference = TransformRequest.encode({
      message: {
        $case: 'batch',
        value: { sequence: seed, covers, runs: recordRuns(batch.map((m) => asRecord(topic, partition, m))), traceparent },
      },
    }).finish();
    assert.deepEqual(TransformRequest.decode(request), TransformRequest.decode(reference), `seed ${seed}`);
    assert.deepEqual(request, Buffer.from(reference), `seed ${seed}: the same bytes`);
    const payload = batch.reduce((n, m) => n + Math.max(0, m.keyLength) + Math.max(0, m.valueLength), 0);
    assert.equal(inFlightBytes, OVERHEAD * (batch.length + 1) + payload, `seed ${seed}: in-flight bytes`);
  }
});

test('encodeBatch refuses messages out of offset order instead of encoding a wrong delta', () => {
  const [a, b] = messages(7, 2);
  assert.throws(() => encodeBatch(1, [], 'orders', 0, [b, a], OVERHEAD), /offset \d+ of orders\/0 does not follow \d+/);
});
