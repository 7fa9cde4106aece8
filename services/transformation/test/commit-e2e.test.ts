/**
 * Transform stream → real commit service → real catalog: a TriggerFlush reaches the stream
 * as a FlushEvent, the report is admitted and committed, the catalog's committed offsets
 * are exactly the batches' covers, and the snapshot's data files hold the rows. JSON whose
 * fields outgrow the table evolves its schema in the same commit, read back by `sluice query`.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import { StartFrom } from '#shared/gen/sluice/v1/catalog.js';
import { CommitServiceService } from '#shared/gen/sluice/v1/commit.js';
import { CommittedEvent } from '#shared/gen/sluice/v1/events.js';
import type { TableRef } from '#shared/gen/sluice/v1/types.js';
import { subjects } from '#shared/events.js';
import { createClient } from '#shared/grpc/client.js';
import { resolveSnapshot, snapshotFiles } from '#shared/iceberg/scan.js';
import type { TableMetadata } from '#shared/iceberg/types.js';
import { createStorage } from '#shared/storage/index.js';
import { runQuery } from '#cli/query.js';
import { createTable, query, startTransformationStack, TestStream, type TransformationStack } from './stream-support.js';
import { field, flattenMapping, job, mapping as jsonMapping, recordStarts, source } from '#test-support/builders.js';
import { waitFor } from '#test-support/wait.js';

const mapping = flattenMapping();

/** A job reading topic `clicks`, its starts recorded (partition → offset) as ingestion records them. */
async function createJob(
  h: TransformationStack,
  name: string,
  ref: TableRef,
  jobMapping = mapping,
  starts: Record<number, number> = { 0: 0 },
): Promise<void> {
  await h.catalog.createSource({ source: source(`${name}_src`, 'clicks') });
  await h.catalog.createJob({
    job: job(name, `${name}_src`, ref, {
      mapping: jobMapping,
      start: { from: StartFrom.START_FROM_EARLIEST },
      commitIntervalMs: 3_600_000,
    }),
  });
  await recordStarts(h.catalog, name, 'clicks', starts);
}

/** Commits what the streams reported so far and returns the CommittedEvent. */
async function flushNow(h: TransformationStack, ref: TableRef, jobName: string): Promise<CommittedEvent> {
  const commit = createClient(CommitServiceService, h.commitAddress, { deadlineMs: 20_000 });
  const committed: CommittedEvent[] = [];
  const sub = h.nats.subscribe(subjects.committed(ref));
  void (async () => {
    for await (const m of sub) committed.push(CommittedEvent.decode(m.data));
  })();
  try {
    const { flushId } = await commit.triggerFlush({ table: ref, job: jobName });
    return await waitFor(`the CommittedEvent of ${flushId}`, () => committed.find((e) => e.flushId === flushId), { timeoutMs: 20_000 });
  } finally {
    sub.unsubscribe();
    commit.close();
  }
}

describe('Transform stream with the real commit service', () => {
  let h: TransformationStack;
  before(async () => {
    // The real commit service with its own defaults but a longer flush timeout: the test triggers its one flush.
    h = await startTransformationStack({
      commit: { env: { COMMIT_DEFAULT_INTERVAL_MS: '300000', COMMIT_WORKER_TTL_MS: '15000', COMMIT_FLUSH_TIMEOUT_MS: '10000' } },
    });
  });
  after(async () => {
    await h.stop();
  });

  it("a flush commits the stream's rows with exactly the offsets its batches covered", async () => {
    const { ref } = await createTable(h, 'clicks', [field(1, 'id', 'long', true), field(2, 'page', 'string')]);
    await createJob(h, 'clicks_job', ref, mapping, { 0: 0, 1: 40 });
    const commit = createClient(CommitServiceService, h.commitAddress, { deadlineMs: 20_000 });
    const committed: CommittedEvent[] = [];
    const sub = h.nats.subscribe(subjects.committed(ref));
    void (async () => {
      for await (const m of sub) committed.push(CommittedEvent.decode(m.data));
    })();
    try {
      const s = new TestStream(h, { job: 'clicks_job', table: ref, mapping, workerId: `e2e-${process.pid}`, flushBufferBytes: 0 });
      await s.sendRange('clicks', 0, 0, ['{"id":1,"page":"/a"}', '{"id":2,"page":"/b"}']);
      await s.sendRange('clicks', 1, 40, ['{"id":3,"page":"/c"}', 'not json is refused… and fails the FAIL policy']).catch(() => undefined);
      // The FAIL policy ended that stream: its rows are dropped, nothing reported. A new stream re-reads.
      assert.equal((await s.ended)?.code, 9);
      const s2 = new TestStream(h, { job: 'clicks_job', table: ref, mapping, workerId: `e2e-${process.pid}-2`, flushBufferBytes: 0 });
      await s2.sendRange('clicks', 0, 0, ['{"id":1,"page":"/a"}', '{"id":2,"page":"/b"}']);
      await s2.sendRange('clicks', 1, 40, ['{"id":3,"page":"/c"}']);
      await s2.sendRange('clicks', 0, 2, ['{"id":4,"page":"/d"}']);

      const { flushId } = await commit.triggerFlush({ table: ref, job: 'clicks_job' });
      const event = await waitFor(`the CommittedEvent of ${flushId}`, () => committed.find((e) => e.flushId === flushId), {
        timeoutMs: 20_000,
      });
      assert.equal(event.addedRecords, 4);

      const { offsets } = await h.catalog.getCommittedOffsets({ job: 'clicks_job' });
      assert.deepEqual(
        offsets.map((o) => [o.topic, o.partition, o.nextOffset]),
        [
          ['clicks', 0, 3],
          ['clicks', 1, 41],
        ],
      );

      const { table } = await h.catalog.getTable({ ref });
      const meta = JSON.parse(await readFile(table!.metadataLocation, 'utf8')) as TableMetadata;
      const snapshot = resolveSnapshot(meta)!;
      const files = (await snapshotFiles(createStorage(), snapshot)).dataFiles.map((f) => f.dataFile.filePath);
      assert.equal(files.length, 1);
      const rows = await query(`SELECT id, page FROM read_parquet(['${files.join("','")}']) ORDER BY id`);
      assert.deepEqual(
        rows.map((r) => [Number(r.id), r.page]),
        [
          [1, '/a'],
          [2, '/b'],
          [3, '/c'],
          [4, '/d'],
        ],
      );
      s2.end();
      assert.equal(await s2.ended, null);
    } finally {
      sub.unsubscribe();
      commit.close();
    }
  });

  it('JSON fields that appear mid-stream become columns in the same commit (earlier rows NULL), an int widens to long, and 64-bit ids stay exact', async () => {
    const { ref } = await createTable(h, 'evolving', [field(1, 'id', 'long', true), field(2, 'page', 'string'), field(3, 'clicks', 'int')]);
    // JSON at the default flatten level (1) with the default schema evolution.
    const json = jsonMapping({ timeZone: 'UTC' });
    await createJob(h, 'evolving_job', ref, json);
    const s = new TestStream(h, { job: 'evolving_job', table: ref, mapping: json, workerId: `evolve-${process.pid}`, flushBufferBytes: 0 });
    await s.sendRange('clicks', 0, 0, ['{"id":1,"page":"/a","clicks":5}', '{"id":2,"page":"/b"}']);
    const ack = await s
      .sendRange('clicks', 0, 2, [
        '{"id":3,"page":"/c","ref":"mail","clicks":6}',
        '{"id":9007199254740993,"page":"/d","ref":"ad","clicks":3000000000,"score":null}',
        '{"id":5,"page":"/e","clicks":"many"}',
      ])
      .catch((e: Error) => e);
    // A value no permitted widening holds is dirty data, with its reason (FAIL policy ends the stream).
    assert.match(String((await s.ended)?.details ?? ack), /column "clicks": "many" is not a long/);

    const s2 = new TestStream(h, {
      job: 'evolving_job',
      table: ref,
      mapping: json,
      workerId: `evolve-${process.pid}-2`,
      flushBufferBytes: 0,
    });
    await s2.sendRange('clicks', 0, 0, ['{"id":1,"page":"/a","clicks":5}', '{"id":2,"page":"/b"}']);
    await s2.sendRange('clicks', 0, 2, [
      '{"id":3,"page":"/c","ref":"mail","clicks":6}',
      '{"id":9007199254740993,"page":"/d","ref":"ad","clicks":3000000000,"score":null}',
    ]);
    const event = await flushNow(h, ref, 'evolving_job');
    assert.equal(event.addedRecords, 4);

    const { table } = await h.catalog.getTable({ ref });
    assert.deepEqual(
      table!.schema!.fields.map((f) => [f.id, f.name, f.type?.kind?.$case === 'primitive' ? f.type.kind.value : '', f.required]),
      [
        [1, 'id', 'long', true],
        [2, 'page', 'string', false],
        [3, 'clicks', 'long', false],
        [4, 'ref', 'string', false],
      ],
      'ref added (score was only ever null: no column yet), clicks widened',
    );
    assert.equal(table!.lastColumnId, 4);
    const meta = JSON.parse(await readFile(table!.metadataLocation, 'utf8')) as TableMetadata;
    const snapshot = resolveSnapshot(meta)!;
    assert.equal(snapshot['schema-id'], meta['current-schema-id'], 'the snapshot is written with the evolved schema, in one commit');
    assert.equal(meta.snapshots.length, 1);
    const idBounds = (await snapshotFiles(createStorage(), snapshot)).dataFiles
      .map((f) => f.dataFile.columnStats.find((c) => c.fieldId === 1)!)
      .map((c) => [Buffer.from(c.lowerBound).readBigInt64LE(), Buffer.from(c.upperBound).readBigInt64LE()]);
    assert.ok(
      idBounds.some(([, upper]) => upper === 9007199254740993n),
      `the manifests' upper bound of id is exact: ${idBounds.map((b) => b.join('..')).join(', ')}`,
    );

    const { rows } = await runQuery(h.catalog, 'SELECT id, page, clicks, ref FROM tdb.evolving ORDER BY page');
    assert.deepEqual(rows, [
      { id: 1, page: '/a', clicks: 5, ref: null },
      { id: 2, page: '/b', clicks: null, ref: null },
      { id: 3, page: '/c', clicks: 6, ref: 'mail' },
      { id: '9007199254740993', page: '/d', clicks: 3000000000, ref: 'ad' },
    ]);
    s2.end();
    assert.equal(await s2.ended, null);
  });
});
