/** The pure parts of test/support/kafka.ts: what the one-node test cluster is configured with. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { jvmArgs, serverProperties } from '#test-support/kafka.js';

const parse = (text: string) =>
  Object.fromEntries(
    text
      .trim()
      .split('\n')
      .map((line) => line.split(/=(.*)/s).slice(0, 2)),
  );

describe('serverProperties', () => {
  const base = { port: 9092, controllerPort: 9093, dataDir: '/tmp/k/data', autoCreateTopics: true, partitions: 1, extra: {} };
  const cases: { name: string; input: Partial<typeof base>; expect: Record<string, string> }[] = [
    {
      name: 'one KRaft node that is broker and controller, on the given ports',
      input: {},
      expect: {
        'process.roles': 'broker,controller',
        'node.id': '1',
        'controller.quorum.voters': '1@127.0.0.1:9093',
        listeners: 'PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093',
        'advertised.listeners': 'PLAINTEXT://127.0.0.1:9092',
        'log.dirs': '/tmp/k/data',
      },
    },
    {
      name: 'internal topics fit one node; groups form at once',
      input: {},
      expect: {
        'offsets.topic.replication.factor': '1',
        'transaction.state.log.replication.factor': '1',
        'transaction.state.log.min.isr': '1',
        'min.insync.replicas': '1',
        'group.initial.rebalance.delay.ms': '0',
      },
    },
    {
      name: 'auto-creation and partitions as asked',
      input: { autoCreateTopics: false, partitions: 3 },
      expect: { 'auto.create.topics.enable': 'false', 'num.partitions': '3' },
    },
    {
      name: 'extra entries override the defaults',
      input: { extra: { 'log.cleaner.backoff.ms': 50 } },
      expect: { 'log.cleaner.backoff.ms': '50' },
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const props = parse(serverProperties({ ...base, ...c.input }));
      for (const [key, value] of Object.entries(c.expect)) assert.equal(props[key], value, key);
    });
  }
});

describe('jvmArgs', () => {
  it('caps the heap and points Log4j 2 at the quiet configuration in the broker directory', () => {
    const args = jvmArgs(256, '/tmp/k');
    assert.ok(args.includes('-Xmx256m'));
    assert.ok(args.includes('-Dlog4j2.configurationFile=/tmp/k/log4j2.yaml'));
  });
});
