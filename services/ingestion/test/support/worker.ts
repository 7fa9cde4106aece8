/**
 * A recording TransformationService for ingestion tests, standing in until the real
 * Transform stream lands. It speaks the protocol the way a transformation worker must:
 * heartbeats per open stream, refuses non-contiguous covers, acknowledges each batch, and on a
 * FlushEvent reports the stream's covers to the real commit service. It does not map records to
 * rows: it reports one real Parquet file of filler rows under the table's location, named after
 * the stream's worker (test/support/data-files.ts), with one row per record the report holds,
 * so the commit service admits it and the committed snapshots' `added-records` count exactly
 * what landed.
 */
import * as grpc from '@grpc/grpc-js';
import { CommitServiceService } from '#shared/gen/sluice/v1/commit.js';
import { FlushEvent, WorkerHeartbeat } from '#shared/gen/sluice/v1/events.js';
import {
  TransformationServiceService,
  type TransformOpen,
  type TransformRequest,
  type TransformResponse,
} from '#shared/gen/sluice/v1/transformation.js';
import type { KafkaRecord, OffsetRange, TableRef } from '#shared/gen/sluice/v1/types.js';
import { subjects } from '#shared/events.js';
import { runLength, runRecords } from '#shared/record-runs.js';
import { createClient, type ServiceClient } from '#shared/grpc/client.js';
import { publish, subscribe, type NatsConnection, type Subscription } from '#shared/nats.js';
import { createStorage } from '#shared/storage/index.js';
import type { CatalogClient } from '#test-support/services.js';
import { writeTableDataFile } from '#test-support/data-files.js';

export interface RecordedStream {
  open: TransformOpen;
  batches: { sequence: number; records: KafkaRecord[]; covers: OffsetRange[] }[];
  ended: boolean;
  /** Covers since the last report, per partition key. */
  pending: Map<string, OffsetRange>;
  pendingRows: number;
  reportedRows: number;
  violations: string[];
  lastEnd: Map<string, number>;
}

export interface RecordingWorker {
  readonly address: string;
  readonly streams: RecordedStream[];
  /** While true, batches are recorded but not acknowledged (a transformation that fell behind). */
  holdAcks: boolean;
  /** When false, batches keep their covers and counts but drop their records (large volumes). */
  retainRecords: boolean;
  /** Records received over all streams. */
  received: number;
  releaseAcks(): void;
  records(job: string): KafkaRecord[];
  stop(): Promise<void>;
}

export async function startRecordingWorker(nats: NatsConnection, commitAddress: string, catalog: CatalogClient): Promise<RecordingWorker> {
  const commit: ServiceClient<typeof CommitServiceService> = createClient(CommitServiceService, commitAddress, { deadlineMs: 10_000 });
  const storage = createStorage();
  const streams: RecordedStream[] = [];
  const held: (() => void)[] = [];
  const flushSubs = new Map<string, Subscription>();
  const live = new Set<RecordedStream>();

  const beat = (s: RecordedStream, alive: boolean) =>
    publish(
      nats,
      subjects.workers(s.open.table!),
      WorkerHeartbeat.encode({
        table: s.open.table,
        job: s.open.job,
        workerId: s.open.workerId,
        sentAtMs: Date.now(),
        bufferedBytes: 0,
        alive,
      }).finish(),
    );
  const beats = setInterval(() => {
    for (const s of live) beat(s, true);
  }, 300);

  // Reports go out in the order of their flushes: writing a file takes a while, and a later
  // report overtaking an earlier one would break the stream's contiguity.
  let reporting: Promise<void> = Promise.resolve();
  const report = (s: RecordedStream, flushId: string): Promise<void> => {
    const offsets = [...s.pending.values()];
    const rows = s.pendingRows;
    s.pending = new Map();
    s.pendingRows = 0;
    const table = s.open.table!;
    const sent = reporting.then(async () => {
      await commit.reportDataFiles({
        flushId,
        table,
        job: s.open.job,
        workerId: s.open.workerId,
        offsets,
        recordCount: rows,
        errorCounts: [],
        files: rows === 0 ? [] : [await writeTableDataFile(catalog, storage, table, s.open.workerId, { rows })],
      });
      s.reportedRows += rows;
    });
    reporting = sent.catch(() => {});
    return sent;
  };

  const watchFlushes = (table: TableRef) => {
    const subject = subjects.flush(table);
    if (flushSubs.has(subject)) return;
    flushSubs.set(
      subject,
      subscribe(
        nats,
        subject,
        async (payload) => {
          const e = FlushEvent.decode(payload);
          for (const s of [...live]) {
            if (s.open.table?.table === table.table && (!e.job || e.job === s.open.job)) await report(s, e.flushId).catch(() => {});
          }
        },
        () => {},
      ),
    );
  };

  const server = new grpc.Server();
  server.addService(TransformationServiceService as unknown as grpc.ServiceDefinition, {
    transform(call: grpc.ServerDuplexStream<TransformRequest, TransformResponse>) {
      let s: RecordedStream | undefined;
      const close = () => {
        if (!s || s.ended) return;
        s.ended = true;
        live.delete(s);
        beat(s, false);
      };
      call.on('data', (req: TransformRequest) => {
        const m = req.message;
        if (m?.$case === 'open') {
          s = {
            open: m.value,
            batches: [],
            ended: false,
            pending: new Map(),
            pendingRows: 0,
            reportedRows: 0,
            violations: [],
            lastEnd: new Map(),
          };
          streams.push(s);
          live.add(s);
          watchFlushes(m.value.table!);
          beat(s, true);
          return;
        }
        if (m?.$case !== 'batch' || !s) return;
        const stream = s;
        const b = m.value;
        for (const c of b.covers) {
          const key = `${c.topic}/${c.partition}`;
          const prev = stream.pending.get(key);
          const lastEnd = stream.lastEnd.get(key);
          stream.lastEnd.set(key, c.endOffset);
          if (lastEnd !== undefined && c.startOffset !== lastEnd)
            stream.violations.push(`${key}: cover starts at ${c.startOffset}, previous ended at ${lastEnd}`);
          stream.pending.set(key, prev ? { ...prev, endOffset: c.endOffset } : { ...c });
        }
        const count = b.runs.reduce((n, run) => n + runLength(run), 0);
        worker.received += count;
        stream.batches.push({ sequence: b.sequence, records: worker.retainRecords ? b.runs.flatMap(runRecords) : [], covers: b.covers });
        stream.pendingRows += count;
        const ack = () => {
          if (!call.writable || stream.ended) return;
          call.write({
            message: {
              $case: 'ack',
              value: {
                sequence: b.sequence,
                rows: count,
                errors: 0,
                errorReasons: [],
                excluded: 0,
                errorRecords: [],
                unmappedFields: [],
              },
            },
          });
        };
        if (worker.holdAcks) held.push(ack);
        else ack();
      });
      call.on('end', () => {
        close();
        call.end();
      });
      call.on('error', close);
      call.on('cancelled', close);
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );

  const worker: RecordingWorker = {
    address: `127.0.0.1:${port}`,
    streams,
    holdAcks: false,
    retainRecords: true,
    received: 0,
    releaseAcks() {
      this.holdAcks = false;
      for (const a of held.splice(0)) a();
    },
    records(job) {
      return streams.filter((s) => s.open.job === job).flatMap((s) => s.batches.flatMap((b) => b.records));
    },
    async stop() {
      clearInterval(beats);
      for (const sub of flushSubs.values()) sub.unsubscribe();
      commit.close();
      server.forceShutdown();
    },
  };
  return worker;
}
