/**
 * CommitTable, the heart of exactly-once, in ONE transaction:
 *   1. lock the table row (SELECT ... FOR UPDATE): concurrent commits queue here;
 *   2. the current snapshot must be the one the caller built on, else ABORTED (rebase);
 *   3. a fenced caller (lease_epoch > 0) must hold the current lease epoch;
 *   4. every offset range must start at the committed next offset of its partition, or at the
 *      job's recorded start before its first commit there (RecordJobStart);
 *   5. apply the updates, write a new metadata.json, swap the pointer (and iceberg_tables),
 *      store the new offsets.
 * Of N commits against one snapshot exactly one passes step 2; the others see the new
 * snapshot once they get the lock.
 */
import type { AsyncHandlers } from '#shared/grpc/types.js';
import type {
  CatalogServiceService,
  AddSnapshot,
  JobProgress,
  FileRows,
  IndexedFile,
  PartitionStart,
  RowKeyChanges,
  TableUpdate,
} from '#shared/gen/sluice/v1/catalog.js';
import { PartitionValue, type ChangeCounts, type ErrorCount } from '#shared/gen/sluice/v1/types.js';
import { aborted, failedPrecondition, invalidArgument, notFound } from '#shared/errors.js';
import {
  addSchema,
  addSnapshot,
  currentSchema,
  removeSnapshots,
  schemaFromProto,
  setProperties,
  type SnapshotJson,
  type TableMetadata,
} from '#shared/iceberg/index.js';
import { inTransaction, type PoolClient } from '#shared/pg.js';
import { withSpan } from '#shared/tracing.js';
import { isWithin } from '#shared/storage/index.js';
import { translated, validRef, type CatalogDeps } from './context.js';
import { quotedPrefix, validResourceName } from '#shared/names.js';
import { checkOffsetRanges } from './offsets.js';
import { tableToProto } from './rows.js';
import { checkEvolvedSchema } from './schema-evolution.js';
import { getTable, swapMetadata } from './table-store.js';

type H = AsyncHandlers<typeof CatalogServiceService>;

export const DEFAULT_LEASE_TTL_MS = 30_000;
export const MAX_LEASE_TTL_MS = 60 * 60 * 1000;

function snapshotFromProto(s: AddSnapshot, tableLocation: string, index: number): SnapshotJson {
  const where = `updates[${index}].add_snapshot`;
  if (!s.manifestList) throw invalidArgument(`${where}.manifest_list is required`, { field: `${where}.manifest_list` });
  if (!isWithin(tableLocation, s.manifestList)) {
    throw invalidArgument(`${where}.manifest_list ${s.manifestList} is outside the table location ${tableLocation}`, {
      field: `${where}.manifest_list`,
    });
  }
  const operation = s.operation || s.summary.operation;
  if (!['append', 'replace', 'overwrite', 'delete'].includes(operation)) {
    throw invalidArgument(`${where}.operation ${JSON.stringify(operation)} must be append, replace, overwrite or delete`, {
      field: `${where}.operation`,
    });
  }
  const snapshot: SnapshotJson = {
    'snapshot-id': s.snapshotId,
    'sequence-number': s.sequenceNumber,
    'timestamp-ms': s.timestampMs,
    'manifest-list': s.manifestList,
    summary: { ...s.summary, operation },
    'schema-id': s.schemaId,
  };
  if (s.parentSnapshotId !== undefined) snapshot['parent-snapshot-id'] = s.parentSnapshotId;
  return snapshot;
}

/** Applies the requested updates, in order, to the locked metadata. */
export function applyUpdates(meta: TableMetadata, updates: TableUpdate[], nowMs: number): TableMetadata {
  let next = meta;
  updates.forEach((u, i) => {
    const update = u.update;
    if (!update) throw invalidArgument(`updates[${i}] is empty`, { field: `updates[${i}]` });
    switch (update.$case) {
      case 'addSnapshot':
        next = addSnapshot(next, snapshotFromProto(update.value, meta.location, i), nowMs);
        break;
      case 'removeSnapshots':
        next = removeSnapshots(next, update.value.snapshotIds, nowMs);
        break;
      case 'setProperties':
        next = setProperties(next, update.value.updates, update.value.removals, nowMs);
        break;
      case 'addSchema': {
        const where = `updates[${i}].add_schema`;
        if (!update.value.schema) throw invalidArgument(`${where}.schema is required`, { field: `${where}.schema` });
        const proposed = schemaFromProto(update.value.schema, 0);
        checkEvolvedSchema(currentSchema(next), proposed, next['last-column-id'], where);
        next = addSchema(next, proposed, nowMs);
        break;
      }
    }
  });
  return next;
}

export function commitHandlers(
  deps: CatalogDeps,
): Pick<H, 'commitTable' | 'getCommittedOffsets' | 'recordJobStart' | 'acquireCommitLease' | 'lookupRowKeys'> {
  const now = deps.now ?? Date.now;
  return {
    commitTable: translated(async (req) => {
      const ref = validRef(req.ref);
      const job = req.job ? validResourceName(req.job, 'job') : '';
      if (req.offsets.length > 0 && !job) throw invalidArgument('offsets need the job they belong to', { field: 'job' });
      if (req.updates.length === 0 && req.offsets.length === 0)
        throw invalidArgument('nothing to commit: no updates and no offsets', { field: 'updates' });
      const name = `${ref.database}.${ref.table}`;
      // Offsets decide what a job never reads again: only the table's lease holder moves them
      // (epoch 0 would let any caller skip a job's data while nobody holds the lease).
      if (req.offsets.length > 0 && !(req.leaseEpoch > 0))
        throw failedPrecondition(
          `a commit that moves job ${job}'s offsets needs the commit lease of ${name}: send the lease_epoch AcquireCommitLease returned`,
          { table: name, job },
        );

      const attributes = { 'sluice.table': name, 'sluice.job': job, 'sluice.updates': req.updates.length };
      return withSpan('catalog.commit_transaction', attributes, () =>
        inTransaction(deps.pool, async (client) => {
          const row = await getTable(client, ref, true);
          const current = row.metadata['current-snapshot-id'];
          if (req.expectedSnapshotId !== current) {
            throw aborted(
              `table ${name} moved: commit built on snapshot ${req.expectedSnapshotId ?? 'none'} but the current snapshot is ${current ?? 'none'}; rebase and retry`,
              {
                table: name,
                current_snapshot_id: String(current ?? ''),
              },
            );
          }
          if (req.leaseEpoch > 0) {
            const lease = await client.query<{ epoch: number; owner: string }>(
              `SELECT epoch, owner FROM catalog.commit_leases WHERE table_id = $1`,
              [row.id],
            );
            const epoch = lease.rows[0]?.epoch;
            if (epoch !== req.leaseEpoch) {
              throw failedPrecondition(
                `fenced: commit lease epoch ${req.leaseEpoch} of ${name} is stale (current epoch ${epoch ?? 'none'}, held by ${lease.rows[0]?.owner ?? 'nobody'})`,
                {
                  table: name,
                },
              );
            }
          }
          if (job) {
            const j = await client.query<{ table_id: number }>(`SELECT table_id FROM catalog.jobs WHERE name = $1 FOR SHARE`, [job]);
            if (!j.rows[0]) throw notFound(`job ${job} does not exist`, { job });
            if (j.rows[0].table_id !== row.id) throw failedPrecondition(`job ${job} does not write to table ${name}`, { job, table: name });
          }
          if (req.offsets.length > 0) {
            const committed = await client.query<{ topic: string; partition: number; next_offset: number }>(
              `SELECT topic, partition, next_offset FROM catalog.committed_offsets WHERE job = $1 FOR UPDATE`,
              [job],
            );
            // Starts are written once and never change, so reading them needs no lock.
            const problem = checkOffsetRanges(
              job,
              req.offsets,
              committed.rows.map((r) => ({ topic: r.topic, partition: r.partition, nextOffset: r.next_offset })),
              await recordedStarts(client, job),
            );
            if (problem?.kind === 'invalid') throw invalidArgument(problem.message, { field: 'offsets' });
            if (problem) throw failedPrecondition(problem.message, { job });
          }

          let updated = row;
          if (req.updates.length > 0) {
            updated = await swapMetadata(deps, client, row, applyUpdates(row.metadata, req.updates, now()));
          }
          const snapshotId = updated.metadata['current-snapshot-id'] ?? null;
          const t = now();
          for (const r of req.offsets) {
            await client.query(
              `INSERT INTO catalog.committed_offsets (job, topic, partition, next_offset, snapshot_id, updated_at_ms)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (job, topic, partition) DO UPDATE SET next_offset = EXCLUDED.next_offset,
               snapshot_id = EXCLUDED.snapshot_id, updated_at_ms = EXCLUDED.updated_at_ms`,
              [job, r.topic, r.partition, r.endOffset, snapshotId, t],
            );
          }
          if (job && (req.offsets.length > 0 || req.updates.length > 0))
            await recordProgress(client, job, updated.metadata, req.errorCounts, req.changeCounts, t);
          if (req.rowKeys) await moveRowKeys(client, row.id, req.rowKeys);
          return { table: tableToProto(updated) };
        }),
      );
    }),

    lookupRowKeys: translated(async (req) => {
      const ref = validRef(req.ref);
      checkKeys(req.keys, 'keys');
      // Only the id and the current snapshot: the table's metadata is not needed, and a table
      // committed to every second has a large one.
      const found = await deps.pool.query<{ id: number; current_snapshot_id: number | null }>(
        `SELECT id, current_snapshot_id FROM catalog.tables WHERE database = $1 AND name = $2`,
        [ref.database, ref.table],
      );
      const row = found.rows[0];
      if (!row) throw notFound(`table ${ref.database}.${ref.table} does not exist`, { database: ref.database, table: ref.table });
      // Two lookups, each through its own index (an OR across them would scan every key of the
      // table), then each file's path and partition once.
      type Found = { key: string; pos: number; file_id: number };
      const byKey =
        req.keys.length === 0
          ? []
          : (
              await deps.pool.query<Found>(
                `SELECT k.key, k.pos, k.file_id FROM unnest($2::text[]) AS q(key)
                 JOIN catalog.row_keys k ON k.table_id = $1 AND k.key = q.key`,
                [row.id, req.keys],
              )
            ).rows;
      const inFiles =
        req.filePaths.length === 0
          ? []
          : (
              await deps.pool.query<Found>(
                `SELECT k.key, k.pos, k.file_id FROM catalog.row_files f JOIN catalog.row_keys k ON k.file_id = f.id
                 WHERE f.table_id = $1 AND f.file_path = ANY($2::text[])`,
                [row.id, req.filePaths],
              )
            ).rows;
      const byFile = new Map<number, { key: string; pos: number }[]>();
      const seen = new Set<string>();
      for (const r of [...byKey, ...inFiles]) {
        if (seen.has(r.key)) continue;
        seen.add(r.key);
        let list = byFile.get(r.file_id);
        if (!list) byFile.set(r.file_id, (list = []));
        list.push({ key: r.key, pos: r.pos });
      }
      const known = await deps.pool.query<{ id: number; file_path: string; spec_id: number; partition: unknown[] }>(
        `SELECT id, file_path, spec_id, partition FROM catalog.row_files WHERE id = ANY($1::bigint[]) ORDER BY file_path`,
        [[...byFile.keys()]],
      );
      const files: IndexedFile[] = known.rows.map((f) => ({
        filePath: f.file_path,
        specId: f.spec_id,
        partition: f.partition.map(PartitionValue.fromJSON),
      }));
      const rows: FileRows[] = known.rows.map((f) => {
        const found = byFile.get(f.id)!.sort((x, y) => x.pos - y.pos);
        return { filePath: f.file_path, keys: found.map((r) => r.key), positions: found.map((r) => r.pos) };
      });
      return { rows, files, snapshotId: row.current_snapshot_id ?? undefined };
    }),

    getCommittedOffsets: translated(async (req) => {
      const job = validResourceName(req.job, 'job');
      const exists = await deps.pool.query(`SELECT 1 FROM catalog.jobs WHERE name = $1`, [job]);
      if (exists.rowCount === 0) throw notFound(`job ${job} does not exist`, { job });
      const { rows } = await deps.pool.query<{ topic: string; partition: number; next_offset: number; snapshot_id: number | null }>(
        `SELECT topic, partition, next_offset, snapshot_id FROM catalog.committed_offsets WHERE job = $1 ORDER BY topic, partition`,
        [job],
      );
      const progress = await deps.pool.query<ProgressRow>(
        `SELECT last_snapshot_id, last_commit_at_ms, last_commit_rows, total_rows, error_counts, inserted_rows, updated_rows, deleted_rows
         FROM catalog.job_progress WHERE job = $1`,
        [job],
      );
      return {
        offsets: rows.map((r) => ({ topic: r.topic, partition: r.partition, nextOffset: r.next_offset, snapshotId: r.snapshot_id ?? 0 })),
        progress: progress.rows[0] ? progressToProto(progress.rows[0]) : undefined,
        starts: await recordedStarts(deps.pool, job),
      };
    }),

    recordJobStart: translated(async (req) => {
      const job = validResourceName(req.job, 'job');
      const starts = req.starts.map((s, i) => validStart(s, `starts[${i}]`));
      return inTransaction(deps.pool, async (client) => {
        // FOR SHARE: the job cannot be deleted (nor its source changed) while its starts are written.
        const source = await client.query<{ topic: string }>(
          `SELECT s.topic FROM catalog.jobs j JOIN catalog.sources s ON s.name = j.source WHERE j.name = $1 FOR SHARE OF j`,
          [job],
        );
        if (!source.rows[0]) throw notFound(`job ${job} does not exist`, { job });
        const topic = source.rows[0].topic;
        const t = now();
        for (const [i, s] of starts.entries()) {
          if (s.topic !== topic)
            throw invalidArgument(`starts[${i}].topic ${quotedPrefix(s.topic)} is not the topic ${topic} of job ${job}'s source`, {
              field: `starts[${i}].topic`,
            });
          // The first start given wins: every process and every restart of the job uses it.
          await client.query(
            `INSERT INTO catalog.job_starts (job, topic, partition, start_offset, search_until_offset, recorded_at_ms)
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (job, topic, partition) DO NOTHING`,
            [job, s.topic, s.partition, s.offset, s.searchUntilOffset ?? null, t],
          );
        }
        return { starts: await recordedStarts(client, job) };
      });
    }),

    acquireCommitLease: translated(async (req) => {
      const ref = validRef(req.ref);
      const owner = req.owner.trim();
      if (!owner || owner.length > 256) throw invalidArgument('owner must be 1-256 characters', { field: 'owner' });
      const address = (req.address ?? '').trim();
      if (address.length > 256) throw invalidArgument('address must be at most 256 characters', { field: 'address' });
      const ttl = req.ttlMs || DEFAULT_LEASE_TTL_MS;
      if (ttl < 0 || ttl > MAX_LEASE_TTL_MS) throw invalidArgument(`ttl_ms must be between 1 and ${MAX_LEASE_TTL_MS}`, { field: 'ttl_ms' });
      return inTransaction(deps.pool, async (client) => {
        const row = await getTable(client, ref, true);
        const t = now();
        const expiresAt = t + ttl;
        const lease = (
          await client.query<{ owner: string; address: string; epoch: number; expires_at_ms: number }>(
            `SELECT owner, address, epoch, expires_at_ms FROM catalog.commit_leases WHERE table_id = $1`,
            [row.id],
          )
        ).rows[0];
        if (lease && lease.owner !== owner && lease.expires_at_ms > t) {
          throw failedPrecondition(
            `commit lease of ${ref.database}.${ref.table} is held by ${lease.owner} until ${new Date(lease.expires_at_ms).toISOString()}`,
            {
              table: `${ref.database}.${ref.table}`,
              owner: lease.owner,
              // Where the holder takes reports: a refused coordinator forwards them there.
              address: lease.address,
            },
          );
        }
        // The holder renewing keeps its epoch; a new holder gets the next one, fencing the old.
        const epoch = lease ? (lease.owner === owner && lease.expires_at_ms > t ? lease.epoch : lease.epoch + 1) : 1;
        await client.query(
          `INSERT INTO catalog.commit_leases (table_id, owner, address, epoch, expires_at_ms) VALUES ($1, $2, $3, $4, $5)
           ON CONFLICT (table_id) DO UPDATE SET owner = EXCLUDED.owner, address = EXCLUDED.address, epoch = EXCLUDED.epoch,
             expires_at_ms = EXCLUDED.expires_at_ms`,
          [row.id, owner, address, epoch, expiresAt],
        );
        return { epoch, expiresAtMs: expiresAt };
      });
    }),
  };
}

function validStart(s: PartitionStart, where: string): PartitionStart {
  if (!s.topic) throw invalidArgument(`${where}.topic is required`, { field: `${where}.topic` });
  if (!Number.isInteger(s.partition) || s.partition < 0)
    throw invalidArgument(`${where}.partition ${s.partition} must be >= 0`, { field: `${where}.partition` });
  if (!Number.isSafeInteger(s.offset) || s.offset < 0)
    throw invalidArgument(`${where}.offset ${s.offset} of ${s.topic}/${s.partition} must be an offset >= 0`, { field: `${where}.offset` });
  const until = s.searchUntilOffset;
  if (until !== undefined && (!Number.isSafeInteger(until) || until < s.offset))
    throw invalidArgument(`${where}.search_until_offset ${until} of ${s.topic}/${s.partition} must be >= offset ${s.offset}`, {
      field: `${where}.search_until_offset`,
    });
  return s;
}

/** Every recorded start of the job, by topic and partition. */
async function recordedStarts(client: Pick<PoolClient, 'query'>, job: string): Promise<PartitionStart[]> {
  const { rows } = await client.query<{ topic: string; partition: number; start_offset: number; search_until_offset: number | null }>(
    `SELECT topic, partition, start_offset, search_until_offset FROM catalog.job_starts WHERE job = $1 ORDER BY topic, partition`,
    [job],
  );
  return rows.map((r) => ({
    topic: r.topic,
    partition: r.partition,
    offset: r.start_offset,
    searchUntilOffset: r.search_until_offset ?? undefined,
  }));
}

interface ProgressRow {
  last_snapshot_id: number | null;
  last_commit_at_ms: number;
  last_commit_rows: number;
  total_rows: number;
  error_counts: Record<string, number>;
  inserted_rows: number;
  updated_rows: number;
  deleted_rows: number;
}

function progressToProto(r: ProgressRow): JobProgress {
  return {
    lastSnapshotId: r.last_snapshot_id ?? 0,
    lastCommitAtMs: Number(r.last_commit_at_ms),
    lastCommitRows: Number(r.last_commit_rows),
    totalRows: Number(r.total_rows),
    changes: { inserted: Number(r.inserted_rows), updated: Number(r.updated_rows), deleted: Number(r.deleted_rows) },
    errorCounts: Object.entries(r.error_counts)
      .map(([reason, count]) => ({ reason, count: Number(count) }))
      .sort((a, b) => a.reason.localeCompare(b.reason)),
  };
}

/** A key is the JSON text of its identifier values; an empty one names nothing. */
function checkKeys(keys: readonly string[], field: string): void {
  const i = keys.findIndex((k) => k.length === 0 || k.length > MAX_ROW_KEY_LENGTH);
  if (i >= 0) throw invalidArgument(`${field}[${i}] must be 1-${MAX_ROW_KEY_LENGTH} characters`, { field: `${field}[${i}]` });
}

/** Longest key text kept in the row index (PostgreSQL's btree entries stay well under their limit). */
const MAX_ROW_KEY_LENGTH = 2048;

/**
 * A keyed table's row index after a commit: new files first, then removed keys, then the new
 * positions, in bulk (one statement each, whatever the number of keys). Every file an upsert
 * points into must be known by now: new with this commit, or indexed before.
 */
async function moveRowKeys(client: PoolClient, tableId: number, changes: RowKeyChanges): Promise<void> {
  checkKeys(changes.deletes, 'row_keys.deletes');
  changes.upserts.forEach((u, i) => {
    checkKeys(u.keys, `row_keys.upserts[${i}].keys`);
    if (u.positions.length !== u.keys.length)
      throw invalidArgument(`row_keys.upserts[${i}] has ${u.keys.length} keys and ${u.positions.length} positions`, {
        field: `row_keys.upserts[${i}]`,
      });
  });
  if (changes.files.length > 0)
    await client.query(
      `INSERT INTO catalog.row_files (table_id, file_path, spec_id, partition)
       SELECT $1, * FROM unnest($2::text[], $3::int[], $4::jsonb[]) ON CONFLICT DO NOTHING`,
      [
        tableId,
        changes.files.map((f) => f.filePath),
        changes.files.map((f) => f.specId),
        changes.files.map((f) => JSON.stringify(f.partition.map((p) => PartitionValue.toJSON(p)))),
      ],
    );
  if (changes.deletes.length > 0)
    await client.query(`DELETE FROM catalog.row_keys WHERE table_id = $1 AND key = ANY($2::text[])`, [tableId, changes.deletes]);
  if (changes.upserts.length > 0) {
    const paths = changes.upserts.map((u) => u.filePath);
    const known = await client.query<{ id: number; file_path: string }>(
      `SELECT id, file_path FROM catalog.row_files WHERE table_id = $1 AND file_path = ANY($2::text[])`,
      [tableId, paths],
    );
    const ids = new Map(known.rows.map((r) => [r.file_path, r.id]));
    const missing = paths.find((p) => !ids.has(p));
    if (missing !== undefined)
      throw invalidArgument(`row_keys.upserts names data file ${missing}, which is neither new in row_keys.files nor indexed`, {
        field: 'row_keys.upserts',
      });
    await client.query(
      `INSERT INTO catalog.row_keys (table_id, key, file_id, pos)
       SELECT $1, * FROM unnest($2::text[], $3::bigint[], $4::bigint[])
       ON CONFLICT (table_id, key) DO UPDATE SET file_id = EXCLUDED.file_id, pos = EXCLUDED.pos`,
      [
        tableId,
        changes.upserts.flatMap((u) => u.keys),
        changes.upserts.flatMap((u) => u.keys.map(() => ids.get(u.filePath))),
        changes.upserts.flatMap((u) => u.positions),
      ],
    );
  }
  if (changes.droppedFiles.length > 0)
    await client.query(
      `DELETE FROM catalog.row_files f WHERE f.table_id = $1 AND f.file_path = ANY($2::text[])
       AND NOT EXISTS (SELECT 1 FROM catalog.row_keys k WHERE k.file_id = f.id)`,
      [tableId, changes.droppedFiles],
    );
}

/**
 * A job's commit, in its transaction: the last commit (snapshot, time, rows it added) and the
 * records refused among its offsets, added to the job's counts by reason, and what its row changes did.
 */
async function recordProgress(
  client: PoolClient,
  job: string,
  metadata: TableMetadata,
  errorCounts: readonly ErrorCount[],
  changes: ChangeCounts | undefined,
  atMs: number,
): Promise<void> {
  const snapshotId = metadata['current-snapshot-id'] ?? null;
  const snapshot = metadata.snapshots?.find((s) => s['snapshot-id'] === snapshotId);
  const rows = Number(snapshot?.summary?.['added-records'] ?? 0);
  const add: Record<string, number> = {};
  for (const { reason, count } of errorCounts) {
    if (!Number.isSafeInteger(count) || count < 0)
      throw invalidArgument(`error_counts: count ${count} of ${reason} is not a count`, { field: 'error_counts' });
    add[reason] = (add[reason] ?? 0) + count;
  }
  const counts = [changes?.inserted ?? 0, changes?.updated ?? 0, changes?.deleted ?? 0];
  if (!counts.every((n) => Number.isSafeInteger(n) && n >= 0))
    throw invalidArgument(`change_counts ${counts.join(', ')} are not counts`, { field: 'change_counts' });
  // The counts merge key by key: existing reasons add up, new ones join.
  await client.query(
    `INSERT INTO catalog.job_progress AS p (job, last_snapshot_id, last_commit_at_ms, last_commit_rows, total_rows, error_counts,
       inserted_rows, updated_rows, deleted_rows)
     VALUES ($1, $2, $3, $4, $4, $5::jsonb, $6, $7, $8)
     ON CONFLICT (job) DO UPDATE SET last_snapshot_id = EXCLUDED.last_snapshot_id,
       last_commit_at_ms = EXCLUDED.last_commit_at_ms, last_commit_rows = EXCLUDED.last_commit_rows,
       total_rows = p.total_rows + EXCLUDED.last_commit_rows,
       inserted_rows = p.inserted_rows + EXCLUDED.inserted_rows, updated_rows = p.updated_rows + EXCLUDED.updated_rows,
       deleted_rows = p.deleted_rows + EXCLUDED.deleted_rows,
       error_counts = (
         SELECT COALESCE(jsonb_object_agg(k, COALESCE((p.error_counts ->> k)::bigint, 0) + COALESCE((EXCLUDED.error_counts ->> k)::bigint, 0)), '{}')
         FROM (SELECT jsonb_object_keys(p.error_counts) AS k UNION SELECT jsonb_object_keys(EXCLUDED.error_counts)) keys
       )`,
    [job, snapshotId, atMs, rows, JSON.stringify(add), ...counts],
  );
}
