import { connect, headers as natsHeaders, type MsgHdrs, type NatsConnection, type Subscription } from 'nats';
import { context, type Context } from '@opentelemetry/api';
import { extractContext, injectContext, type HeaderCarrier } from './tracing.js';

export type { NatsConnection, Subscription };

export async function connectNats(url: string, name: string): Promise<NatsConnection> {
  return connect({
    servers: url,
    name,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 500,
    timeout: 5000,
  });
}

function headerCarrier(h: MsgHdrs): HeaderCarrier {
  return {
    get: (key) => (h.has(key) ? h.get(key) : undefined),
    set: (key, value) => h.set(key, value),
    keys: () => h.keys(),
  };
}

/** Publishes bytes with the active trace context in the message headers. */
export function publish(nc: NatsConnection, subject: string, payload: Uint8Array): void {
  const h = natsHeaders();
  injectContext(headerCarrier(h));
  nc.publish(subject, payload, { headers: h });
}

/**
 * Subscribes and calls handler for each message inside the publisher's trace context. Handler
 * errors go to onError; one bad message never ends the subscription.
 */
export function subscribe(
  nc: NatsConnection,
  subject: string,
  handler: (payload: Uint8Array, subject: string) => Promise<void> | void,
  onError: (err: unknown, subject: string) => void,
  options: { queue?: string } = {},
): Subscription {
  const sub = nc.subscribe(subject, { queue: options.queue });
  void (async () => {
    for await (const msg of sub) {
      const parent: Context = msg.headers ? extractContext(headerCarrier(msg.headers)) : context.active();
      try {
        await context.with(parent, () => handler(msg.data, msg.subject));
      } catch (err) {
        onError(err, msg.subject);
      }
    }
  })();
  return sub;
}
