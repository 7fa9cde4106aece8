import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startDevBroker, type DevBroker } from '#kafka-broker/index.js';
import { ApiKey } from '#kafka-broker/protocol/api-keys.js';
import { RawClient, run } from './helpers.js';

const KCAT = '/usr/bin/kcat';
let broker: DevBroker;
before(async () => {
  broker = await startDevBroker({ port: 0, defaultPartitions: 2 });
});
after(() => broker.stop());

const kcat = (args: string[], input?: string) => run(KCAT, ['-b', broker.address, ...args], { input, timeoutMs: 20_000 });

test('kcat -L lists brokers and topics', async () => {
  broker.createTopic('kcat-meta', 3);
  const res = await kcat(['-L', '-J', '-t', 'kcat-meta']);
  assert.equal(res.code, 0, res.stderr);
  const meta = JSON.parse(res.stdout);
  assert.deepEqual(meta.brokers, [{ id: 0, name: broker.address }]);
  assert.equal(meta.topics[0].topic, 'kcat-meta');
  assert.equal(meta.topics[0].partitions.length, 3);
});

test('kcat -P produces (plain and compressed) and kcat -C reads keys, values and offsets back', async () => {
  broker.createTopic('kcat-produce', 1);
  for (const codec of ['none', 'gzip', 'snappy', 'lz4', 'zstd']) {
    const input = `${Array.from({ length: 50 }, (_, i) => `${codec}-k${i}:${codec}-v${i}`).join('\n')}\n`;
    const res = await kcat(['-P', '-t', 'kcat-produce', '-p', '0', '-K', ':', '-z', codec], input);
    assert.equal(res.code, 0, res.stderr);
  }
  assert.equal(broker.highWatermark('kcat-produce', 0), 250);
  const res = await kcat(['-C', '-t', 'kcat-produce', '-p', '0', '-e', '-f', '%o %k %s\n']);
  assert.equal(res.code, 0, res.stderr);
  const lines = res.stdout.trim().split('\n');
  assert.equal(lines.length, 250);
  assert.equal(lines[0], '0 none-k0 none-v0');
  assert.equal(lines[249], '249 zstd-k49 zstd-v49');

  // Timestamp lookups must open every codec's batches: compare with a scan of what kcat read.
  const stamped = (await kcat(['-C', '-t', 'kcat-produce', '-p', '0', '-e', '-f', '%o %T\n'])).stdout
    .trim()
    .split('\n')
    .map((l) => l.split(' ').map(Number));
  const raw = await RawClient.connect(broker.port);
  try {
    for (const t of new Set(stamped.map(([, ts]) => ts))) {
      const expected = stamped.find(([, ts]) => ts >= t)![0];
      const r = await raw.request(ApiKey.ListOffsets, 1, (w) =>
        w.int32(-1).array(['kcat-produce'], (w, name) => w.string(name).array([0], (w) => w.int32(0).int64(t))),
      );
      const [[p]] = r.array(
        (r) => (r.string(), r.array((r) => ({ partition: r.int32(), error: r.int16(), timestamp: r.int64(), offset: r.int64() }))),
      );
      assert.deepEqual([p.error, p.offset], [0, expected], `first offset at or after ${t}`);
    }
  } finally {
    raw.close();
  }
});

test('kcat -C -o s@<ms> starts at the first record at or after the timestamp', async () => {
  broker.createTopic('kcat-times', 1);
  const T = 1_700_000_000_000;
  broker.append(
    'kcat-times',
    0,
    [1000, 5000, 3000].map((d) => ({ value: `at${d}`, timestamp: T + d })),
  );
  broker.append(
    'kcat-times',
    0,
    [2000, 7000, 4000].map((d) => ({ value: `at${d}`, timestamp: T + d })),
  );
  const res = await kcat(['-C', '-t', 'kcat-times', '-o', `s@${T + 5500}`, '-e', '-f', '%o %s\n']);
  assert.equal(res.code, 0, res.stderr);
  assert.deepEqual(res.stdout.trim().split('\n'), ['4 at7000', '5 at4000']);
});

test('kcat -C reports OFFSET_OUT_OF_RANGE below the log start after retention', async () => {
  broker.createTopic('kcat-retention', 1);
  broker.append(
    'kcat-retention',
    0,
    Array.from({ length: 10 }, (_, i) => ({ value: `r${i}` })),
  );
  broker.deleteRecordsBefore('kcat-retention', 0, 6);
  const strict = await kcat(['-C', '-t', 'kcat-retention', '-p', '0', '-o', '2', '-e', '-X', 'auto.offset.reset=error']);
  assert.match(strict.stderr, /out of range/i);
  const earliest = await kcat(['-C', '-t', 'kcat-retention', '-p', '0', '-o', 'beginning', '-e', '-f', '%o\n']);
  assert.deepEqual(earliest.stdout.trim().split('\n'), ['6', '7', '8', '9']);
});

test('kcat -G consumes a topic as a balanced group and commits its offsets', async () => {
  broker.createTopic('kcat-group', 2);
  for (const p of [0, 1])
    broker.append(
      'kcat-group',
      p,
      Array.from({ length: 30 }, (_, i) => ({ value: `p${p}-${i}` })),
    );
  const res = await kcat(['-G', 'kcat-g', 'kcat-group', '-e', '-f', '%p %o\n', '-X', 'auto.offset.reset=earliest']);
  assert.equal(res.code, 0, res.stderr);
  assert.equal(res.stdout.trim().split('\n').length, 60);
  assert.equal(broker.committedOffset('kcat-g', 'kcat-group', 0), 30);
  assert.equal(broker.committedOffset('kcat-g', 'kcat-group', 1), 30);
});
