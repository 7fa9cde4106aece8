/**
 * A fix for kafkajs 2.2.4's request queue, applied once when ingestion loads kafkajs.
 *
 * Each kafkajs connection has a RequestQueue whose scheduleCheckPendingRequests() arms a timer
 * even when no request waits, with a negative delay (it is `throttledUntil - now`, and
 * throttledUntil starts at -1), so the timer fires at once and arms itself again: about a
 * thousand wake-ups a second per connection for the life of the client
 * (tulios/kafkajs#1556, fix proposed in #1667, not released). In the pipeline bench's mesh an
 * idle job cost ingestion 28 ms of CPU a second on its main thread this way, and the loop runs
 * under load too.
 *
 * The replacement arms the timer only when requests wait, as the original does then: for as
 * long as the broker's throttle lasts, else the queue's own 10 ms. Nothing else needs it: a request that cannot go
 * at once is queued by push(), which schedules the check, and every answer or timeout checks
 * the queue again.
 *
 * The class is kafkajs's internal module; if a kafkajs version moves it or drops the method,
 * nothing is patched (the fix is only worth having for the version that loops).
 */
import { createRequire } from 'node:module';

/** The queue's own retry interval while requests wait (CHECK_PENDING_REQUESTS_INTERVAL in kafkajs). */
const CHECK_PENDING_MS = 10;

interface RequestQueueInternals {
  pending: unknown[];
  throttledUntil: number;
  throttleCheckTimeoutId: NodeJS.Timeout | null;
  checkPendingRequests(): void;
  scheduleCheckPendingRequests(): void;
}

/** How long a queue with waiting requests waits before looking again; null: no timer (none wait). */
export function pendingCheckDelay(pending: number, throttledUntil: number, now: number): number | null {
  if (pending === 0) return null;
  const throttled = throttledUntil - now;
  return throttled > 0 ? throttled : CHECK_PENDING_MS;
}

function scheduleCheckPendingRequests(this: RequestQueueInternals): void {
  if (this.throttleCheckTimeoutId) return;
  const delay = pendingCheckDelay(this.pending.length, this.throttledUntil, Date.now());
  if (delay === null) return;
  this.throttleCheckTimeoutId = setTimeout(() => {
    this.throttleCheckTimeoutId = null;
    this.checkPendingRequests();
  }, delay);
}

/** Whether the patch is in place (false when this kafkajs has no such queue). */
export const requestQueuePatched: boolean = (() => {
  try {
    const require = createRequire(import.meta.url);
    const RequestQueue = require('kafkajs/src/network/requestQueue/index.js') as { prototype: Partial<RequestQueueInternals> };
    if (typeof RequestQueue?.prototype?.scheduleCheckPendingRequests !== 'function') return false;
    RequestQueue.prototype.scheduleCheckPendingRequests = scheduleCheckPendingRequests;
    return true;
  } catch {
    return false;
  }
})();
