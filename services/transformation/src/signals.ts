/**
 * The NATS side of a stream: heartbeats out (so the coordinator knows which workers hold
 * data for a table and how much) and flush events in (one subscription per table, shared
 * by every stream of that table in this process).
 */
import { FlushEvent, WorkerHeartbeat } from '#shared/gen/sluice/v1/events.js';
import type { TableRef } from '#shared/gen/sluice/v1/types.js';
import { subjects } from '#shared/events.js';
import type { Logger } from '#shared/logger.js';
import { publish, subscribe, type NatsConnection, type Subscription } from '#shared/nats.js';

export interface HeartbeatSource {
  readonly table: TableRef;
  readonly job: string;
  readonly workerId: string;
  /** Bytes held in the stream's open files for the table. */
  bufferedBytes(): number;
}

/** Beats at once, then every intervalMs, until stop(), which sends the last beat (alive=false). */
export class Heartbeat {
  private readonly timer: NodeJS.Timeout;
  private stopped = false;

  constructor(
    private readonly nats: NatsConnection,
    private readonly source: HeartbeatSource,
    intervalMs: number,
  ) {
    this.beat(true);
    this.timer = setInterval(() => this.beat(true), intervalMs);
    this.timer.unref();
  }

  private beat(alive: boolean): void {
    const s = this.source;
    const hb: WorkerHeartbeat = {
      table: s.table,
      job: s.job,
      workerId: s.workerId,
      sentAtMs: Date.now(),
      bufferedBytes: s.bufferedBytes(),
      alive,
    };
    // A closed connection (shutdown) only loses a beat; the coordinator's TTL covers it.
    try {
      publish(this.nats, subjects.workers(s.table), WorkerHeartbeat.encode(hb).finish());
    } catch {
      /* see above */
    }
  }

  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    clearInterval(this.timer);
    this.beat(false);
  }
}

export interface FlushListener {
  readonly job: string;
  onFlush(event: FlushEvent): void;
}

const tableKey = (t: TableRef) => `${t.database}.${t.table}`;

/** One NATS subscription per table with open streams; events go to that table's streams. */
export class FlushRouter {
  private readonly tables = new Map<string, { sub: Subscription; listeners: Set<FlushListener> }>();

  constructor(
    private readonly nats: NatsConnection,
    private readonly logger: Logger,
  ) {}

  /** Starts delivering the table's flush events to the listener; returns the unsubscribe. */
  add(table: TableRef, listener: FlushListener): () => void {
    const key = tableKey(table);
    let entry = this.tables.get(key);
    if (!entry) {
      const listeners = new Set<FlushListener>();
      const sub = subscribe(
        this.nats,
        subjects.flush(table),
        (payload) => {
          const event = FlushEvent.decode(payload);
          // A flush names its job; an event without one is for every job of the table.
          for (const l of listeners) if (!event.job || event.job === l.job) l.onFlush(event);
        },
        (err) => this.logger.warn({ table: key, err: (err as Error).message }, 'bad flush event ignored'),
      );
      entry = { sub, listeners };
      this.tables.set(key, entry);
    }
    entry.listeners.add(listener);
    return () => {
      const e = this.tables.get(key);
      if (!e) return;
      e.listeners.delete(listener);
      if (e.listeners.size === 0) {
        e.sub.unsubscribe();
        this.tables.delete(key);
      }
    };
  }

  /** Resolves once NATS has registered every subscription (so a flush published next is seen). */
  async ready(): Promise<void> {
    await this.nats.flush();
  }
}
