/**
 * Snapshot expiry by the table's retention properties (Iceberg's names and defaults):
 * `history.expire.max-snapshot-age-ms` (5 days) and `history.expire.min-snapshots-to-keep`
 * (1). The current snapshot and its most recent ancestors up to the minimum are always
 * kept, as is every snapshot a branch or tag points at. Files only the expired snapshots
 * referenced are left to orphan cleanup, which deletes them after its safety margin.
 */
import type { TableRef } from '#shared/gen/sluice/v1/types.js';
import type { TableMetadata } from '#shared/iceberg/index.js';
import { commitWithRebase } from '../catalog.js';
import type { CoordinatorContext } from '../context.js';
import { CommitError } from '../errors.js';

export const MAX_SNAPSHOT_AGE_PROPERTY = 'history.expire.max-snapshot-age-ms';
export const MIN_SNAPSHOTS_TO_KEEP_PROPERTY = 'history.expire.min-snapshots-to-keep';
export const DEFAULT_MAX_SNAPSHOT_AGE_MS = 5 * 24 * 3600 * 1000;
export const DEFAULT_MIN_SNAPSHOTS_TO_KEEP = 1;

export interface RetentionPolicy {
  maxSnapshotAgeMs: number;
  minSnapshotsToKeep: number;
}

/** The policy from table properties; a malformed value is an error naming the property. */
export function retentionPolicy(properties: Record<string, string>): RetentionPolicy {
  const read = (name: string, def: number, min: number) => {
    const raw = properties[name];
    if (raw === undefined || raw.trim() === '') return def;
    if (!/^\d+$/.test(raw.trim()) || Number(raw) < min) {
      throw new CommitError('invalid-report', `table property ${name}=${JSON.stringify(raw)} is not an integer >= ${min}`);
    }
    return Number(raw);
  };
  return {
    maxSnapshotAgeMs: read(MAX_SNAPSHOT_AGE_PROPERTY, DEFAULT_MAX_SNAPSHOT_AGE_MS, 0),
    minSnapshotsToKeep: read(MIN_SNAPSHOTS_TO_KEEP_PROPERTY, DEFAULT_MIN_SNAPSHOTS_TO_KEEP, 1),
  };
}

/** Ids of the snapshots to expire now, oldest first. Pure. */
export function selectExpired(meta: TableMetadata, nowMs: number, policy: RetentionPolicy): number[] {
  const keep = new Set<number>();
  for (const ref of Object.values(meta.refs)) keep.add(ref['snapshot-id']);
  // The newest ancestors of the current snapshot, the current one included.
  const byId = new Map(meta.snapshots.map((s) => [s['snapshot-id'], s]));
  let cursor = meta['current-snapshot-id'];
  for (let kept = 0; cursor !== undefined && kept < policy.minSnapshotsToKeep; kept++) {
    keep.add(cursor);
    cursor = byId.get(cursor)?.['parent-snapshot-id'];
  }
  const cutoff = nowMs - policy.maxSnapshotAgeMs;
  return meta.snapshots
    .filter((s) => !keep.has(s['snapshot-id']) && s['timestamp-ms'] < cutoff)
    .sort((a, b) => a['timestamp-ms'] - b['timestamp-ms'])
    .map((s) => s['snapshot-id']);
}

/** Expires what the policy says; returns the removed snapshot ids (none: no commit). */
export async function expireSnapshots(ctx: CoordinatorContext, ref: TableRef, leaseEpoch: number, nowMs: number): Promise<number[]> {
  let expired: number[] = [];
  try {
    await commitWithRebase({
      catalog: ctx.catalog,
      storage: ctx.storage,
      ref,
      async build({ metadata }) {
        expired = selectExpired(metadata, nowMs, retentionPolicy(metadata.properties));
        if (expired.length === 0) throw new NothingToDo();
        return { updates: [{ update: { $case: 'removeSnapshots', value: { snapshotIds: expired } } }], job: '', offsets: [], leaseEpoch };
      },
    });
  } catch (err) {
    if (err instanceof NothingToDo) return [];
    throw err;
  }
  return expired;
}

/** Thrown from a commit builder to stop without committing. */
export class NothingToDo extends Error {}
