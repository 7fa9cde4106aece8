/**
 * One maintenance pass over a table: expire snapshots, compact one partition, then remove
 * orphans (last, so files freed by the expiry are collected once past the margin).
 */
import type { TableRef } from '#shared/gen/sluice/v1/types.js';
import type { CoordinatorContext } from '../context.js';
import { compactTable } from './compact.js';
import { expireSnapshots } from './expire.js';
import { removeOrphans } from './orphans.js';

export { compactTable, pickCompaction, compactionPolicy } from './compact.js';
export { expireSnapshots, selectExpired, retentionPolicy } from './expire.js';
export { removeOrphans, selectOrphans } from './orphans.js';

export interface MaintenanceReport {
  expiredSnapshots: number;
  compactedFiles: number;
  orphansDeleted: number;
}

export async function runMaintenance(input: {
  ctx: CoordinatorContext;
  ref: TableRef;
  leaseEpoch: number;
  nowMs: number;
  pendingFiles: ReadonlySet<string>;
  onCommitted(snapshotId: number, atMs: number): void;
}): Promise<MaintenanceReport> {
  const { ctx, ref, leaseEpoch, nowMs } = input;
  const expired = await expireSnapshots(ctx, ref, leaseEpoch, nowMs);
  const compaction = await compactTable(ctx, ref, leaseEpoch);
  if (compaction) input.onCommitted(compaction.snapshotId, ctx.now());
  const orphans = await removeOrphans(ctx, ref, { nowMs, pendingFiles: input.pendingFiles });
  return { expiredSnapshots: expired.length, compactedFiles: compaction?.replaced.length ?? 0, orphansDeleted: orphans.deleted.length };
}
