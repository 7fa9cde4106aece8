import type { Logger } from '#shared/logger.js';
import type { Storage } from '#shared/storage/index.js';
import type { CatalogClient } from './catalog.js';
import type { CommitPeers } from './peers.js';

/** Timing knobs of the coordinator (from COMMIT_* settings; tests shorten them). */
export interface CoordinatorSettings {
  defaultIntervalMs: number;
  flushTimeoutMs: number;
  workerTtlMs: number;
  leaseTtlMs: number;
  maintenanceIntervalMs: number;
  orphanMinAgeMs: number;
}

/** What every part of the coordinator shares: the catalog, storage, logging, the clock. */
export interface CoordinatorContext {
  readonly catalog: CatalogClient;
  readonly storage: Storage;
  readonly logger: Logger;
  readonly settings: CoordinatorSettings;
  /** This process as a lease owner: unique per process start. */
  readonly owner: string;
  /**
   * Where this process takes reports (host:port), recorded with each lease it holds; unset in
   * a process other replicas cannot reach, which then never receives forwarded reports.
   */
  readonly advertisedAddress?: () => string | undefined;
  /** The other commit replicas, to forward to a table's lease holder; none: never forward. */
  readonly peers?: CommitPeers;
  now(): number;
}
