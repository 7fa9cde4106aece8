-- Where a job starts on each partition of its topic, recorded when the job first resolves its
-- start spec there (RecordJobStart, the first start given wins): a job's first commit on a
-- partition must begin exactly here, so no caller can make it skip data, and every ingestion
-- process and every restart starts the partition at the same offset.
CREATE TABLE job_starts (
  job                 text NOT NULL REFERENCES jobs (name) ON DELETE CASCADE,
  topic               text NOT NULL,
  partition           int NOT NULL CHECK (partition >= 0),
  start_offset        bigint NOT NULL CHECK (start_offset >= 0),
  -- A start by timestamp: records from start_offset below this one stamped before the start
  -- time are covered without rows (positions.ts StartSearch). NULL for every other start.
  search_until_offset bigint CHECK (search_until_offset >= start_offset),
  recorded_at_ms      bigint NOT NULL,
  PRIMARY KEY (job, topic, partition)
);
