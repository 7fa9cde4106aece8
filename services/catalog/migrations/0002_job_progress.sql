-- What a job's commits add up to, written in the same transaction as its offsets (CommitTable),
-- so that job status shows the last commit and the refused records after any restart, and a
-- SKIP_UP_TO budget is spent across restarts.
CREATE TABLE job_progress (
  job               text PRIMARY KEY REFERENCES jobs (name) ON DELETE CASCADE,
  last_snapshot_id  bigint,
  last_commit_at_ms bigint NOT NULL,
  -- Rows the last commit added.
  last_commit_rows  bigint NOT NULL DEFAULT 0,
  -- Records refused in everything committed: {"reason": count}.
  error_counts      jsonb NOT NULL DEFAULT '{}'
);
