/**
 * Metrics scraped the way Prometheus does, during a run: a job's records in and its lag per
 * partition from ingestion, the commits from the commit service, RPC durations from every
 * server, all in the Prometheus text format at /metrics (issue 18).
 */
import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import { freePort } from '#test-support/ports.js';
import { waitFor } from '#test-support/wait.js';
import { defineJob, startIngestionStack, type IngestionClient, type IngestionStack } from './support/stack.js';

let stack: IngestionStack;
let ingestion: IngestionClient;
let metricsUrl: string;

before(async () => {
  stack = await startIngestionStack({ partitions: 2 });
  const port = await freePort();
  ingestion = (await stack.startIngestion({ SLUICE_METRICS_PORT: String(port) })).client;
  metricsUrl = `http://127.0.0.1:${port}/metrics`;
});
after(() => stack.stop());

/** The samples of one metric, as label text → value. */
async function scrape(metric: string): Promise<Map<string, number>> {
  const response = await fetch(metricsUrl);
  assert.equal(response.status, 200);
  assert.match(response.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  const samples = new Map<string, number>();
  for (const line of (await response.text()).split('\n')) {
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$/.exec(line);
    if (match && match[1] === metric) samples.set(match[2] ?? '', Number(match[3]));
  }
  return samples;
}

it("a job's records, lag per partition and commits can be scraped; the lag falls to 0 once everything is committed", async () => {
  const topic = 'metered';
  stack.broker.createTopic(topic, 2);
  for (const p of [0, 1])
    stack.broker.append(
      topic,
      p,
      [1, 2, 3].map((i) => ({ value: Buffer.from(JSON.stringify({ v: `${p}-${i}` })) })),
    );
  const job = await defineJob(stack.catalog, 'metered', topic);
  await ingestion.startJob({ job });

  await waitFor('every record read and the lag of both partitions at 0', async () => {
    const recordsIn = await scrape('sluice_job_records_in_total');
    const bytesIn = await scrape('sluice_job_bytes_in_total');
    if (bytesIn.get(`{job="${job}"}`) !== 6 * Buffer.byteLength(JSON.stringify({ v: '0-1' }))) return false;
    const lag = await scrape('sluice_job_lag_records');
    return (
      recordsIn.get(`{job="${job}"}`) === 6 &&
      lag.get(`{job="${job}",topic="${topic}",partition="0"}`) === 0 &&
      lag.get(`{job="${job}",topic="${topic}",partition="1"}`) === 0
    );
  });
  const rows = await scrape('sluice_commit_rows_total');
  assert.equal(rows.get(`{table="lake.${job}",job="${job}"}`), 6, 'the commits added every row');
  const rounds = await scrape('sluice_flush_round_duration_seconds_count');
  assert.ok((rounds.get(`{table="lake.${job}",job="${job}"}`) ?? 0) >= 1, 'flush rounds are timed');
  const since = await scrape('sluice_job_seconds_since_commit');
  assert.ok((since.get(`{job="${job}"}`) ?? -1) >= 0, 'the time since the last commit is known');
  const calls = await scrape('sluice_rpc_server_duration_seconds_count');
  assert.ok(
    (calls.get('{method="sluice.v1.IngestionService/StartJob",code="OK"}') ?? 0) >= 1,
    `StartJob is counted among the RPCs (${[...calls.keys()].join(' ')})`,
  );

  // More records: the lag rises, then falls to 0 again as they are committed.
  stack.broker.append(
    topic,
    0,
    [4, 5].map((i) => ({ value: Buffer.from(JSON.stringify({ v: `0-${i}` })) })),
  );
  await waitFor('the new records committed', async () => {
    const recordsIn = await scrape('sluice_job_records_in_total');
    const lag = await scrape('sluice_job_lag_records');
    return recordsIn.get(`{job="${job}"}`) === 8 && lag.get(`{job="${job}",topic="${topic}",partition="0"}`) === 0;
  });
  assert.equal((await fetch(metricsUrl.replace('/metrics', '/other'))).status, 404);
  await ingestion.stopJob({ job });
});
