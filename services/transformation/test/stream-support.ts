/**
 * Test support for the Transform stream: the in-process stack (a fresh database behind the real
 * catalog service, NATS) with the transformation service, and a commit side that is either the
 * real commit service or a small recording CommitService (for assertions on the exact report
 * content, and for injecting UNAVAILABLE / not-accepted).
 */
import { status, type ClientDuplexStream, type ServiceError } from '@grpc/grpc-js';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { CommitServiceService, type ReportDataFilesRequest, type TriggerFlushRequest } from '#shared/gen/sluice/v1/commit.js';
import { FlushEvent, WorkerHeartbeat } from '#shared/gen/sluice/v1/events.js';
import type { BatchAck, TransformOpen, TransformRequest, TransformResponse } from '#shared/gen/sluice/v1/transformation.js';
import type { Field, KafkaRecord, OffsetRange, PartitionSpec, TableRef } from '#shared/gen/sluice/v1/types.js';
import { subjects } from '#shared/events.js';
import { recordRuns } from '#shared/record-runs.js';
import { SluiceError } from '#shared/errors.js';
import { bindService, startGrpcServer } from '#shared/grpc/server.js';
import { createLogger } from '#shared/logger.js';
import { publish, type NatsConnection } from '#shared/nats.js';
import { createStorage } from '#shared/storage/index.js';
import { tableRequest } from '#test-support/builders.js';
import type { RunningService } from '#shared/service.js';
import type { CatalogClient, TransformationClient } from '#test-support/services.js';
import { startStack } from '#test-support/stack.js';
import { waitFor } from '#test-support/wait.js';
import { checkReportedFiles } from '../../commit/src/report-files.js';

/**
 * Records the reports and flush triggers it receives; can refuse or be unavailable on demand.
 * Every report first passes the real commit service's admission check of its files
 * (report-files.ts), so every test of the transformation also shows that what it writes and
 * reports is what the commit service admits.
 */
export class RecordingCommit {
  readonly reports: ReportDataFilesRequest[] = [];
  readonly triggers: TriggerFlushRequest[] = [];
  /** The next N reports fail with UNAVAILABLE (and are not recorded). */
  unavailableReports = 0;
  /** Reports are answered accepted=false while set. */
  refuse = false;

  constructor(private readonly admission: (req: ReportDataFilesRequest) => Promise<void>) {}

  binding() {
    return bindService('sluice.v1.CommitService', CommitServiceService, {
      reportDataFiles: async (req) => {
        if (this.unavailableReports > 0) {
          this.unavailableReports--;
          throw new SluiceError(status.UNAVAILABLE, 'coordinator restarting');
        }
        if (this.refuse) return { accepted: false };
        await this.admission(req);
        this.reports.push(req);
        return { accepted: true };
      },
      triggerFlush: async (req) => {
        this.triggers.push(req);
        return { flushId: `t${this.triggers.length}` };
      },
    });
  }

  reportsOf(flushId: string): ReportDataFilesRequest[] {
    return this.reports.filter((r) => r.flushId === flushId);
  }
}

export interface TransformationStack {
  catalog: CatalogClient;
  catalogAddress: string;
  /** The transformation service itself: its stop() leaves the client open, to see how a stopped service answers. */
  transformation: RunningService;
  /** The transformation service's client: no retries, so a refused call fails at once. */
  client: TransformationClient;
  nats: NatsConnection;
  /** The recording commit service, unless the real one runs. */
  recorder: RecordingCommit | null;
  /** Where the transformation service reports (the recorder or the real commit service). */
  commitAddress: string;
  stop(): Promise<void>;
}

export interface TransformationStackOptions {
  /** Runs the real commit service (with these variables) instead of a RecordingCommit. */
  commit?: { env: Record<string, string> };
  /** Variables of the transformation service. */
  env?: Record<string, string>;
}

export async function startTransformationStack(options: TransformationStackOptions = {}): Promise<TransformationStack> {
  const noRetries = { retries: 0, deadlineMs: 20_000 };
  const stack = await startStack({ name: 'sluice_transform', catalogClient: noRetries });
  try {
    let recorder: RecordingCommit | null = null;
    let commitAddress: string;
    if (options.commit) {
      commitAddress = (await stack.startCommit({ env: options.commit.env })).address;
    } else {
      const files = { catalog: stack.catalog.client, storage: createStorage() };
      recorder = new RecordingCommit((req) => checkReportedFiles(files, req.table!, req));
      const server = await startGrpcServer({
        host: '127.0.0.1',
        port: 0,
        protoFiles: ['sluice/v1/commit.proto'],
        services: [recorder.binding()],
        logger: createLogger('commit-recorder', 'silent'),
      });
      stack.own({ stop: () => server.stop(500) });
      commitAddress = `127.0.0.1:${server.port}`;
    }
    const transformation = await stack.startTransformation({
      commitAddress,
      env: { TRANSFORMATION_REPORT_RETRY_MS: '3000', ...options.env },
      client: noRetries,
    });
    return {
      catalog: stack.catalog.client,
      catalogAddress: stack.catalog.address,
      transformation: transformation.service,
      client: transformation.client,
      nats: stack.nats,
      recorder,
      commitAddress,
      stop: () => stack.stop(),
    };
  } catch (err) {
    await stack.stop();
    throw err;
  }
}

/** Creates the database (once) and a table; returns the table's ref and location. */
export async function createTable(
  h: TransformationStack,
  name: string,
  fields: Field[],
  spec?: PartitionSpec,
  database = 'tdb',
): Promise<{ ref: TableRef; location: string }> {
  await h.catalog.createDatabase({ name: database, location: '', properties: {} }).catch(() => undefined);
  const { table: created } = await h.catalog.createTable(tableRequest({ database, table: name }, fields, { partitionSpec: spec }));
  return { ref: created!.ref!, location: created!.location };
}

/** A Transform stream driven like ingestion drives it, with acks as promises. */
export class TestStream {
  private readonly call: ClientDuplexStream<TransformRequest, TransformResponse>;
  private readonly pending = new Map<number, { resolve: (a: BatchAck) => void; reject: (e: Error) => void }>();
  private seq = 0;
  /** The status the stream ended with: null for OK. */
  readonly ended: Promise<ServiceError | null>;

  constructor(
    h: TransformationStack,
    readonly open: TransformOpen,
  ) {
    this.call = h.client.openStream('transform');
    this.call.on('data', (r: TransformResponse) => {
      if (r.message?.$case !== 'ack') return;
      const p = this.pending.get(r.message.value.sequence);
      this.pending.delete(r.message.value.sequence);
      p?.resolve(r.message.value);
    });
    this.ended = new Promise((resolve) => {
      this.call.on('error', (err: ServiceError) => {
        for (const p of this.pending.values()) p.reject(err);
        this.pending.clear();
        resolve(err);
      });
      this.call.on('status', (s) => {
        if (s.code === status.OK) resolve(null);
      });
    });
    this.call.on('end', () => undefined);
    this.call.write({ message: { $case: 'open', value: open } });
  }

  send(records: KafkaRecord[], covers: OffsetRange[]): Promise<BatchAck> {
    const sequence = ++this.seq;
    const ack = new Promise<BatchAck>((resolve, reject) => this.pending.set(sequence, { resolve, reject }));
    this.call.write({ message: { $case: 'batch', value: { sequence, runs: recordRuns(records), covers, traceparent: '' } } });
    return ack;
  }

  /** Sends records of one partition as one batch covering exactly their offsets. */
  sendRange(
    topic: string,
    partition: number,
    start: number,
    values: (string | Buffer | undefined)[],
    opts: { timestampMs?: number; keys?: string[] } = {},
  ): Promise<BatchAck> {
    const records = values.map((v, i) => rec(topic, partition, start + i, v, { timestampMs: opts.timestampMs, key: opts.keys?.[i] }));
    return this.send(records, [{ topic, partition, startOffset: start, endOffset: start + values.length }]);
  }

  /** ErrorsProduced: the error records of batches up to `sequence` are in the error topic. */
  confirmErrorsProduced(sequence: number): void {
    this.call.write({ message: { $case: 'errorsProduced', value: { sequence } } });
  }

  /** Raw request, for malformed streams. */
  write(req: TransformRequest): void {
    this.call.write(req);
  }

  end(): void {
    this.call.end();
  }

  cancel(): void {
    this.call.cancel();
  }
}

export function rec(
  topic: string,
  partition: number,
  offset: number,
  value: string | Buffer | undefined,
  opts: { timestampMs?: number; key?: string } = {},
): KafkaRecord {
  return {
    topic,
    partition,
    offset,
    timestampMs: opts.timestampMs ?? Date.UTC(2023, 6, 13, 21, 13, 7),
    key: opts.key === undefined ? undefined : Buffer.from(opts.key),
    value: typeof value === 'string' ? Buffer.from(value) : value,
    headers: [],
  };
}

let flushSeq = 0;
/** Publishes a FlushEvent like the coordinator does and returns its id. */
export function publishFlush(h: TransformationStack, table: TableRef, job = '', deadlineMs = Date.now() + 30_000): string {
  const flushId = `flush-${process.pid}-${++flushSeq}`;
  publish(h.nats, subjects.flush(table), FlushEvent.encode({ table, flushId, deadlineMs, job }).finish());
  return flushId;
}

/** Publishes a flush and waits for the recorder to hold n reports of it. */
export async function flushAndWait(h: TransformationStack, table: TableRef, n = 1, job = ''): Promise<ReportDataFilesRequest[]> {
  const id = publishFlush(h, table, job);
  await waitFor(`${n} report(s) of ${id}`, () => h.recorder!.reportsOf(id).length >= n, { timeoutMs: 10_000 });
  return h.recorder!.reportsOf(id);
}

/** Collects heartbeats of a table. */
export function collectHeartbeats(h: TransformationStack, table: TableRef): { beats: WorkerHeartbeat[]; stop(): void } {
  const beats: WorkerHeartbeat[] = [];
  const sub = h.nats.subscribe(subjects.workers(table));
  void (async () => {
    for await (const m of sub) beats.push(WorkerHeartbeat.decode(m.data));
  })();
  return { beats, stop: () => sub.unsubscribe() };
}

/** Every file below a directory, recursively (relative paths), or [] when it does not exist. */
export async function filesUnder(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir, { recursive: true, withFileTypes: true }))
      .filter((e) => e.isFile())
      .map((e) => join(e.parentPath ?? e.path, e.name).slice(dir.length + 1))
      .sort();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
}

let duck: Promise<DuckDBInstance> | null = null;
/** Runs SQL in a DuckDB of its own (not the writer's) and returns the rows as objects. */
export async function query(sql: string): Promise<Record<string, unknown>[]> {
  duck ??= DuckDBInstance.create(':memory:');
  const conn = await (await duck).connect();
  try {
    const reader = await conn.runAndReadAll(sql);
    return reader.getRowObjects() as Record<string, unknown>[];
  } finally {
    conn.closeSync();
  }
}
