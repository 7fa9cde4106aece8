-- Scheduled jobs (seed 001). Rows every commit of a job added, kept with its offsets.
ALTER TABLE job_progress ADD COLUMN total_rows bigint NOT NULL DEFAULT 0;

-- One scheduler fires instances at a time; the epoch fences one that lost the lease.
CREATE TABLE scheduler_lease (
  singleton     boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  owner         text NOT NULL,
  epoch         bigint NOT NULL,
  expires_at_ms bigint NOT NULL
);

-- Each attempt of each instance of a scheduled job: the attempt's own bounded job, its window
-- and partition. An instance fires once: (parent, scheduled_ms, attempt) is unique, and the
-- first attempt is created in the same transaction as its job.
CREATE TABLE job_instances (
  parent          text NOT NULL REFERENCES jobs (name) ON DELETE CASCADE,
  scheduled_ms    bigint NOT NULL,
  attempt         int NOT NULL CHECK (attempt >= 1),
  kind            text NOT NULL,
  -- The attempt's job; NULL for an instance skipped by catch-up LATEST.
  job             text REFERENCES jobs (name) ON DELETE SET NULL,
  window_start_ms bigint NOT NULL,
  window_end_ms   bigint NOT NULL,
  partition_value text NOT NULL,
  skipped         boolean NOT NULL DEFAULT false,
  created_at_ms   bigint NOT NULL,
  -- How far late records were looked for past the instance's reading: {"<partition>": offset}.
  late_checked    jsonb NOT NULL DEFAULT '{}',
  PRIMARY KEY (parent, scheduled_ms, attempt)
);
CREATE UNIQUE INDEX job_instances_job ON job_instances (job);

-- Records stamped inside a finished instance's window at offsets past what it read. One row per
-- record, so finding one twice counts it once.
CREATE TABLE late_records (
  parent       text NOT NULL REFERENCES jobs (name) ON DELETE CASCADE,
  topic        text NOT NULL,
  partition    int NOT NULL,
  "offset"     bigint NOT NULL,
  timestamp_ms bigint NOT NULL,
  scheduled_ms bigint NOT NULL,
  found_at_ms  bigint NOT NULL,
  PRIMARY KEY (parent, topic, partition, "offset")
);
CREATE INDEX late_records_instance ON late_records (parent, scheduled_ms);
