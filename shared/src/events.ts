import type { TableRef } from './gen/sluice/v1/types.js';

/**
 * NATS subjects of the events in proto/sluice/v1/events.proto. Database, table and job names
 * are validated identifiers (no dots, no wildcards), so they are safe subject tokens.
 */
export const subjects = {
  flush: (t: TableRef) => `sluice.flush.${t.database}.${t.table}`,
  committed: (t: TableRef) => `sluice.committed.${t.database}.${t.table}`,
  allCommitted: 'sluice.committed.>',
  workers: (t: TableRef) => `sluice.workers.${t.database}.${t.table}`,
  allWorkers: 'sluice.workers.>',
  rewind: (job: string) => `sluice.rewind.${job}`,
  jobChanged: (job: string) => `sluice.jobs.${job}`,
  allJobsChanged: 'sluice.jobs.>',
} as const;
