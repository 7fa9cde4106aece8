import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { errorTopicMessages } from '../src/error-topic.js';
import { JobCounters } from '../src/job-counters.js';

describe('job counters', () => {
  it('counts reads, acks and errors; errors are listed by reason, unmapped fields by name', () => {
    const c = new JobCounters();
    c.countRead(10, 2);
    c.countAck({
      rows: 7,
      excluded: 1,
      errorReasons: [{ reason: 'unknown_field', count: 1 }],
      unmappedFields: [
        { field: 'tag', count: 2 },
        { field: 'extra', count: 1 },
      ],
    });
    c.countAck({ rows: 0, excluded: 0, errorReasons: [], unmappedFields: [{ field: 'tag', count: 3 }] });
    assert.deepEqual(c.unmappedCounts(), [
      { field: 'extra', count: 1 },
      { field: 'tag', count: 5 },
    ]);
    c.countError('offset_out_of_range', 3);
    c.countError('unknown_field', 2);
    assert.deepEqual([c.recordsIn, c.rowsOut, c.excluded], [10, 7, 3]);
    assert.deepEqual(c.errorCounts(), [
      { reason: 'offset_out_of_range', count: 3 },
      { reason: 'unknown_field', count: 3 },
    ]);
    assert.equal(c.summary(), '10 records read, 7 rows written, 3 excluded');
  });

  const round = (offsets: number, addedFiles: number, snapshotId: number, addedRecords: number) => ({
    offsets: Array.from({ length: offsets }, () => ({ topic: 't', partition: 0, startOffset: 0, endOffset: 1 })),
    addedFiles,
    snapshotId,
    committedAtMs: snapshotId * 1000,
    addedRecords,
  });
  const cases: [string, ReturnType<typeof round>[], number | undefined][] = [
    ['no commit yet', [], undefined],
    ['a round with offsets is a commit', [round(1, 1, 5, 3)], 5],
    ['a round with only files (error table) is a commit', [round(0, 1, 6, 0)], 6],
    ['an empty round does not replace the last commit', [round(1, 1, 5, 3), round(0, 0, 5, 0)], 5],
    ['an empty round alone is no commit', [round(0, 0, 4, 0)], undefined],
  ];
  for (const [name, rounds, snapshot] of cases) {
    it(`last commit: ${name}`, () => {
      const c = new JobCounters();
      for (const r of rounds) c.recordCommit(r);
      assert.equal(c.lastCommit?.snapshotId, snapshot);
    });
  }
});

describe('error topic messages', () => {
  it('groups by topic in first-seen order, keeping record order and headers', () => {
    const rec = (topic: string, value: string) => ({
      topic,
      partition: 0,
      offset: 0,
      timestampMs: 0,
      key: undefined,
      value: Buffer.from(value),
      headers: [{ key: 'sluice.error.reason', value: Buffer.from('bad') }],
    });
    const out = errorTopicMessages([rec('b', '1'), rec('a', '2'), rec('b', '3')]);
    assert.deepEqual(
      out.map((t) => [t.topic, t.messages.map((m) => String(m.value))]),
      [
        ['b', ['1', '3']],
        ['a', ['2']],
      ],
    );
    assert.equal(out[0].messages[0].key, null);
    assert.deepEqual(out[0].messages[0].headers, { 'sluice.error.reason': Buffer.from('bad') });
  });

  it("carries the source record's timestamp, not the routing time (none when the source had none)", () => {
    const rec = (timestampMs: number) => ({ topic: 'e', partition: -1, offset: -1, timestampMs, value: Buffer.from('x'), headers: [] });
    const [out] = errorTopicMessages([rec(1_714_500_000_123), rec(0)]);
    assert.deepEqual(
      out.messages.map((m) => m.timestamp),
      ['1714500000123', undefined],
    );
  });
});
