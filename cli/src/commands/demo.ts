/**
 * `sluice up [--demo]` — `npm start` is `sluice up --demo`: the mesh, the embedded dev
 * broker, a demo topic with a steady trickle of sample orders, and a job that lands them in
 * `demo.orders`, so a newcomer sees data arrive with one command.
 */
import { Kafka, logLevel, type Producer } from 'kafkajs';
import { grpcMessage } from '#shared/errors.js';
import { CliContext } from '../context.js';
import type { Output } from '../output.js';
import { planJob } from '../spec.js';
import { createFromSpec } from './job.js';
import { startMesh } from './up.js';

export const DEMO_TOPIC = 'demo-orders';
const DEMO_JOB = 'demo-orders';

export const DEMO_SPEC = {
  name: DEMO_JOB,
  source: { name: 'demo-orders', topic: DEMO_TOPIC, format: 'JSON', mode: 'VALUE', startFrom: 'earliest' },
  table: {
    database: 'demo',
    name: 'orders',
    columns: [
      { name: 'order_id', type: 'long', required: true },
      { name: 'status', type: 'string' },
      { name: 'amount', type: 'decimal(10,2)' },
      { name: 'customer_id', type: 'long' },
      { name: 'customer_country', type: 'string' },
      { name: 'items', type: 'string' },
      { name: 'created_at', type: 'timestamptz' },
    ],
    partitionBy: { field: '__timestamp__', timeZone: 'UTC', expression: '$[yyyymmddhh24]' },
    // The table outlives the mesh (the catalog keeps it): a later `npm start` writes on into it.
    ifExists: 'use',
  },
  // Level 2: customer.id and customer.country become customer_id and customer_country.
  mapping: { flattenLevel: 2 },
  commit: { intervalMs: 5000 },
  errors: { policy: 'skip' },
};

const COUNTRIES = ['NL', 'DE', 'FR', 'CN', 'US', 'BR'];
const STATUSES = ['created', 'paid', 'shipped'];

export function demoOrder(n: number, now = Date.now()) {
  return {
    order_id: n,
    status: STATUSES[n % STATUSES.length],
    amount: Number(((n * 7.31) % 500).toFixed(2)),
    customer: { id: 1000 + (n % 97), country: COUNTRIES[n % COUNTRIES.length] },
    items: [{ sku: `SKU-${n % 13}`, qty: 1 + (n % 3) }],
    created_at: new Date(now).toISOString(),
  };
}

async function startTrickle(brokers: string[], out: Output): Promise<Producer> {
  const kafka = new Kafka({ clientId: 'sluice-demo', brokers, logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic: DEMO_TOPIC, numPartitions: 3 }] });
  const existing = await admin.fetchTopicOffsets(DEMO_TOPIC);
  await admin.disconnect();
  let next = existing.reduce((n, p) => n + Number(p.high), 0);
  const producer = kafka.producer({ allowAutoTopicCreation: false });
  await producer.connect();
  const timer = setInterval(() => {
    const messages = Array.from({ length: 5 }, () => {
      const order = demoOrder(next++);
      return { key: String(order.customer.id), value: JSON.stringify(order) };
    });
    producer.send({ topic: DEMO_TOPIC, messages }).catch((err) => out.note(`demo producer: ${(err as Error).message}`));
  }, 250);
  producer.on(producer.events.DISCONNECT, () => clearInterval(timer));
  return producer;
}

export async function upCommand(out: Output, demo: boolean): Promise<number> {
  const mesh = await startMesh(out, process.env, { jsonLogs: out.json });
  if (demo) {
    let producer: Producer | undefined;
    try {
      producer = await startTrickle(mesh.brokers, out);
      const ctx = new CliContext(out, { ...process.env, KAFKA_BROKERS: mesh.brokers.join(',') });
      const plan = planJob(DEMO_SPEC, { warehouse: '', brokers: mesh.brokers });
      const { jobs } = await ctx.catalog().listJobs({});
      if (!jobs.some((j) => j.name === DEMO_JOB)) await createFromSpec(ctx, plan);
      await ctx.ingestion().startJob({ job: DEMO_JOB });
      ctx.close();
      out.note(
        [
          '',
          `Demo running: ~20 orders/s flow from topic ${DEMO_TOPIC} into the Iceberg table demo.orders, committed every 5 s.`,
          'In another terminal, run:',
          '',
          `  npx sluice query "SELECT customer_country, count(*) AS orders, sum(amount) AS revenue FROM demo.orders GROUP BY 1 ORDER BY 2 DESC"`,
          `  npx sluice job status ${DEMO_JOB} --watch`,
          `  npx sluice table history demo.orders`,
          '',
        ].join('\n'),
      );
    } catch (err) {
      // The mesh stays up: the services are usable even when the demo job is not.
      out.note(`sluice: the demo could not start: ${grpcMessage(err)}`);
    }
    const code = await mesh.stopped;
    await producer?.disconnect().catch(() => {});
    return code;
  }
  return mesh.stopped;
}
