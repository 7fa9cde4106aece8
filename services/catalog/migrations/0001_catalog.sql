-- Catalog schema (search_path is "catalog", public while this runs).
-- All ids and offsets are bigint below 2^53 (see shared/src/pg.ts).

CREATE TABLE databases (
  name          text PRIMARY KEY,
  location      text NOT NULL,
  properties    jsonb NOT NULL DEFAULT '{}',
  created_at_ms bigint NOT NULL
);

CREATE TABLE tables (
  id                         bigserial PRIMARY KEY,
  database                   text NOT NULL REFERENCES databases (name),
  name                       text NOT NULL,
  table_uuid                 uuid NOT NULL UNIQUE,
  location                   text NOT NULL,
  format_version             int NOT NULL DEFAULT 2,
  metadata_location          text NOT NULL,
  previous_metadata_location text,
  -- The current metadata.json content: commits read it under the row lock instead of
  -- re-reading the file, and GetTable needs no storage round trip.
  metadata                   jsonb NOT NULL,
  current_snapshot_id        bigint,
  last_sequence_number       bigint NOT NULL DEFAULT 0,
  current_schema_id          int NOT NULL,
  properties                 jsonb NOT NULL DEFAULT '{}',
  created_at_ms              bigint NOT NULL,
  updated_at_ms              bigint NOT NULL,
  UNIQUE (database, name)
);

CREATE TABLE schema_versions (
  table_id      bigint NOT NULL REFERENCES tables (id) ON DELETE CASCADE,
  schema_id     int NOT NULL,
  schema        jsonb NOT NULL,
  created_at_ms bigint NOT NULL,
  PRIMARY KEY (table_id, schema_id)
);

CREATE TABLE partition_specs (
  table_id bigint NOT NULL REFERENCES tables (id) ON DELETE CASCADE,
  spec_id  int NOT NULL,
  spec     jsonb NOT NULL,
  PRIMARY KEY (table_id, spec_id)
);

CREATE TABLE sources (
  name          text PRIMARY KEY,
  brokers       text[] NOT NULL DEFAULT '{}',
  topic         text NOT NULL,
  -- The whole Source message (proto JSON), so new fields need no migration.
  spec          jsonb NOT NULL,
  created_at_ms bigint NOT NULL
);

CREATE TABLE jobs (
  name               text PRIMARY KEY,
  source             text NOT NULL REFERENCES sources (name) ON DELETE RESTRICT,
  table_id           bigint NOT NULL REFERENCES tables (id) ON DELETE RESTRICT,
  -- The whole Job message (proto JSON) minus state, which lives in its own columns.
  spec               jsonb NOT NULL,
  state              text NOT NULL,
  state_reason       text NOT NULL DEFAULT '',
  created_at_ms      bigint NOT NULL,
  updated_at_ms      bigint NOT NULL
);
CREATE INDEX jobs_table_id ON jobs (table_id);

-- Exactly-once lives here: the next offset to read per job/topic/partition, written in the
-- same transaction as the snapshot that holds the records before it.
CREATE TABLE committed_offsets (
  job           text NOT NULL REFERENCES jobs (name) ON DELETE CASCADE,
  topic         text NOT NULL,
  partition     int NOT NULL,
  next_offset   bigint NOT NULL CHECK (next_offset >= 0),
  snapshot_id   bigint,
  updated_at_ms bigint NOT NULL,
  PRIMARY KEY (job, topic, partition)
);

-- One commit coordinator per table; the epoch fences coordinators that lost the lease.
CREATE TABLE commit_leases (
  table_id      bigint PRIMARY KEY REFERENCES tables (id) ON DELETE CASCADE,
  owner         text NOT NULL,
  epoch         bigint NOT NULL,
  expires_at_ms bigint NOT NULL
);

-- Iceberg JDBC catalog tables (org.apache.iceberg.jdbc.JdbcCatalog, schema V1), in the public
-- schema where the JDBC catalog looks by default, so Spark, Trino, Flink or PyIceberg
-- (SqlCatalog) configured with catalog name "sluice" open the same tables. Kept in step with
-- catalog.tables inside the same transactions.
CREATE TABLE IF NOT EXISTS public.iceberg_tables (
  catalog_name               varchar(255) NOT NULL,
  table_namespace            varchar(255) NOT NULL,
  table_name                 varchar(255) NOT NULL,
  metadata_location          varchar(1000),
  previous_metadata_location varchar(1000),
  iceberg_type               varchar(5),
  PRIMARY KEY (catalog_name, table_namespace, table_name)
);

CREATE TABLE IF NOT EXISTS public.iceberg_namespace_properties (
  catalog_name   varchar(255) NOT NULL,
  namespace      varchar(255) NOT NULL,
  property_key   varchar(255) NOT NULL,
  property_value varchar(1000),
  PRIMARY KEY (catalog_name, namespace, property_key)
);
