/** Test-only misbehaviour the broker can be told to show. */
export interface Faults {
  /** Closes every open client connection (the listener stays up). */
  dropAllConnections(): void;
  /** Holds every response this long before writing it; 0 turns the delay off. */
  setResponseDelay(ms: number): void;
  /** Answers the next `count` requests of an API with errorCode in every error field. */
  failNext(apiKey: number, count: number, errorCode: number): void;
  /** Removes delays and pending failures. */
  clear(): void;
}

export class FaultState {
  responseDelayMs = 0;
  private readonly failures = new Map<number, { remaining: number; errorCode: number }>();

  /** Arguments are validated by the broker's public API. */
  failNext(apiKey: number, count: number, errorCode: number): void {
    if (count === 0) this.failures.delete(apiKey);
    else this.failures.set(apiKey, { remaining: count, errorCode });
  }

  /** The error code to inject for this request, consuming one pending failure. */
  takeFailure(apiKey: number): number | null {
    const f = this.failures.get(apiKey);
    if (!f) return null;
    if (--f.remaining === 0) this.failures.delete(apiKey);
    return f.errorCode;
  }

  clear(): void {
    this.responseDelayMs = 0;
    this.failures.clear();
  }
}
