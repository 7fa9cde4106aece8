/**
 * The coordinator's outgoing NATS events (proto/sluice/v1/events.proto). Publishing is fire
 * and forget by design: every event is a signal whose loss costs at most one round (state
 * lives in PostgreSQL), so there is no control topic to reset or replay.
 */
import { CommittedEvent, FlushEvent, RewindEvent } from '#shared/gen/sluice/v1/events.js';
import { subjects } from '#shared/events.js';
import { publish, type NatsConnection } from '#shared/nats.js';

export interface Announcer {
  flush(event: FlushEvent): void;
  committed(event: CommittedEvent): void;
  rewind(event: RewindEvent): void;
}

export function natsAnnouncer(nc: NatsConnection): Announcer {
  return {
    flush: (e) => publish(nc, subjects.flush(e.table!), FlushEvent.encode(e).finish()),
    committed: (e) => publish(nc, subjects.committed(e.table!), CommittedEvent.encode(e).finish()),
    rewind: (e) => publish(nc, subjects.rewind(e.job), RewindEvent.encode(e).finish()),
  };
}
