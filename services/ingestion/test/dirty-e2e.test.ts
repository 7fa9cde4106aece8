/**
 * Dirty data is never lost, end to end with the real services: dev broker → ingestion →
 * transformation (Parquet) → commit → catalog, on seed 002's example (record 101 has a field
 * the table lacks; 100 and 102 are kept).
 *
 * - ERROR_TABLE: the refused record lands in the error table's snapshot with its reason, the
 *   good rows in the main table, and the offsets are committed.
 * - ERROR_TOPIC: with producing the error record slowed down (the broker times the first
 *   attempts out) and flushes asked for all the time, the committed offsets never get ahead of
 *   the error topic: whenever offset 3 is committed, record 101 is already in the error topic.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import { Kafka, logLevel } from 'kafkajs';
import { ApiKey, ErrorCode } from '#kafka-broker/index.js';
import { JobState } from '#shared/gen/sluice/v1/catalog.js';
import { CommitServiceService } from '#shared/gen/sluice/v1/commit.js';
import { ErrorPolicyKind, type ErrorPolicy } from '#shared/gen/sluice/v1/types.js';
import { errorTableColumns } from '#shared/error-table.js';
import { CommittedEvent } from '#shared/gen/sluice/v1/events.js';
import { subjects } from '#shared/events.js';
import { createClient } from '#shared/grpc/client.js';
import type { TableMetadata } from '#shared/iceberg/types.js';
import {
  defineMappedJob,
  duck,
  snapshotDataFiles,
  startIngestionStack,
  type IngestionClient,
  type IngestionStack,
} from './support/stack.js';
import { field, flattenMapping, tableRequest } from '#test-support/builders.js';
import { waitFor } from '#test-support/wait.js';

let stack: IngestionStack;
let ingestion: IngestionClient;

before(async () => {
  stack = await startIngestionStack({ partitions: 1 });
  const transformation = await stack.startTransformation();
  ingestion = (await stack.startIngestion({ TRANSFORMATION_ADDRESS: transformation })).client;
});
after(async () => {
  stack.broker.faults.clear();
  await stack?.stop();
});

/** Seed 002: offsets 0 and 1 from the earlier FLATTEN example, then 100, 101 (refused), 102. */
const SEED = [
  '{"id":123,"name":"json-1","extendinfo":{"region":"beijing","gender":"M"}}',
  '{"id":456,"name":"json-2","extendinfo":{"region":"hangzhou","gender":"W"}}',
  '{"id":100,"name":"json-3","extendinfo":{"region":"beijing","gender":"M"}}',
  '{"id":101,"name":"json-4","extendinfos":"null"}',
  '{"id":102,"name":"json-5","extendinfo":{"region":"beijing","gender":"M"}}',
];
const COLUMNS = { id: 'long', name: 'string', extendinfo: 'string' };

/** The topic (holding `records`), the table and the job. */
async function seedJob(name: string, topic: string, errorPolicy: ErrorPolicy, records = SEED): Promise<void> {
  stack.broker.createTopic(topic, 1);
  if (records.length > 0)
    stack.broker.append(
      topic,
      0,
      records.map((v, i) => ({ key: Buffer.from(String(i)), value: Buffer.from(v) })),
    );
  await defineMappedJob(stack.catalog, name, topic, COLUMNS, { mapping: flattenMapping({ errorPolicy }) });
}

const committedNext = async (job: string) => (await stack.catalog.getCommittedOffsets({ job })).offsets[0]?.nextOffset ?? 0;

async function ids(table: string): Promise<number[]> {
  const files = await snapshotDataFiles(stack.catalog, table);
  if (files.length === 0) return [];
  const rows = await duck(`SELECT id FROM read_parquet(['${files.join("','")}']) ORDER BY id`);
  return rows.map((r) => Number(r.id));
}

describe('dirty data end to end (seed 002)', () => {
  it('ERROR_TABLE: record 101 lands in the error table with its reason, 100 and 102 in the table, offsets committed', async () => {
    await stack.catalog.createDatabase({ name: 'lake', location: '', properties: {} }).catch(() => {});
    const errRef = { database: 'lake', table: 'dirty_table_errors' };
    await stack.catalog.createTable(
      tableRequest(
        errRef,
        errorTableColumns.map((c, i) => field(i + 1, c.name, c.type, c.required)),
      ),
    );
    await seedJob('dirty_table', 'seed_table_src', {
      kind: ErrorPolicyKind.ERROR_POLICY_KIND_ERROR_TABLE,
      maxErrors: 0,
      errorTopic: '',
      errorTable: errRef,
    });
    await ingestion.startJob({ job: 'dirty_table' });
    await waitFor('offsets committed through offset 4', async () => (await committedNext('dirty_table')) === 5, { timeoutMs: 30_000 });

    assert.deepEqual(await ids('dirty_table'), [100, 102, 123, 456]);
    const errFiles = await snapshotDataFiles(stack.catalog, 'dirty_table_errors');
    const rows = await duck(
      `SELECT source_topic, source_partition, source_offset, decode(key) AS key, decode(value) AS value, reason FROM read_parquet(['${errFiles.join("','")}'])`,
    );
    assert.deepEqual(
      rows.map((r) => [r.source_topic, r.source_partition, Number(r.source_offset), r.key, r.value, r.reason]),
      [['seed_table_src', 0, 3, '3', SEED[3], 'unknown_field: field "extendinfos" has no column in the table']],
    );
    const { table } = await stack.catalog.getTable({ ref: errRef });
    const meta = JSON.parse(await readFile(table!.metadataLocation, 'utf8')) as TableMetadata;
    assert.equal(meta.snapshots.at(-1)!.summary['sluice.job'], 'dirty_table');
    const { status } = await ingestion.getJobStatus({ job: 'dirty_table' });
    assert.deepEqual(status!.errors, [{ reason: 'unknown_field', count: 1 }]);
    await ingestion.stopJob({ job: 'dirty_table' });
  });

  // Before: transformation ended the stream, ingestion took it for an accident and re-read
  // from the committed offsets about once a second, forever, RUNNING.
  // SKIP_UP_TO needs a budget of at least 1 (as the CLI has always said), so its case has a
  // second dirty record at offset 4, the one past the budget.
  for (const [name, errorPolicy, why, records, refusedAt] of [
    [
      'fail',
      { kind: ErrorPolicyKind.ERROR_POLICY_KIND_FAIL, maxErrors: 0, errorTopic: '' },
      /^dirty record refused \(unknown_field\): field "extendinfos" has no column in the table \(topic dirty_fail_src, partition 0, offset 3\)$/,
      SEED,
      3,
    ],
    [
      'skip_up_to',
      { kind: ErrorPolicyKind.ERROR_POLICY_KIND_SKIP_UP_TO, maxErrors: 1, errorTopic: '' },
      /^dirty record refused \(unknown_field\): more than 1 dirty records; the last: .*\(topic dirty_skip_up_to_src, partition 0, offset 4\)$/,
      [...SEED.slice(0, 4), '{"id":102,"name":"json-5","extendinfos":"null"}'],
      4,
    ],
  ] as const) {
    it(`${name === 'fail' ? 'FAIL' : 'SKIP_UP_TO with its budget spent'}: the job goes to FAILED naming the record's topic, partition, offset and reason, and stops reading`, async () => {
      const job = `dirty_${name}`;
      await seedJob(job, `${job}_src`, errorPolicy as ErrorPolicy, [...records]);
      await ingestion.startJob({ job });
      await waitFor(
        'the job FAILED in the catalog',
        async () => (await stack.catalog.getJob({ name: job })).job!.state === JobState.JOB_STATE_FAILED,
        {
          timeoutMs: 30_000,
        },
      );
      const { job: stored } = await stack.catalog.getJob({ name: job });
      assert.match(stored!.stateReason, why);
      const { status } = await ingestion.getJobStatus({ job });
      assert.equal(status!.state, JobState.JOB_STATE_FAILED);
      assert.match(status!.reason, why);
      // Nothing read since: a re-read loop would grow the count (5 records, read once at most).
      const readOnce = status!.recordsIn;
      assert.ok(readOnce <= SEED.length, `records in ${readOnce}: read once, not again and again`);
      await ingestion.getJobStatus({ job }); // a round trip later, still the same
      assert.equal((await ingestion.getJobStatus({ job })).status!.recordsIn, readOnce);
      assert.ok((await committedNext(job)) <= refusedAt, 'nothing from the refused record on was committed');
    });
  }

  it('SKIP_UP_TO: the budget, the error counts and the last commit survive a restart; the record past the budget fails the job', async () => {
    const job = 'dirty_budget';
    await seedJob(job, `${job}_src`, { kind: ErrorPolicyKind.ERROR_POLICY_KIND_SKIP_UP_TO, maxErrors: 1, errorTopic: '' });
    await ingestion.startJob({ job });
    await waitFor('offsets committed through offset 4', async () => (await committedNext(job)) === 5, { timeoutMs: 30_000 });
    const before = (await ingestion.getJobStatus({ job })).status!;
    assert.deepEqual(before.errors, [{ reason: 'unknown_field', count: 1 }]);
    assert.ok(before.lastCommit && before.lastCommit.snapshotId !== 0);

    await ingestion.stopJob({ job });
    await ingestion.startJob({ job });
    // Before: a restarted job said "0 errors, last commit (none yet)", and its budget was whole again.
    await waitFor('the restarted job shows what its commits refused and its last commit', async () => {
      const { status } = await ingestion.getJobStatus({ job });
      return status!.errors.length > 0 && status!.lastCommit !== undefined;
    });
    const after = (await ingestion.getJobStatus({ job })).status!;
    assert.deepEqual(after.errors, [{ reason: 'unknown_field', count: 1 }]);
    assert.equal(after.lastCommit!.snapshotId, before.lastCommit!.snapshotId);
    assert.equal(after.lastCommit!.rows, before.lastCommit!.rows);

    // One more refused record: the budget of 1 was spent before the restart.
    stack.broker.append(`${job}_src`, 0, [{ key: Buffer.from('5'), value: Buffer.from('{"id":7,"bogus":1}') }]);
    await waitFor(
      'the job FAILED in the catalog',
      async () => (await stack.catalog.getJob({ name: job })).job!.state === JobState.JOB_STATE_FAILED,
      {
        timeoutMs: 30_000,
      },
    );
    assert.match((await stack.catalog.getJob({ name: job })).job!.stateReason, /more than 1 dirty records; .*offset 5\)$/);
    assert.equal(await committedNext(job), 5, 'the record past the budget was not committed');
  });

  it('a mapping that does not fit the table (a column it names is not there) fails the job naming it, instead of reopening forever', async () => {
    const job = 'misfit';
    stack.broker.createTopic(`${job}_src`, 1);
    await defineMappedJob(stack.catalog, job, `${job}_src`, COLUMNS, {
      mapping: flattenMapping({ fields: [{ column: 'nope', path: 'id', type: '', format: '' }] }),
    });
    await ingestion.startJob({ job });
    await waitFor(
      'the job FAILED in the catalog',
      async () => (await stack.catalog.getJob({ name: job })).job!.state === JobState.JOB_STATE_FAILED,
      {
        timeoutMs: 30_000,
      },
    );
    assert.match((await stack.catalog.getJob({ name: job })).job!.stateReason, /^mapping for table lake\.misfit: .*"nope"/);
  });

  it('ERROR_TOPIC: with slow produces, an offset is never committed before its refused record is in the error topic', async () => {
    const ref = { database: 'lake', table: 'dirty_topic' };
    const commit = createClient(CommitServiceService, stack.commit.address, { deadlineMs: 10_000 });
    stack.broker.createTopic('seed_errors', 1);
    await seedJob(
      'dirty_topic',
      'seed_topic_src',
      { kind: ErrorPolicyKind.ERROR_POLICY_KIND_ERROR_TOPIC, maxErrors: 0, errorTopic: 'seed_errors' },
      [],
    );
    // Checked the moment each commit is announced: if it covers offset 3, record 101 must be
    // in the error topic already (the topic only grows, so a later look would prove nothing).
    const violations: string[] = [];
    let covering = 0;
    let rounds = 0;
    const sub = stack.nats.subscribe(subjects.committed(ref));
    void (async () => {
      for await (const m of sub) {
        const e = CommittedEvent.decode(m.data);
        rounds++;
        if (!e.offsets.some((r) => r.endOffset > 3)) continue;
        covering++;
        const hw = stack.broker.highWatermark('seed_errors', 0);
        if (hw < 1) violations.push(`flush ${e.flushId} committed ${JSON.stringify(e.offsets)} while the error topic was empty`);
      }
    })();
    let flushing = true;
    const flusher = (async () => {
      while (flushing) {
        await commit.triggerFlush({ table: ref, job: 'dirty_topic' }).catch(() => undefined);
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    try {
      await ingestion.startJob({ job: 'dirty_topic' });
      // The stream is open and answering flushes before the records arrive, so rounds keep
      // completing while record 101 waits for its produce.
      const seen = rounds;
      await waitFor('a flush round answered by the running stream', () => rounds > seen + 2, { timeoutMs: 20_000 });
      // The first two produces of record 101 time out: the producer retries after ~300 and ~600 ms.
      stack.broker.faults.failNext(ApiKey.Produce, 2, ErrorCode.REQUEST_TIMED_OUT);
      stack.broker.append(
        'seed_topic_src',
        0,
        SEED.map((v, i) => ({ key: Buffer.from(String(i)), value: Buffer.from(v) })),
      );
      await waitFor('offsets committed through offset 4', async () => (await committedNext('dirty_topic')) === 5, { timeoutMs: 30_000 });
    } finally {
      flushing = false;
      await flusher;
      stack.broker.faults.clear();
      commit.close();
      sub.unsubscribe();
    }
    assert.deepEqual(violations, []);
    assert.ok(covering > 0);

    assert.deepEqual(await ids('dirty_topic'), [100, 102, 123, 456]);
    // At least once: a re-read (a report that missed its deadline) may have produced it again.
    const kafka = new Kafka({ clientId: 'dirty-e2e', brokers: [stack.broker.address], logLevel: logLevel.NOTHING });
    const consumer = kafka.consumer({ groupId: `dirty-e2e-${process.pid}` });
    await consumer.connect();
    await consumer.subscribe({ topic: 'seed_errors', fromBeginning: true });
    const got = await new Promise<{ key: string; value: string; headers: Record<string, string> }>((resolve) => {
      void consumer.run({
        eachMessage: async ({ message }) =>
          resolve({
            key: String(message.key),
            value: String(message.value),
            headers: Object.fromEntries(Object.entries(message.headers ?? {}).map(([k, v]) => [k, String(v)])),
          }),
      });
    });
    await consumer.disconnect();
    assert.equal(got.value, SEED[3]);
    assert.equal(got.key, '3');
    assert.deepEqual(
      [got.headers['sluice.source.topic'], got.headers['sluice.source.offset'], got.headers['sluice.error.reason']],
      ['seed_topic_src', '3', 'unknown_field'],
    );
    await ingestion.stopJob({ job: 'dirty_topic' });
  });
});
