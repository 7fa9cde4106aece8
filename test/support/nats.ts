/** The NATS server every test talks to (JetStream on the default port unless NATS_URL says otherwise). */
export const NATS_URL = process.env.NATS_URL ?? 'nats://127.0.0.1:4222';
