import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { judgeTopic, type TopicLook, type TopicVerdict } from '../src/topic-identity.js';

/** The topic now: its id (null: the broker gives none) and each partition's [low, high). */
const look = (id: string | null, ...partitions: [number, number][]): TopicLook => ({
  id,
  watermarks: new Map(partitions.map(([low, high], p) => [p, { low, high }])),
});
const offsets = (...next: number[]) => new Map(next.map((n, p) => [p, n]));
const same = (id: string | null): TopicVerdict => ({ same: true, id });

describe('judgeTopic', () => {
  const cases: [string, string | null, Map<number, number>, TopicLook, TopicVerdict | RegExp][] = [
    ['the first look remembers the id', null, offsets(10, 10), look('A', [0, 12], [0, 10]), same('A')],
    ['the same id, offsets within the log', 'A', offsets(10, 10), look('A', [0, 12], [0, 10]), same('A')],
    ['nothing committed yet: any log fits', 'A', offsets(), look('A', [0, 0]), same('A')],
    ['a broker without ids: offsets alone, still fitting', null, offsets(10), look(null, [0, 10]), same(null)],
    ['the id unknown this time: the one seen is kept', 'A', offsets(10), look(null, [0, 10]), same('A')],
    ['log start past the committed offset is retention, not recreation', 'A', offsets(10), look('A', [50, 60]), same('A')],
    [
      'a new id, even with offsets that fit: recreated',
      'A',
      offsets(10, 10),
      look('B', [0, 15], [0, 15]),
      /^topic "orders" was deleted and recreated \(its topic id changed from A to B\): the job's committed offsets \(0: 10, 1: 10\) belong to the old topic/,
    ],
    [
      'a committed partition gone: recreated with fewer partitions',
      null,
      offsets(10, 10),
      look(null, [0, 20]),
      /^topic "orders" was deleted and recreated \(partition 1, committed up to offset 10, no longer exists\)/,
    ],
    [
      'a log ending below the committed offset: recreated or truncated',
      'A',
      offsets(10, 10),
      look('A', [0, 12], [0, 3]),
      /^topic "orders" was deleted and recreated, or its log truncated \(partition 1 ends at offset 3, below its committed offset 10\)/,
    ],
    [
      'more partitions than before, offsets fitting, no ids: cannot be told (the reader names new partitions)',
      null,
      offsets(10),
      look(null, [0, 10], [0, 0]),
      same(null),
    ],
  ];
  for (const [name, known, committed, now, want] of cases) {
    it(name, () => {
      const got = judgeTopic('orders', known, committed, now);
      if (want instanceof RegExp) {
        assert.equal(got.same, false);
        assert.match((got as { reason: string }).reason, want);
        assert.match((got as { reason: string }).reason, /rather than rewind or skip records; create a new job to read the new topic$/);
      } else assert.deepEqual(got, want);
    });
  }
});
