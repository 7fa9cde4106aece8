/**
 * The whole path with the real services: dev broker → ingestion → transformation (Parquet)
 * → commit → catalog. A bounded window with out-of-order timestamps finishes with exactly the
 * expected rows in the table; a refused record under ERROR_TOPIC is produced by ingestion.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import { DuckDBInstance } from '@duckdb/node-api';
import { CompletionPolicy, type Job, JobState } from '#shared/gen/sluice/v1/catalog.js';
import { ErrorPolicyKind } from '#shared/gen/sluice/v1/types.js';
import { resolveSnapshot, snapshotFiles } from '#shared/iceberg/scan.js';
import type { TableMetadata } from '#shared/iceberg/types.js';
import { createStorage } from '#shared/storage/index.js';
import { startIngestionStack, type IngestionClient, type IngestionStack } from './support/stack.js';
import { field, flattenMapping, job, source, tableRequest } from '#test-support/builders.js';
import { waitFor } from '#test-support/wait.js';

let stack: IngestionStack;
let ingestion: IngestionClient;

before(async () => {
  stack = await startIngestionStack({ partitions: 2 });
  const transformation = await stack.startTransformation();
  ingestion = (await stack.startIngestion({ TRANSFORMATION_ADDRESS: transformation })).client;
});
after(async () => {
  await stack?.stop();
});

async function define(name: string, topic: string, overrides: Partial<Job>): Promise<void> {
  const ref = { database: 'lake', table: name };
  await stack.catalog.createDatabase({ name: 'lake', location: '', properties: {} }).catch(() => {});
  await stack.catalog.createTable(tableRequest(ref, [field(1, 'id', 'long', true), field(2, 'p', 'int')]));
  await stack.catalog.createSource({ source: source(`${name}_src`, topic) });
  const defaults = { mapping: flattenMapping(), commitIntervalMs: 1000, parallelism: 1, state: JobState.JOB_STATE_CREATED };
  await stack.catalog.createJob({ job: job(name, `${name}_src`, ref, { ...defaults, ...overrides }) });
}

async function tableIds(name: string): Promise<number[]> {
  const { table } = await stack.catalog.getTable({ ref: { database: 'lake', table: name } });
  const meta = JSON.parse(await readFile(table!.metadataLocation, 'utf8')) as TableMetadata;
  const snapshot = resolveSnapshot(meta);
  if (!snapshot) return [];
  const files = (await snapshotFiles(createStorage(), snapshot)).dataFiles.map((f) => f.dataFile.filePath.replace(/^file:\/\//, ''));
  if (files.length === 0) return [];
  const conn = await (await DuckDBInstance.create(':memory:')).connect();
  const reader = await conn.runAndReadAll(`SELECT id FROM read_parquet(['${files.join("','")}']) ORDER BY id`);
  return (reader.getRowObjects() as { id: bigint }[]).map((r) => Number(r.id));
}

describe('with the real transformation service', () => {
  it('a job stopped and started again in the same process writes under a new worker id and keeps committing', async () => {
    const topic = 'e2e_restart';
    stack.broker.createTopic(topic, 2);
    const append = (ids: number[]) =>
      stack.broker.append(
        topic,
        0,
        ids.map((id) => ({ value: Buffer.from(JSON.stringify({ id, p: 0 })) })),
      );
    append([1, 2]);
    await define('e2e_restart', topic, {});
    const committedNext = async () =>
      (await stack.catalog.getCommittedOffsets({ job: 'e2e_restart' })).offsets.find((o) => o.partition === 0)?.nextOffset ?? 0;
    await ingestion.startJob({ job: 'e2e_restart' });
    await waitFor('the first two records committed', async () => (await committedNext()) === 2, { timeoutMs: 30_000 });
    // Twice: before, a new JobReader counted its streams from 1 again, so a stream of one run
    // reused a worker id of the run before, transformation refused it ("data file … already
    // exists; worker id … was used before") and nothing more was committed.
    for (const more of [
      [3, 4],
      [5, 6],
    ]) {
      await ingestion.stopJob({ job: 'e2e_restart' });
      await ingestion.startJob({ job: 'e2e_restart' });
      append(more);
      await waitFor(`records up to ${more[1]} committed after a restart`, async () => (await committedNext()) === more[1], {
        timeoutMs: 30_000,
      });
    }
    assert.deepEqual(await tableIds('e2e_restart'), [1, 2, 3, 4, 5, 6]);
    const { status } = await ingestion.getJobStatus({ job: 'e2e_restart' });
    assert.equal(status!.state, JobState.JOB_STATE_RUNNING);
    assert.doesNotMatch(status!.reason, /already exists|was used before/);
    await ingestion.stopJob({ job: 'e2e_restart' });
  });

  it('a bounded window (out-of-order timestamps, END_POSITION) lands exactly its rows, then FINISHED', async () => {
    const topic = 'e2e_window';
    stack.broker.createTopic(topic, 2);
    // id = partition * 100 + offset; window [10 000, 20 000).
    const p0 = [5000, 9000, 12000, 8000, 15000, 19999, 10000, 21000, 13000, 30000];
    const p1 = [10000, 20000, 11000];
    stack.broker.append(
      topic,
      0,
      p0.map((t, i) => ({ value: Buffer.from(JSON.stringify({ id: i, p: 0 })), timestamp: t })),
    );
    stack.broker.append(
      topic,
      1,
      p1.map((t, i) => ({ value: Buffer.from(JSON.stringify({ id: 100 + i, p: 1 })), timestamp: t })),
    );
    await define('e2e_window', topic, {
      window: {
        startTimeMs: 10_000,
        endTimeMs: 20_000,
        timeZone: 'UTC',
        completion: CompletionPolicy.COMPLETION_POLICY_END_POSITION,
        idleTimeoutMs: 0,
        allowedLatenessMs: 0,
        endOffsets: [],
      },
    });
    await ingestion.startJob({ job: 'e2e_window' });
    await waitFor('FINISHED', async () => (await stack.catalog.getJob({ name: 'e2e_window' })).job!.state === JobState.JOB_STATE_FINISHED, {
      timeoutMs: 40_000,
    });
    assert.deepEqual(await tableIds('e2e_window'), [2, 4, 5, 6, 100]);
    const { status } = await ingestion.getJobStatus({ job: 'e2e_window' });
    assert.equal(status!.rowsOut, 5);
    assert.equal(status!.recordsExcluded, 1);
  });

  it('ERROR_TOPIC: refused records are produced to the error topic by ingestion; good rows land', async () => {
    const topic = 'e2e_dirty';
    stack.broker.createTopic(topic, 1);
    stack.broker.createTopic('e2e_errors', 1);
    stack.broker.append(
      topic,
      0,
      ['{"id":1,"p":0}', 'not json', '{"id":3,"p":0}', '{"nope":true}'].map((v) => ({ value: Buffer.from(v) })),
    );
    await define('e2e_dirty', topic, {
      mapping: flattenMapping({
        errorPolicy: { kind: ErrorPolicyKind.ERROR_POLICY_KIND_ERROR_TOPIC, maxErrors: 0, errorTopic: 'e2e_errors' },
      }),
    });
    await ingestion.startJob({ job: 'e2e_dirty' });
    await waitFor(
      'commit through offset 4',
      async () => (await stack.catalog.getCommittedOffsets({ job: 'e2e_dirty' })).offsets[0]?.nextOffset === 4,
      { timeoutMs: 30_000 },
    );
    await waitFor('two error records', () => stack.broker.highWatermark('e2e_errors', 0) === 2);
    assert.deepEqual(await tableIds('e2e_dirty'), [1, 3]);
    const { status } = await ingestion.getJobStatus({ job: 'e2e_dirty' });
    assert.equal(
      status!.errors.reduce((n, e) => n + e.count, 0),
      2,
    );
    await ingestion.stopJob({ job: 'e2e_dirty' });
  });
});
