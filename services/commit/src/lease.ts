/**
 * The commit lease of one table (DESIGN.md, "Fencing"). Acquired from the catalog with a TTL
 * and renewed every third of it, so one missed renewal never loses it. Locally the lease is
 * trusted only until `acquiredAt + ttl - margin` by this process's clock; the catalog checks
 * the epoch again inside the commit transaction, which is what actually stops a coordinator
 * that paused past its lease.
 */
import type { TableRef } from '#shared/gen/sluice/v1/types.js';
import { type Metadata, status } from '@grpc/grpc-js';
import { grpcCode, grpcMessage, notFound } from '#shared/errors.js';
import type { Logger } from '#shared/logger.js';
import { tableName, type CatalogClient } from './catalog.js';
import { CommitError } from './errors.js';

export interface LeaseOptions {
  catalog: CatalogClient;
  ref: TableRef;
  owner: string;
  ttlMs: number;
  /** Where this process takes reports, recorded with the lease so other replicas forward to it. */
  address?: () => string | undefined;
  logger: Logger;
  now?: () => number;
}

export class LeaseKeeper {
  private epochValue: number | undefined;
  private validUntil = 0;
  private timer: NodeJS.Timeout | undefined;
  private acquiring: Promise<number> | undefined;
  private stopped = false;
  private holder: string | undefined;
  private readonly now: () => number;

  constructor(private readonly options: LeaseOptions) {
    this.now = options.now ?? Date.now;
  }

  /** The epoch if the lease is held and not about to expire, else undefined. */
  get epoch(): number | undefined {
    return this.epochValue !== undefined && this.now() < this.validUntil ? this.epochValue : undefined;
  }

  /**
   * Where the coordinator that holds the lease takes reports, as the catalog said when it last
   * refused it to us; undefined while we hold it, before any refusal, or when the holder
   * recorded no address.
   */
  get holderAddress(): string | undefined {
    return this.holder;
  }

  /** Returns the held epoch, acquiring the lease first if needed; throws `fenced` when another owner holds it. */
  async ensure(): Promise<number> {
    const held = this.epoch;
    if (held !== undefined) return held;
    this.acquiring ??= this.acquire().finally(() => (this.acquiring = undefined));
    return this.acquiring;
  }

  /** The catalog refused a commit with our epoch: someone else took over. */
  lost(reason: string): void {
    if (this.epochValue !== undefined)
      this.options.logger.warn({ table: tableName(this.options.ref), epoch: this.epochValue, reason }, 'commit lease lost');
    this.epochValue = undefined;
    this.validUntil = 0;
    this.clearTimer();
  }

  stop(): void {
    this.stopped = true;
    this.clearTimer();
  }

  private async acquire(): Promise<number> {
    if (this.stopped) throw new CommitError('fenced', `coordinator for ${tableName(this.options.ref)} is stopping`);
    const { catalog, ref, owner, ttlMs } = this.options;
    const startedAt = this.now();
    let response: Awaited<ReturnType<typeof catalog.acquireCommitLease>>;
    try {
      response = await catalog.acquireCommitLease({ ref, owner, ttlMs, address: this.options.address?.() }, { retries: 1 });
    } catch (err) {
      this.epochValue = undefined;
      this.validUntil = 0;
      this.holder = holderAddressOf(err);
      if (grpcCode(err) === status.NOT_FOUND)
        throw notFound(`table ${tableName(ref)} does not exist in the catalog`, { table: tableName(ref) });
      throw new CommitError('fenced', `commit lease of ${tableName(ref)} not available to ${owner}: ${grpcMessage(err)}`, { cause: err });
    }
    const previous = this.epochValue;
    this.epochValue = response.epoch;
    this.holder = undefined;
    // Trust the lease a little less long than granted: the call itself took time, and
    // clocks drift. A renewal runs long before this matters.
    this.validUntil = startedAt + ttlMs - Math.min(1000, Math.floor(ttlMs / 10));
    if (previous !== response.epoch) this.options.logger.info({ table: tableName(ref), epoch: response.epoch }, 'commit lease acquired');
    this.scheduleRenewal();
    return response.epoch;
  }

  private scheduleRenewal(): void {
    this.clearTimer();
    if (this.stopped) return;
    this.timer = setTimeout(
      () => {
        this.timer = undefined;
        this.acquiring ??= this.acquire().finally(() => (this.acquiring = undefined));
        this.acquiring.catch((err) =>
          this.options.logger.warn({ table: tableName(this.options.ref), err: (err as Error).message }, 'commit lease renewal failed'),
        );
      },
      Math.max(50, Math.floor(this.options.ttlMs / 3)),
    );
    this.timer.unref();
  }

  private clearTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }
}

/** The holder's address from a refusal of the lease (the catalog's `address` detail), if any. */
function holderAddressOf(err: unknown): string | undefined {
  if (grpcCode(err) !== status.FAILED_PRECONDITION) return undefined;
  const metadata = (err as { metadata?: Metadata }).metadata;
  const value = metadata?.get('sluice-address')[0];
  return typeof value === 'string' && value !== '' ? value : undefined;
}
