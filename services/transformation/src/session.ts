/**
 * One Transform stream's state: the compiled plan, the open files, the offsets covered
 * since the last report, the dirty-data policy, heartbeats and flushes.
 *
 * Everything that touches the files runs one task at a time (batches, flush cuts, close), so
 * a flush always cuts at a batch boundary, never mid-batch. Its report is then delivered in
 * order on a chain of its own, so batches go on while a report waits for ingestion to confirm
 * the error-topic produces of the batches it covers (confirmations.ts). A failure outside a
 * batch (a report that could not be delivered or confirmed) is fatal to the stream: it is
 * handed to onFatal, and the stream ends with it, which makes ingestion rewind to the
 * committed offsets.
 */
import type { BatchAck, RecordBatch, TransformOpen } from '#shared/gen/sluice/v1/transformation.js';
import type { FlushEvent } from '#shared/gen/sluice/v1/events.js';
import {
  ErrorPolicyKind,
  type DataFile,
  type ErrorCount,
  type KafkaRecord,
  type OffsetRange,
  type PartitionSpec,
  type Schema,
  type TableRef,
} from '#shared/gen/sluice/v1/types.js';
import type { CatalogServiceService, Table } from '#shared/gen/sluice/v1/catalog.js';
import { aborted, failedPrecondition, grpcCode, grpcMessage, invalidArgument, SluiceError, unavailable } from '#shared/errors.js';
import type { ServiceClient } from '#shared/grpc/client.js';
import type { Logger } from '#shared/logger.js';
import type { NatsConnection } from '#shared/nats.js';
import { writerColumns, type CellValue } from '#shared/parquet/writer.js';
import { withSpan } from '#shared/tracing.js';
import { status } from '@grpc/grpc-js';
import { unlink } from 'node:fs/promises';
import { normalizeLocation } from '#shared/storage/index.js';
import {
  compilePlan,
  DirtyDataPolicy,
  partitionOf,
  RecordError,
  SpecError,
  transformRecord,
  validatePolicy,
  type ErrorTableRow,
  type Plan,
  type PartitionTuple,
  type Row,
} from './core/index.js';
import { compilePartitionSpec } from './core/partition.js';
import { columnsOf } from './core/schema.js';
import { ConfirmationError, ErrorConfirmations } from './confirmations.js';
import { Coverage, CoverageError, uncoveredRecord } from './coverage.js';
import { errorRowMapper, ErrorTableShapeError } from './error-sink.js';
import { FileSetError, PartitionedFiles } from './files.js';
import { buildReport, ReportError, sendReport, type CommitClient, type RetryPolicy } from './reports.js';
import { Heartbeat, type FlushRouter } from './signals.js';

export type CatalogClient = ServiceClient<typeof CatalogServiceService>;

export interface SessionSettings {
  targetFileBytes: number;
  heartbeatMs: number;
  reportRetry: RetryPolicy;
}

export interface SessionDeps {
  catalog: CatalogClient;
  commit: CommitClient;
  nats: NatsConnection;
  flushes: FlushRouter;
  logger: Logger;
  settings: SessionSettings;
  now(): number;
}

const tableName = (t: TableRef) => `${t.database}.${t.table}`;

/** Rows of one partition value within a batch. */
interface Group {
  tuple: PartitionTuple;
  rows: Row[];
}

/** What a flush cut at a batch boundary: the files to report and the offsets they cover. */
interface Cut {
  event: FlushEvent;
  files: DataFile[];
  errorFiles: DataFile[];
  offsets: OffsetRange[];
  /** The last covered batch with error-topic records: the report waits for its confirmation (0: none). */
  awaitBatch: number;
}

/** How long a report waits for error-topic confirmations when a FlushEvent names no deadline. */
const DEFAULT_CONFIRM_WAIT_MS = 30_000;

/** The error table's writer side (ERROR_TABLE policy only). */
interface ErrorTableSink {
  ref: TableRef;
  toRow: (r: ErrorTableRow) => CellValue[];
  partitionOf: (row: CellValue[]) => PartitionTuple;
  files: PartitionedFiles;
}

export class TransformSession {
  readonly job: string;
  readonly table: TableRef;
  readonly workerId: string;
  /** Called when the stream must end because of a failure outside a batch. */
  onFatal: (err: SluiceError) => void = () => undefined;

  private readonly coverage = new Coverage();
  private readonly confirmations = new ErrorConfirmations();
  private readonly policy: DirtyDataPolicy;
  private readonly heartbeat: Heartbeat;
  private readonly unsubscribe: () => void;
  private readonly log: Logger;
  private readonly groups = new Map<string, Group>();
  private tail: Promise<unknown> = Promise.resolve();
  /** Reports are delivered one at a time, in the order their flushes were cut. */
  private reporting: Promise<void> = Promise.resolve();
  private buffered = 0;
  private flushAsked = false;
  private failure: SluiceError | null = null;
  private closing: Promise<void> | null = null;
  private rowsTotal = 0;

  private constructor(
    open: TransformOpen,
    private readonly deps: SessionDeps,
    private readonly plan: Plan,
    private readonly files: PartitionedFiles,
    private readonly errorSink: ErrorTableSink | null,
    private readonly flushBufferBytes: number,
  ) {
    this.job = open.job;
    this.table = open.table!;
    this.workerId = open.workerId;
    this.policy = new DirtyDataPolicy(open.mapping!.errorPolicy);
    this.log = deps.logger.child({ job: this.job, table: tableName(this.table), worker: this.workerId });
    this.heartbeat = new Heartbeat(
      deps.nats,
      { table: this.table, job: this.job, workerId: this.workerId, bufferedBytes: () => this.buffered },
      deps.settings.heartbeatMs,
    );
    this.unsubscribe = deps.flushes.add(this.table, { job: this.job, onFlush: (e) => this.requestFlush(e) });
  }

  /** Checks the open message, loads the table(s) and compiles the plan once. */
  static async open(open: TransformOpen, deps: SessionDeps): Promise<TransformSession> {
    const { table, mapping } = checkOpen(open);
    const main = await loadTable(deps.catalog, table);
    let plan: Plan;
    try {
      plan = compilePlan({ schema: main.schema!, mapping, partitionSpec: main.partitionSpec });
    } catch (e) {
      if (e instanceof SpecError)
        throw invalidArgument(`mapping for table ${tableName(table)}: ${e.message}`, e.field ? { field: e.field } : {});
      throw e;
    }
    const files = fileSet(main, open.workerId, deps.settings.targetFileBytes);
    const errorSink =
      mapping.errorPolicy?.kind === ErrorPolicyKind.ERROR_POLICY_KIND_ERROR_TABLE
        ? await openErrorSink(deps.catalog, mapping.errorPolicy.errorTable!, open.workerId, deps.settings.targetFileBytes)
        : null;
    const session = new TransformSession(open, deps, plan, files, errorSink, open.flushBufferBytes);
    try {
      await deps.flushes.ready(); // a flush published from now on reaches this stream
    } catch (e) {
      await session.close();
      throw unavailable(`NATS is not reachable: ${(e as Error).message}`);
    }
    session.log.info('transform stream opened');
    return session;
  }

  /** Runs tasks one at a time, in order; a task's failure does not stop the ones after it. */
  private run<T>(task: () => Promise<T>): Promise<T> {
    const result = this.tail.then(task);
    this.tail = result.catch(() => undefined);
    return result;
  }

  /** Transforms one batch and acknowledges it. Throws a SluiceError that ends the stream. */
  batch(batch: RecordBatch): Promise<BatchAck> {
    return this.run(async () => {
      if (this.failure) throw this.failure;
      if (this.closing) throw unavailable('the stream is closing');
      return this.transformBatch(batch);
    });
  }

  private async transformBatch(batch: RecordBatch): Promise<BatchAck> {
    const records = batch.records;
    const outside = uncoveredRecord(records, batch.covers);
    if (outside) throw invalidArgument(`batch ${batch.sequence}: ${outside}`, { sequence: String(batch.sequence) });
    try {
      this.coverage.add(batch.covers);
    } catch (e) {
      if (e instanceof CoverageError)
        throw invalidArgument(`batch ${batch.sequence}: ${e.message}`, { topic: e.topic, partition: String(e.partition) });
      throw e;
    }

    const ctx = { nowMs: this.deps.now() };
    const groups = this.groups;
    let last: Group | null = null;
    let rows = 0;
    let refused = 0;
    let reasons: Map<string, number> | null = null;
    const errorRecords: KafkaRecord[] = [];
    const errorRows: CellValue[][] = [];

    for (let i = 0; i < records.length; i++) {
      const rec = records[i];
      let out = transformRecord(this.plan, rec, ctx);
      let tuple: PartitionTuple | null = null;
      if (!(out instanceof RecordError)) {
        try {
          tuple = partitionOf(this.plan, out);
        } catch (e) {
          out = new RecordError('partition', `no partition value: ${(e as Error).message}`).at(rec);
        }
      }
      if (out instanceof RecordError) {
        refused++;
        reasons ??= new Map();
        reasons.set(out.reason, (reasons.get(out.reason) ?? 0) + 1);
        this.refuse(rec, out, errorRecords, errorRows);
        continue;
      }
      let group: Group | undefined = last !== null && last.tuple.key === tuple!.key ? last : groups.get(tuple!.key);
      if (group === undefined) {
        group = { tuple: tuple!, rows: [] };
        groups.set(tuple!.key, group);
      }
      group.rows.push(out);
      last = group;
      rows++;
      this.buffered += (rec.key?.length ?? 0) + (rec.value?.length ?? 0);
    }

    try {
      for (const g of groups.values()) if (g.rows.length > 0) await this.files.append(g.tuple, g.rows);
      if (errorRows.length > 0) await this.appendErrorRows(errorRows);
    } catch (e) {
      throw this.streamError(e, `writing data files of ${tableName(this.table)}`);
    } finally {
      groups.clear();
    }
    this.rowsTotal += rows;
    this.confirmations.ack(batch.sequence, errorRecords.length);
    this.maybeAskForFlush();
    const errorReasons: ErrorCount[] = reasons
      ? [...reasons].map(([reason, count]) => ({ reason, count })).sort((a, b) => a.reason.localeCompare(b.reason))
      : [];
    return { sequence: batch.sequence, rows, errors: refused, errorReasons, excluded: 0, errorRecords };
  }

  /** Applies the dirty-data policy to one refused record. */
  private refuse(rec: KafkaRecord, err: RecordError, errorRecords: KafkaRecord[], errorRows: CellValue[][]): void {
    const d = this.policy.decide(rec, err);
    switch (d.action) {
      case 'skip':
        return;
      case 'fail':
        throw failedPrecondition(`dirty record refused (${err.reason}): ${d.message}`, {
          topic: rec.topic,
          partition: String(rec.partition),
          offset: String(rec.offset),
          reason: err.reason,
        });
      case 'error_topic':
        // Ingestion owns the producer and produces these before it treats the batch as done.
        // partition/offset -1: the error topic's partitioner decides, Kafka assigns the offset.
        errorRecords.push({
          topic: d.record.topic,
          partition: -1,
          offset: -1,
          timestampMs: rec.timestampMs,
          key: d.record.key ?? undefined,
          value: d.record.value ?? undefined,
          headers: d.record.headers,
        });
        return;
      case 'error_table': {
        const row = this.errorSink!.toRow(d.row);
        errorRows.push(row);
        this.buffered += (rec.key?.length ?? 0) + (rec.value?.length ?? 0);
        return;
      }
    }
  }

  private async appendErrorRows(rows: CellValue[][]): Promise<void> {
    const sink = this.errorSink!;
    const byKey = new Map<string, Group>();
    for (const row of rows) {
      const tuple = sink.partitionOf(row);
      let g = byKey.get(tuple.key);
      if (!g) byKey.set(tuple.key, (g = { tuple, rows: [] }));
      g.rows.push(row as Row);
    }
    for (const g of byKey.values()) await sink.files.append(g.tuple, g.rows);
  }

  /** Over the job's buffer size: ask the coordinator for a flush (once until the next one). */
  private maybeAskForFlush(): void {
    if (this.flushAsked || this.flushBufferBytes <= 0 || this.buffered < this.flushBufferBytes) return;
    this.flushAsked = true;
    this.deps.commit.triggerFlush({ table: this.table, job: this.job }).then(
      ({ flushId }) => this.log.debug({ flushId, buffered: this.buffered }, 'flush requested: buffer full'),
      (err) => {
        this.flushAsked = false; // ask again after the next batch
        this.log.warn({ err: grpcMessage(err) }, 'TriggerFlush failed');
      },
    );
  }

  /** Ingestion confirmed that the error records of batches up to `sequence` are produced. */
  errorsProduced(sequence: number): void {
    try {
      this.confirmations.confirm(sequence);
    } catch (e) {
      if (e instanceof ConfirmationError) throw invalidArgument(e.message, { sequence: String(sequence) });
      throw e;
    }
  }

  /**
   * A FlushEvent for this stream's table and job: cut at the next batch boundary, then report
   * once the error-topic records of the covered batches are confirmed produced.
   */
  requestFlush(event: FlushEvent): void {
    if (this.closing || this.failure) return;
    const cut = this.run(() => this.cut(event));
    this.reporting = this.reporting
      .then(async () => {
        const c = await cut;
        if (c) await this.deliver(c);
      })
      .catch((err: unknown) => {
        if (err === this.failure) return; // a report after the failed one, dropped: already told
        const e = err instanceof SluiceError ? err : aborted(`flush ${event.flushId} failed: ${(err as Error).message}`);
        this.failure ??= e;
        this.log.error({ flushId: event.flushId, err: e.message }, 'flush failed; the stream ends');
        this.onFatal(e);
      });
  }

  /** Closes the open files and takes the offsets covered so far (runs between batches). */
  private async cut(event: FlushEvent): Promise<Cut | null> {
    if (this.closing || this.failure) return null;
    let files: DataFile[] = [];
    let errorFiles: DataFile[];
    try {
      files = await this.files.close();
      errorFiles = this.errorSink ? await this.errorSink.files.close() : [];
    } catch (e) {
      await this.deleteNeverReported(files);
      throw this.streamError(e, `closing data files for flush ${event.flushId}`);
    }
    const offsets = this.coverage.take();
    this.buffered = 0;
    this.flushAsked = false;
    return { event, files, errorFiles, offsets, awaitBatch: this.confirmations.outstanding };
  }

  /** Waits for the cut's error-topic confirmation, then reports: the error table first, then the data. */
  private async deliver(cut: Cut): Promise<void> {
    const { event, files, errorFiles, offsets } = cut;
    await withSpan('transformation.flush', { 'sluice.flush_id': event.flushId, 'sluice.worker_id': this.workerId }, async (span) => {
      try {
        // After a failed report nothing later fits the committed offsets: do not send it.
        if (this.failure) throw this.failure;
        if (cut.awaitBatch > 0) {
          const now = this.deps.now();
          await this.confirmations.wait(cut.awaitBatch, event.deadlineMs > 0 ? event.deadlineMs : now + DEFAULT_CONFIRM_WAIT_MS, now);
        }
      } catch (e) {
        await this.deleteNeverReported([...files, ...errorFiles]);
        if (e instanceof ConfirmationError)
          throw aborted(
            `flush ${event.flushId}: ${e.message}; the stream's uncommitted work is dropped, re-read it from the committed offsets`,
            { flush_id: event.flushId },
          );
        throw e;
      }
      const base = { flushId: event.flushId, job: this.job, workerId: this.workerId };
      try {
        // The error table first: if its report fails, the data report is not sent, the
        // offsets stay uncommitted and the refused records are read (and refused) again.
        if (errorFiles.length > 0)
          await sendReport(
            this.deps.commit,
            buildReport({ ...base, table: this.errorSink!.ref, files: errorFiles, offsets: [] }),
            this.deps.settings.reportRetry,
          );
      } catch (e) {
        await this.deleteNeverReported(files);
        throw this.reportFailure(e);
      }
      // The data report says it came with an error report: the coordinator commits it only together with it.
      const report = buildReport({ ...base, table: this.table, files, offsets, errorReports: errorFiles.length > 0 ? 1 : 0 });
      try {
        await sendReport(this.deps.commit, report, this.deps.settings.reportRetry);
      } catch (e) {
        throw this.reportFailure(e);
      }
      span.setAttributes({ 'sluice.files': files.length, 'sluice.records': report.recordCount, 'sluice.error_files': errorFiles.length });
      this.log.debug({ flushId: event.flushId, files: files.length, records: report.recordCount, offsets }, 'flush reported');
    });
  }

  /** Files closed for a report that was never sent: nobody else can know about them. */
  private async deleteNeverReported(files: { filePath: string }[]): Promise<void> {
    for (const f of files) await unlink(normalizeLocation(f.filePath)).catch(() => undefined);
  }

  /**
   * Ends the stream: waits for the task in progress (a batch or a flush cut finishes, never
   * half-done) and for a report being sent; a report still waiting for error-topic
   * confirmations is abandoned (its files deleted: they can never be confirmed now). Then
   * drops open files and deletes every file not yet reported, and says goodbye to the
   * coordinator, after the last report.
   */
  close(): Promise<void> {
    this.closing ??= this.run(async () => {
      this.unsubscribe();
      this.confirmations.close('the stream ended before its error-topic records were confirmed produced');
      await this.reporting;
      this.heartbeat.stop();
      const deleted = [...(await this.files.discard()), ...((await this.errorSink?.files.discard()) ?? [])];
      this.log.info(
        { rows: this.rowsTotal, refused: this.policy.refusedCount, deletedUnreported: deleted.length },
        'transform stream closed',
      );
    });
    return this.closing;
  }

  /** A failure while writing files, as the status the stream ends with; the unexpected ones are logged. */
  private streamError(e: unknown, what: string): SluiceError {
    if (e instanceof SluiceError) return e;
    if (e instanceof FileSetError) return failedPrecondition(`${what}: ${e.message}`);
    this.log.error({ err: e }, `unexpected failure ${what}`);
    return new SluiceError(status.INTERNAL, `${what}: ${(e as Error).message}`);
  }

  private reportFailure(e: unknown): SluiceError {
    if (e instanceof ReportError)
      return aborted(`${e.message}; the stream's uncommitted work is dropped, re-read it from the committed offsets`, {
        flush_id: e.flushId,
      });
    return this.streamError(e, 'reporting data files');
  }

  /** Bytes held in open files (an uncompressed estimate: the records' key and value bytes). */
  get bufferedBytes(): number {
    return this.buffered;
  }
}

function checkOpen(open: TransformOpen): { table: TableRef; mapping: NonNullable<TransformOpen['mapping']> } {
  if (!open.job) throw invalidArgument('TransformOpen.job is required', { field: 'job' });
  if (!open.workerId) throw invalidArgument('TransformOpen.worker_id is required', { field: 'worker_id' });
  if (!open.table?.database || !open.table.table)
    throw invalidArgument('TransformOpen.table must name a database and a table', { field: 'table' });
  if (!open.mapping) throw invalidArgument('TransformOpen.mapping is required', { field: 'mapping' });
  if (!(open.flushBufferBytes >= 0))
    throw invalidArgument(`TransformOpen.flush_buffer_bytes ${open.flushBufferBytes} must be >= 0`, { field: 'flush_buffer_bytes' });
  const bad = validatePolicy(open.mapping.errorPolicy);
  if (bad) throw invalidArgument(bad, { field: 'mapping.error_policy' });
  return { table: open.table, mapping: open.mapping };
}

async function loadTable(catalog: CatalogClient, ref: TableRef): Promise<Table> {
  let table: Table | undefined;
  try {
    ({ table } = await catalog.getTable({ ref }));
  } catch (err) {
    if (grpcCode(err) === status.NOT_FOUND)
      throw failedPrecondition(`table ${tableName(ref)} does not exist in the catalog`, { table: tableName(ref) });
    throw unavailable(`could not load table ${tableName(ref)} from the catalog: ${grpcMessage(err)}`, { table: tableName(ref) });
  }
  if (!table?.schema) throw failedPrecondition(`table ${tableName(ref)} has no schema in the catalog`, { table: tableName(ref) });
  return table;
}

function fileSet(table: Table, workerId: string, targetFileBytes: number): PartitionedFiles {
  try {
    return new PartitionedFiles({
      location: table.location,
      columns: writerColumns(table.schema!),
      specId: table.partitionSpec?.specId ?? 0,
      workerId,
      targetFileBytes,
    });
  } catch (e) {
    throw failedPrecondition(`table ${tableName(table.ref!)}: ${(e as Error).message}`, { table: tableName(table.ref!) });
  }
}

async function openErrorSink(catalog: CatalogClient, ref: TableRef, workerId: string, targetFileBytes: number): Promise<ErrorTableSink> {
  const table = await loadTable(catalog, ref);
  const schema: Schema = table.schema!;
  try {
    const columns = writerColumns(schema);
    const spec: PartitionSpec | undefined = table.partitionSpec;
    return {
      ref,
      toRow: errorRowMapper(tableName(ref), columns),
      partitionOf: compilePartitionSpec(spec, columnsOf(schema)) as (row: CellValue[]) => PartitionTuple,
      files: fileSet(table, workerId, targetFileBytes),
    };
  } catch (e) {
    if (e instanceof SluiceError) throw e;
    if (e instanceof ErrorTableShapeError || e instanceof SpecError) throw failedPrecondition(e.message, { table: tableName(ref) });
    throw failedPrecondition(`error table ${tableName(ref)}: ${(e as Error).message}`, { table: tableName(ref) });
  }
}
