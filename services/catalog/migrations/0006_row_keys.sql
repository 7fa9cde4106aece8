-- A keyed table's row index (DESIGN.md, "Upsert tables"): for every key with a live row, the
-- data file and position of that row. CommitTable moves it in the same transaction as the
-- snapshot whose position deletes it was used to build, so a crash never leaves the index and
-- the table disagreeing; the commit coordinator reads it (LookupRowKeys) to find the rows a
-- round's changed keys replace.

-- The data files the index points into, with their partition: a position delete file lives in
-- the partition of the data files it applies to, as readers find it there.
CREATE TABLE row_files (
  id        bigserial PRIMARY KEY,
  table_id  bigint NOT NULL REFERENCES tables (id) ON DELETE CASCADE,
  file_path text NOT NULL,
  spec_id   int NOT NULL,
  -- The DataFile's partition values, as their protobuf JSON.
  partition jsonb NOT NULL,
  UNIQUE (table_id, file_path)
);

-- One row per live key; the file by id, so a million keys do not repeat its path.
CREATE TABLE row_keys (
  table_id bigint NOT NULL REFERENCES tables (id) ON DELETE CASCADE,
  key      text NOT NULL,
  file_id  bigint NOT NULL,
  pos      bigint NOT NULL,
  PRIMARY KEY (table_id, key)
);
-- Compaction moves every row of the files it rewrites.
CREATE INDEX row_keys_file ON row_keys (file_id);

-- A job's row changes in everything committed (keyed tables only).
ALTER TABLE job_progress
  ADD COLUMN inserted_rows bigint NOT NULL DEFAULT 0,
  ADD COLUMN updated_rows  bigint NOT NULL DEFAULT 0,
  ADD COLUMN deleted_rows  bigint NOT NULL DEFAULT 0;
