import { setTimeout as sleep } from 'node:timers/promises';

export interface WaitOptions {
  /** How long to keep polling before failing; generous by default because CI machines are loaded. */
  timeoutMs?: number;
  /** Pause between polls. */
  intervalMs?: number;
}

/**
 * The one way tests wait: polls `condition` until it returns something truthy and resolves with it.
 * `what` names the awaited thing, so a timeout reads "timed out after 30000 ms waiting for <what>".
 * An error thrown by the condition fails the wait at once (a crashed service, a failed job): a
 * condition that expects transient errors catches them itself.
 */
export async function waitFor<T>(
  what: string,
  condition: () => Promise<T | undefined | null | false> | T | undefined | null | false,
  { timeoutMs = 30_000, intervalMs = 50 }: WaitOptions = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await condition();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(intervalMs);
  }
}
