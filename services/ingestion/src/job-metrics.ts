/**
 * Each job's numbers as metrics (shared/src/metrics.ts), observed from the job statuses when a
 * scrape asks, so reading records costs nothing extra: records and bytes in, rows out, excluded and
 * refused (by reason) records, lag per partition (high watermark − committed offset, as job
 * status shows it) and the seconds since the job's last commit. A process reports the members
 * it runs; summed over the ingestion replicas, the counts are the job's.
 */
import type { JobStatus } from '#shared/gen/sluice/v1/ingestion.js';
import { meter } from '#shared/metrics.js';

export function observeJobs(statuses: () => Promise<JobStatus[]>, now: () => number = Date.now): void {
  const m = meter();
  const recordsIn = m.createObservableCounter('sluice_job_records_in', { description: 'Records read from Kafka, per job.' });
  const bytesIn = m.createObservableCounter('sluice_job_bytes_in', {
    description: "Bytes of the records' keys and values read from Kafka, per job.",
    unit: 'By',
  });
  const rowsOut = m.createObservableCounter('sluice_job_rows_out', { description: 'Rows written, per job.' });
  const excluded = m.createObservableCounter('sluice_job_records_excluded', {
    description: 'Records left out on purpose (outside a bounded window), per job.',
  });
  const refused = m.createObservableCounter('sluice_job_records_refused', {
    description: 'Records refused as bad data, per job and reason.',
  });
  const lag = m.createObservableGauge('sluice_job_lag_records', {
    description: 'Per partition, the records not yet committed: high watermark minus committed offset.',
  });
  const sinceCommit = m.createObservableGauge('sluice_job_seconds_since_commit', {
    description: "Seconds since the job's last commit (absent before the first).",
    unit: 's',
  });
  m.addBatchObservableCallback(
    async (result) => {
      for (const s of await statuses()) {
        const job = { job: s.job };
        result.observe(recordsIn, s.recordsIn, job);
        result.observe(bytesIn, s.bytesIn, job);
        result.observe(rowsOut, s.rowsOut, job);
        result.observe(excluded, s.recordsExcluded, job);
        for (const e of s.errors) result.observe(refused, e.count, { ...job, reason: e.reason });
        for (const p of s.partitions) result.observe(lag, p.lag, { ...job, topic: p.topic, partition: p.partition });
        if (s.lastCommit && s.lastCommit.committedAtMs > 0) result.observe(sinceCommit, (now() - s.lastCommit.committedAtMs) / 1000, job);
      }
    },
    [recordsIn, bytesIn, rowsOut, excluded, refused, lag, sinceCommit],
  );
}
