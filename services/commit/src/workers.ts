/**
 * The live workers of one (table, job), learnt from WorkerHeartbeats. A worker is live
 * until its last beat is older than the TTL (a few beats) or it says goodbye (alive=false).
 * Pure apart from the clock, which callers pass in.
 */
interface WorkerState {
  lastSeenMs: number;
  bufferedBytes: number;
}

export class WorkerRegistry {
  private readonly workers = new Map<string, WorkerState>();

  constructor(private readonly ttlMs: number) {}

  /** Records a beat; returns true when the worker was not known before. */
  beat(workerId: string, nowMs: number, bufferedBytes: number, alive: boolean): boolean {
    if (!alive) {
      this.workers.delete(workerId);
      return false;
    }
    const known = this.workers.get(workerId);
    if (known) {
      known.lastSeenMs = nowMs;
      known.bufferedBytes = bufferedBytes;
      return false;
    }
    this.workers.set(workerId, { lastSeenMs: nowMs, bufferedBytes });
    return true;
  }

  /** A report is a sign of life too; its buffered bytes are flushed by definition. */
  sawReport(workerId: string, nowMs: number): void {
    const known = this.workers.get(workerId);
    if (known) known.lastSeenMs = nowMs;
    else this.workers.set(workerId, { lastSeenMs: nowMs, bufferedBytes: 0 });
  }

  /** Forgets workers whose beats stopped; returns their ids. */
  expire(nowMs: number): string[] {
    const gone: string[] = [];
    for (const [id, w] of this.workers) {
      if (nowMs - w.lastSeenMs > this.ttlMs) {
        this.workers.delete(id);
        gone.push(id);
      }
    }
    return gone;
  }

  live(nowMs: number): string[] {
    this.expire(nowMs);
    return [...this.workers.keys()].sort();
  }

  has(workerId: string): boolean {
    return this.workers.has(workerId);
  }

  /** Bytes held in open files across live workers (for the buffer-size flush trigger). */
  bufferedBytes(): number {
    let total = 0;
    for (const w of this.workers.values()) total += w.bufferedBytes;
    return total;
  }
}
