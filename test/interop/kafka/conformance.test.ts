/**
 * Issue 13: real Apache Kafka as the judge of the dev broker. Every scenario runs, unchanged,
 * against the dev broker (devtools/kafka-broker) and against a real one-node KRaft Kafka, with
 * the clients Sluice meets in the field (kafkajs, which ingestion uses, and librdkafka's kcat),
 * and asserts the same expected results on both. A difference is a dev-broker bug: the tests
 * ingestion passes against the dev broker would mean nothing against Kafka.
 *
 * One broker of each kind per file; each scenario uses its own topics.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { CompressionTypes } from 'kafkajs';
import { waitFor } from '#test-support/wait.js';
import { fetchTopicId } from '../../../services/ingestion/src/kafka-topic-id.js';
import {
  type BrokerTarget,
  COMPACT_NOW,
  consumeCount,
  devTarget,
  kafkaTarget,
  kcat,
  readAll,
  SEGMENT_ROLL_WAIT_MS,
  stableAt,
} from './helpers.js';

const run = randomBytes(3).toString('hex');
/** Record timestamps an hour back, whole seconds, so expected values are exact and retention keeps them. */
const T = Math.floor(Date.now() / 1000) * 1000 - 3_600_000;

const TARGETS: [string, () => Promise<BrokerTarget>][] = [
  ['dev broker', devTarget],
  ['Apache Kafka', kafkaTarget],
];

for (const [label, start] of TARGETS) {
  describe(label, () => {
    let target: BrokerTarget;
    let n = 0;
    /** A topic name unique to this run, target and scenario. */
    const topicName = (what: string) => `${what}-${label.replace(/\W/g, '')}-${run}-${++n}`;

    before(async () => {
      target = await start();
    });
    after(async () => {
      await target?.stop();
    });

    it('kafkajs produce and fetch: offsets, keys, null keys and values, headers, timestamps, gzip', async () => {
      const topic = topicName('produce');
      await target.createTopic(topic, 2);
      const producer = target.client().producer({ idempotent: true, maxInFlightRequests: 1 });
      await producer.connect();
      const sent = [
        await producer.send({
          topic,
          acks: -1,
          messages: [
            { partition: 0, key: 'a', value: '1', headers: { h: 'x', trace: 'y' }, timestamp: String(T + 1) },
            { partition: 0, key: null, value: '2', timestamp: String(T + 2) },
          ],
        }),
        await producer.send({
          topic,
          acks: -1,
          compression: CompressionTypes.GZIP,
          messages: [{ partition: 0, key: 'b', value: null, timestamp: String(T + 3) }],
        }),
        await producer.send({ topic, acks: -1, messages: [{ partition: 1, key: 'c', value: '3', timestamp: String(T + 4) }] }),
      ];
      await producer.disconnect();
      assert.deepEqual(
        sent.map((s) =>
          s.map(({ partition, errorCode, baseOffset, logAppendTime, logStartOffset }) => ({
            partition,
            errorCode,
            baseOffset,
            logAppendTime,
            logStartOffset,
          })),
        ),
        [
          [{ partition: 0, errorCode: 0, baseOffset: '0', logAppendTime: '-1', logStartOffset: '0' }],
          [{ partition: 0, errorCode: 0, baseOffset: '2', logAppendTime: '-1', logStartOffset: '0' }],
          [{ partition: 1, errorCode: 0, baseOffset: '0', logAppendTime: '-1', logStartOffset: '0' }],
        ],
      );

      assert.deepEqual(await consumeCount(target.client(), topic, 4, { groupId: `g-${topic}` }), [
        { partition: 0, offset: 0, key: 'a', value: '1', timestamp: T + 1, headers: { h: 'x', trace: 'y' } },
        { partition: 0, offset: 1, key: null, value: '2', timestamp: T + 2 },
        { partition: 0, offset: 2, key: 'b', value: null, timestamp: T + 3 },
        { partition: 1, offset: 0, key: 'c', value: '3', timestamp: T + 4 },
      ]);
      // librdkafka reads the same, from the start and from an offset inside the partition.
      assert.deepEqual(await readAll(target.brokers, topic, 0, '%o|%k|%s|%T|%h\n', ['-Z']), [
        `0|a|1|${T + 1}|h=x,trace=y`,
        `1|NULL|2|${T + 2}|`,
        `2|b|NULL|${T + 3}|`,
      ]);
      const fromOne = await kcat(target.brokers, ['-C', '-t', topic, '-p', '0', '-o', '1', '-e', '-q', '-f', '%o %k\n']);
      assert.equal(fromOne.stdout, '1 \n2 b\n', fromOne.stderr);
      assert.deepEqual(await (await target.admin()).fetchTopicOffsets(topic).then(byPartition), [
        { partition: 0, low: '0', high: '3', offset: '3' },
        { partition: 1, low: '0', high: '1', offset: '1' },
      ]);
    });

    it('kcat produces plain and zstd batches with keys and headers; kafkajs and kcat read them back', async () => {
      const topic = topicName('kcat');
      await target.createTopic(topic, 1);
      for (const [codec, lines] of [
        ['zstd', 'k1:v1\nk2:v2\n'],
        ['none', 'k3:v3\n'],
        ['lz4', 'k4:v4\n'],
      ]) {
        const res = await kcat(target.brokers, ['-P', '-t', topic, '-p', '0', '-K', ':', '-H', 'src=kcat', '-z', codec], lines);
        assert.equal(res.code, 0, res.stderr);
      }
      const read = await consumeCount(target.client(), topic, 4, { groupId: `g-${topic}`, withTime: false });
      assert.deepEqual(
        read,
        [1, 2, 3, 4].map((i) => ({ partition: 0, offset: i - 1, key: `k${i}`, value: `v${i}`, headers: { src: 'kcat' } })),
      );
      assert.deepEqual(await readAll(target.brokers, topic, 0, '%o %k %s %h\n'), [
        '0 k1 v1 src=kcat',
        '1 k2 v2 src=kcat',
        '2 k3 v3 src=kcat',
        '3 k4 v4 src=kcat',
      ]);
    });

    it('ListOffsets: earliest, latest, and the first offset at or after a time, with timestamps out of order', async () => {
      const topic = topicName('times');
      await target.createTopic(topic, 1);
      const producer = target.client().producer();
      await producer.connect();
      // Two batches: [1000, 3000, 2000] and [5000, 4000] ms after T.
      for (const batch of [
        [1000, 3000, 2000],
        [5000, 4000],
      ]) {
        await producer.send({ topic, messages: batch.map((d) => ({ partition: 0, value: `at${d}`, timestamp: String(T + d) })) });
      }
      await producer.disconnect();
      const admin = await target.admin();
      assert.deepEqual(await admin.fetchTopicOffsets(topic).then(byPartition), [{ partition: 0, low: '0', high: '5', offset: '5' }]);

      // [delay after T, first offset whose timestamp is >= T + delay; -1: none]
      const expected: [number, number][] = [
        [0, 0],
        [1000, 0],
        [1500, 1],
        [2500, 1],
        [3000, 1],
        [3500, 3],
        [4500, 3],
        [5000, 3],
        [5001, -1],
      ];
      const kafkajsAnswers = [];
      const kcatAnswers = [];
      for (const [delay] of expected) {
        const [row] = await admin.fetchTopicOffsetsByTimestamp(topic, T + delay);
        kafkajsAnswers.push([delay, Number(row.offset)]);
        const q = await kcat(target.brokers, ['-Q', '-t', `${topic}:0:${T + delay}`]);
        assert.equal(q.code, 0, q.stderr);
        kcatAnswers.push([delay, Number(/offset (-?\d+)/.exec(q.stdout)?.[1])]);
      }
      assert.deepEqual(kcatAnswers, expected, 'the broker answers -1 when no record is that recent');
      // kafkajs substitutes the high watermark for -1.
      assert.deepEqual(
        kafkajsAnswers,
        expected.map(([d, o]) => [d, o < 0 ? 5 : o]),
      );
      const res = await kcat(target.brokers, ['-C', '-t', topic, '-o', `s@${T + 3500}`, '-e', '-q', '-f', '%o %s\n']);
      assert.equal(res.stdout, '3 at5000\n4 at4000\n', res.stderr);
    });

    it('DeleteTopics then CreateTopics under the same name: a new topic id, offsets start over, the group offsets of the old topic dropped', async () => {
      const topic = topicName('recreated');
      await target.createTopic(topic, 2);
      const producer = target.client().producer();
      await producer.connect();
      await producer.send({ topic, messages: [0, 1, 2].map((i) => ({ partition: 0, value: `old${i}` })) });
      const admin = await target.admin();
      await admin.setOffsets({ groupId: `g-${topic}`, topic, partitions: [{ partition: 0, offset: '2' }] });
      // The Metadata v10+ look-up ingestion uses to tell a recreated topic (kafkajs has no topic ids).
      const oldId = await fetchTopicId([target.brokers], topic);
      assert.match(oldId ?? '', /^[A-Za-z0-9_][A-Za-z0-9_-]{21}$/);

      await admin.deleteTopics({ topics: [topic], timeout: 30_000 });
      await waitFor(`${topic} to be gone`, async () => !(await admin.listTopics()).includes(topic), { timeoutMs: 30_000, intervalMs: 100 });
      assert.equal(await fetchTopicId([target.brokers], topic), null, 'a deleted topic has no id');

      await target.createTopic(topic, 1);
      await producer.send({ topic, messages: [{ partition: 0, value: 'new0' }] });
      await producer.disconnect();
      const newId = await fetchTopicId([target.brokers], topic);
      assert.ok(newId && newId !== oldId, `a recreated topic has a new id (${oldId} then ${newId})`);
      assert.deepEqual(await admin.fetchTopicOffsets(topic).then(byPartition), [{ partition: 0, low: '0', high: '1', offset: '1' }]);
      assert.deepEqual(await readAll(target.brokers, topic, 0, '%o %s\n'), ['0 new0']);
      const [offsets] = await admin.fetchOffsets({ groupId: `g-${topic}`, topics: [topic] });
      assert.deepEqual(
        offsets.partitions.map((p) => [p.partition, p.offset]),
        [[0, '-1']],
        'the group offset of the deleted topic is gone',
      );
    });

    it('DeleteRecords moves the log start; a fetch below it is out of range and a reset reads from it', async () => {
      const topic = topicName('retention');
      await target.createTopic(topic, 1);
      const producer = target.client().producer();
      await producer.connect();
      await producer.send({ topic, messages: [0, 1, 2].map((i) => ({ partition: 0, value: `r${i}`, timestamp: String(T + i) })) });
      await producer.send({ topic, messages: [3, 4].map((i) => ({ partition: 0, value: `r${i}`, timestamp: String(T + i) })) });
      await producer.disconnect();
      const admin = await target.admin();
      await admin.deleteTopicRecords({ topic, partitions: [{ partition: 0, offset: '3' }] });
      assert.deepEqual(await admin.fetchTopicOffsets(topic).then(byPartition), [{ partition: 0, low: '3', high: '5', offset: '5' }]);
      assert.deepEqual(await readAll(target.brokers, topic, 0, '%o %s\n'), ['3 r3', '4 r4']);
      // librdkafka asked for offset 1: out of range, reset to the earliest by auto.offset.reset.
      const fromOne = await kcat(target.brokers, [
        '-C',
        '-t',
        topic,
        '-p',
        '0',
        '-o',
        '1',
        '-e',
        '-q',
        '-X',
        'auto.offset.reset=earliest',
        '-f',
        '%o\n',
      ]);
      assert.equal(fromOne.stdout, '3\n4\n', fromOne.stderr);
      const [byTime] = await admin.fetchTopicOffsetsByTimestamp(topic, T);
      assert.equal(byTime.offset, '3', 'a timestamp lookup answers no offset below the log start');
      assert.deepEqual(
        (await consumeCount(target.client(), topic, 2, { groupId: `g-${topic}`, withTime: false })).map((s) => s.offset),
        [3, 4],
      );
    });

    it('consumer group: two members split four partitions, commits are kept, a leave rebalances', async () => {
      const topic = topicName('group');
      const groupId = `g-${topic}`;
      await target.createTopic(topic, 4);
      // Records to commit offsets within: a committed offset past the end is out of range, and
      // kafkajs answers that by resetting (and committing) the partition to the earliest.
      const producer = target.client().producer();
      await producer.connect();
      for (let p = 0; p < 4; p++)
        await producer.send({ topic, messages: Array.from({ length: 20 }, (_, i) => ({ partition: p, value: `${p}-${i}` })) });
      await producer.disconnect();
      const assignments = new Map<string, { partitions: number[] }>();
      const member = async (name: string) => {
        const c = target.client(name).consumer({ groupId, sessionTimeout: 10_000, heartbeatInterval: 500, maxWaitTimeInMs: 100 });
        c.on(c.events.GROUP_JOIN, (e) => assignments.set(name, { partitions: [...(e.payload.memberAssignment[topic] ?? [])].sort() }));
        await c.connect();
        await c.subscribe({ topic, fromBeginning: true });
        // No auto-commit: the offsets asserted below are exactly the ones committed here.
        await c.run({ autoCommit: false, eachMessage: async () => {} });
        return c;
      };
      const c1 = await member('m1');
      await waitFor('m1 to own all four partitions', () => assignments.get('m1')?.partitions.length === 4, { timeoutMs: 30_000 });
      const c2 = await member('m2');
      await waitFor(
        'm1 and m2 to split the partitions two and two',
        () => {
          const [a, b] = [assignments.get('m1'), assignments.get('m2')];
          return a && b && a.partitions.length === 2 && b.partitions.length === 2 && new Set([...a.partitions, ...b.partitions]).size === 4;
        },
        { timeoutMs: 30_000 },
      );
      const admin = await target.admin();
      const [none] = await admin.fetchOffsets({ groupId, topics: [topic] });
      assert.deepEqual(
        none.partitions.map((p) => p.offset),
        ['-1', '-1', '-1', '-1'],
        'no committed offsets yet',
      );
      const described = await waitFor(
        'the group to be Stable with two members',
        async () => {
          const { groups } = await admin.describeGroups([groupId]);
          return groups[0].state === 'Stable' && groups[0].members.length === 2 ? groups[0] : null;
        },
        { timeoutMs: 30_000 },
      );
      assert.deepEqual([described.protocolType, described.protocol], ['consumer', 'RoundRobinAssigner']);

      await c1.commitOffsets(assignments.get('m1')!.partitions.map((p) => ({ topic, partition: p, offset: String(10 + p) })));
      await c2.commitOffsets(assignments.get('m2')!.partitions.map((p) => ({ topic, partition: p, offset: String(10 + p) })));
      await c2.disconnect();
      await waitFor('m1 to own all four partitions again after m2 left', () => assignments.get('m1')?.partitions.length === 4, {
        timeoutMs: 30_000,
      });
      await c1.disconnect();
      const [offsets] = await admin.fetchOffsets({ groupId, topics: [topic] });
      assert.deepEqual(
        offsets.partitions.map(({ partition, offset }) => ({ partition, offset })).sort((a, b) => a.partition - b.partition),
        [0, 1, 2, 3].map((p) => ({ partition: p, offset: String(10 + p) })),
      );
      const { groups } = await admin.describeGroups([groupId]);
      assert.deepEqual([groups[0].state, groups[0].members.length], ['Empty', 0]);
      assert.ok((await admin.listGroups()).groups.some((g) => g.groupId === groupId));
    });

    it('a session timeout below the broker minimum (6 s, group.min.session.timeout.ms) is refused at join', async () => {
      const topic = topicName('session');
      await target.createTopic(topic, 1);
      const consumer = target.client().consumer({
        groupId: `g-${topic}`,
        sessionTimeout: 3000,
        heartbeatInterval: 500,
        retry: { retries: 0, restartOnFailure: async () => false },
      });
      // Either the join is refused (the consumer crashes) or it succeeds: whichever comes first.
      const outcome = new Promise<string>((resolve) => {
        consumer.on(consumer.events.CRASH, (e) => resolve((e.payload.error as Error & { type?: string }).type ?? e.payload.error.message));
        consumer.on(consumer.events.GROUP_JOIN, () => resolve('joined'));
      });
      await consumer.connect();
      await consumer.subscribe({ topic, fromBeginning: true });
      await consumer.run({ eachMessage: async () => {} }).catch(() => {});
      assert.equal(await outcome, 'INVALID_SESSION_TIMEOUT');
      await consumer.disconnect();
    });

    it('a producer creates an unknown topic with the default partition count; a fetch past the end resets', async () => {
      const topic = topicName('auto');
      const admin = await target.admin();
      assert.ok(!(await admin.listTopics()).includes(topic));
      const producer = target.client().producer();
      await producer.connect();
      await producer.send({ topic, acks: -1, messages: [{ value: 'first' }, { value: 'second' }] });
      await producer.disconnect();
      assert.ok((await admin.listTopics()).includes(topic));
      const meta = await admin.fetchTopicMetadata({ topics: [topic] });
      assert.deepEqual(
        meta.topics[0].partitions.map((p) => p.partitionId),
        [0],
      );
      // Offset 99 is past the end: OFFSET_OUT_OF_RANGE, and librdkafka resets to the earliest.
      const past = await kcat(target.brokers, [
        '-C',
        '-t',
        topic,
        '-p',
        '0',
        '-o',
        '99',
        '-e',
        '-q',
        '-X',
        'auto.offset.reset=earliest',
        '-f',
        '%o %s\n',
      ]);
      assert.equal(past.stdout, '0 first\n1 second\n', past.stderr);
    });

    it('a record batch over message.max.bytes (1048588) is refused whole with MESSAGE_TOO_LARGE; one under it lands', async () => {
      const topic = topicName('large');
      await target.createTopic(topic, 1);
      const producer = target.client().producer({ retry: { retries: 0 } });
      await producer.connect();
      const refused = await producer
        .send({ topic, acks: -1, messages: [{ partition: 0, value: Buffer.alloc(1_100_000, 'x') }] })
        .then(() => 'accepted')
        .catch((err: { type?: string; message: string }) => err.type ?? err.message);
      assert.equal(refused, 'MESSAGE_TOO_LARGE');
      await producer.send({ topic, acks: -1, messages: [{ partition: 0, value: Buffer.alloc(1_000_000, 'y') }] });
      await producer.disconnect();
      assert.deepEqual(await (await target.admin()).fetchTopicOffsets(topic).then(byPartition), [
        { partition: 0, low: '0', high: '1', offset: '1' },
      ]);
    });

    it('log compaction leaves offset gaps that fetches step over; the log start stays', async () => {
      const topic = topicName('compact');
      await target.createTopic(topic, 1, COMPACT_NOW);
      const producer = target.client().producer();
      await producer.connect();
      // Current timestamps: Kafka rolls a segment by the age of its first record's timestamp.
      await producer.send({ topic, messages: ['a:1', 'b:1', 'a:2', 'c:1', 'b:2'].map((kv) => ({ partition: 0, key: kv[0], value: kv })) });
      await sleep(SEGMENT_ROLL_WAIT_MS);
      // This append rolls the segment, so offsets 0..4 become cleanable.
      await producer.send({ topic, messages: [{ partition: 0, key: 'z', value: 'z:1' }] });
      await producer.disconnect();
      await target.compact(topic, 0, 5, 3);

      assert.deepEqual(await readAll(target.brokers, topic, 0, '%o %s\n'), ['2 a:2', '3 c:1', '4 b:2', '5 z:1']);
      const fromOne = await kcat(target.brokers, ['-C', '-t', topic, '-p', '0', '-o', '1', '-e', '-q', '-f', '%o\n']);
      assert.equal(fromOne.stdout, '2\n3\n4\n5\n', fromOne.stderr);
      assert.deepEqual(
        (await consumeCount(target.client(), topic, 4, { groupId: `g-${topic}`, withTime: false })).map((s) => `${s.offset} ${s.value}`),
        ['2 a:2', '3 c:1', '4 b:2', '5 z:1'],
      );
      const admin = await target.admin();
      assert.deepEqual(await admin.fetchTopicOffsets(topic).then(byPartition), [{ partition: 0, low: '0', high: '6', offset: '6' }]);
    });

    it('transactions: aborted records are hidden from read_committed, control records take offsets, an open one holds the stable offset', async () => {
      const topic = topicName('txn');
      await target.createTopic(topic, 1);
      const client = target.client();
      const producer = client.producer({ transactionalId: `tx-${topic}`, idempotent: true, maxInFlightRequests: 1 });
      await producer.connect();
      const inTransaction = async (values: string[], end: 'commit' | 'abort') => {
        const tx = await producer.transaction();
        await tx.send({ topic, messages: values.map((value) => ({ partition: 0, value })) });
        await (end === 'commit' ? tx.commit() : tx.abort());
      };
      await inTransaction(['a1', 'a2'], 'commit'); // 0, 1, marker 2
      await inTransaction(['b1', 'b2'], 'abort'); // 3, 4, marker 5
      await inTransaction(['c1'], 'commit'); // 6, marker 7
      // Kafka 4 answers EndTxn before the coordinator has written the markers (transactions
      // v2), so the next plain record could take offset 7: wait until the marker has.
      const markers = await target.admin();
      await waitFor('the commit marker of c1 to take offset 7', async () => (await markers.fetchTopicOffsets(topic))[0].high === '8', {
        timeoutMs: 30_000,
        intervalMs: 50,
      });
      const plain = client.producer();
      await plain.connect();
      await plain.send({ topic, messages: [{ partition: 0, value: 'd1' }] }); // 8

      const committed = ['0 a1', '1 a2', '6 c1', '8 d1'];
      const everything = ['0 a1', '1 a2', '3 b1', '4 b2', '6 c1', '8 d1'];
      const show = (s: { offset: number; value: string | null }) => `${s.offset} ${s.value}`;
      assert.deepEqual((await consumeCount(client, topic, 4, { groupId: `rc-${topic}`, withTime: false })).map(show), committed);
      assert.deepEqual(
        (await consumeCount(client, topic, 6, { groupId: `ru-${topic}`, readUncommitted: true, withTime: false })).map(show),
        everything,
      );
      assert.deepEqual(await readAll(target.brokers, topic, 0, '%o %s\n', ['-X', 'isolation.level=read_committed']), committed);
      assert.deepEqual(await readAll(target.brokers, topic, 0, '%o %s\n', ['-X', 'isolation.level=read_uncommitted']), everything);
      const admin = await target.admin();
      assert.deepEqual(await admin.fetchTopicOffsets(topic).then(byPartition), [{ partition: 0, low: '0', high: '9', offset: '9' }]);

      // An open transaction: read_committed readers stop at the last stable offset (9).
      const open = await producer.transaction();
      await open.send({ topic, messages: [{ partition: 0, value: 'e1' }] }); // 9
      await plain.send({ topic, messages: [{ partition: 0, value: 'd2' }] }); // 10
      assert.deepEqual(await readAll(target.brokers, topic, 0, '%o %s\n', ['-X', 'isolation.level=read_committed']), committed);
      assert.deepEqual(
        await admin.fetchTopicOffsets(topic).then(byPartition),
        [{ partition: 0, low: '0', high: '9', offset: '9' }],
        'read_committed ListOffsets answers the last stable offset',
      );
      assert.deepEqual(await readAll(target.brokers, topic, 0, '%o %s\n', ['-X', 'isolation.level=read_uncommitted']), [
        ...everything,
        '9 e1',
        '10 d2',
      ]);
      await open.commit(); // marker 11
      await stableAt(admin, topic, 12);
      assert.deepEqual(await readAll(target.brokers, topic, 0, '%o %s\n', ['-X', 'isolation.level=read_committed']), [
        ...committed,
        '9 e1',
        '10 d2',
      ]);
      assert.deepEqual(await admin.fetchTopicOffsets(topic).then(byPartition), [{ partition: 0, low: '0', high: '12', offset: '12' }]);
      await producer.disconnect();
      await plain.disconnect();
    });

    it("a transaction's group offsets count only if it commits; its markers carry the broker's time in timestamp lookups", async () => {
      const topic = topicName('txn-offsets');
      const groupId = `g-${topic}`;
      await target.createTopic(topic, 1);
      const producer = target.client().producer({ transactionalId: `txo-${topic}`, idempotent: true, maxInFlightRequests: 1 });
      await producer.connect();
      const offsetsOf = (offset: string) => ({ consumerGroupId: groupId, topics: [{ topic, partitions: [{ partition: 0, offset }] }] });
      const committed = await producer.transaction();
      await committed.send({ topic, messages: [{ partition: 0, value: 'x1', timestamp: String(T + 1000) }] }); // 0
      await committed.sendOffsets(offsetsOf('5'));
      await committed.commit(); // marker 1, stamped now
      const aborted = await producer.transaction();
      await aborted.send({ topic, messages: [{ partition: 0, value: 'x2', timestamp: String(T + 2000) }] }); // 2
      await aborted.sendOffsets(offsetsOf('9'));
      await aborted.abort(); // marker 3
      await producer.disconnect();

      const admin = await target.admin();
      await stableAt(admin, topic, 4);
      const [offsets] = await admin.fetchOffsets({ groupId, topics: [topic] });
      assert.deepEqual(
        offsets.partitions.map(({ partition, offset }) => ({ partition, offset })),
        [{ partition: 0, offset: '5' }],
      );
      // The first offset at or after T + 1.5 s is the commit marker (offset 1): the broker stamps
      // markers with its clock, an hour after these records' own timestamps.
      for (const delay of [1500, 2500]) {
        const q = await kcat(target.brokers, ['-Q', '-t', `${topic}:0:${T + delay}`]);
        assert.equal(/offset (-?\d+)/.exec(q.stdout)?.[1], '1', `kcat -Q at T + ${delay} ms: ${q.stdout}${q.stderr}`);
        const [row] = await admin.fetchTopicOffsetsByTimestamp(topic, T + delay);
        assert.equal(row.offset, '1');
      }
      assert.deepEqual(await readAll(target.brokers, topic, 0, '%o %s\n'), ['0 x1']);
    });
  });
}

function byPartition<T extends { partition: number }>(rows: T[]): T[] {
  return [...rows].sort((a, b) => a.partition - b.partition);
}
