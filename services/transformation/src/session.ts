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
 *
 * Failures arrive typed (errors.ts) and pass through unchanged; this file only adds what it
 * was doing to them, and types the unexpected ones (streamError).
 */
import type { BatchAck, RecordBatch, TransformOpen } from '#shared/gen/sluice/v1/transformation.js';
import type { FlushEvent } from '#shared/gen/sluice/v1/events.js';
import type {
  DataFile,
  ErrorCount,
  FieldCount,
  KafkaRecord,
  OffsetRange,
  RowChanges,
  Schema,
  TableRef,
} from '#shared/gen/sluice/v1/types.js';
import { aborted, grpcMessage, SluiceError, unavailable } from '#shared/errors.js';
import type { Logger } from '#shared/logger.js';
import type { NatsConnection } from '#shared/nats.js';
import { writerColumns, type CellValue } from '#shared/parquet/writer.js';
import { contextOf, withSpan } from '#shared/tracing.js';
import { ROOT_CONTEXT, type Link } from '@opentelemetry/api';
import { status } from '@grpc/grpc-js';
import { RunCursor } from './run-cursor.js';
import { compileTokenScanner, TokenRows } from './core/token-scan.js';
import {
  compilePlan,
  DirtyDataPolicy,
  grownSchema,
  partitionOf,
  RecordError,
  SchemaGrowth,
  transformChanges,
  transformRecord,
  type ChangeRow,
  type Plan,
  type PlanInput,
  type PartitionTuple,
  type RecordContext,
  type Row,
} from './core/index.js';
import { ErrorConfirmations } from './confirmations.js';
import { Coverage } from './coverage.js';
import type { ErrorTableSink } from './error-sink.js';
import { DirtyRecordError, withContext } from './errors.js';
import type { FileSettings, PartitionedFiles } from './files.js';
import type { OpenFileBudget } from './open-file-budget.js';
import { setUpStream, tableName, type CatalogClient, type StreamSetup } from './open.js';
import { buildReport, sendReport, type CommitClient, type RetryPolicy } from './reports.js';
import { Heartbeat, type FlushRouter } from './signals.js';

export interface SessionSettings {
  heartbeatMs: number;
  reportRetry: RetryPolicy;
}

export interface SessionDeps {
  /** The process's bound on rows held in open files (open-file-budget.ts). */
  openFiles: OpenFileBudget;
  /** How data files are written and where they go. */
  files: FileSettings;
  catalog: CatalogClient;
  commit: CommitClient;
  nats: NatsConnection;
  flushes: FlushRouter;
  logger: Logger;
  settings: SessionSettings;
  now(): number;
}

/** Rows of one partition value within a batch. */
interface Group {
  tuple: PartitionTuple;
  rows: Row[];
}

/** A keyed table's change of one key since the last cut: its new row, or null for a delete. */
interface PendingChange {
  row: Row | null;
  tuple: PartitionTuple | null;
  /** Source position (ChangeRow.position), 0 when the envelope has none. */
  position: number;
}

/** What a flush cut at a batch boundary: the files to report and the offsets they cover. */
interface Cut {
  event: FlushEvent;
  files: DataFile[];
  /** A keyed table's row changes: the keys of the files' rows and the deleted keys. */
  changes: RowChanges | undefined;
  errorFiles: DataFile[];
  offsets: OffsetRange[];
  /** The last covered batch with error-topic records: the report waits for its confirmation (0: none). */
  awaitBatch: number;
  /** The evolved schema the files were written with (none: the table's own). */
  schema: Schema | undefined;
  /** Records refused among the covered offsets, by reason: committed with them. */
  errorCounts: ErrorCount[];
  /** The spans of the batches cut, for the flush span's links. */
  batchLinks: Link[];
}

/** Links from a flush's span to the batches it reports, at most (OpenTelemetry's default link limit). */
const MAX_FLUSH_LINKS = 128;

/** A record asks for one schema change at most this often before it counts as unreadable (a bug guard). */
const MAX_GROWTHS_PER_RECORD = 3;

/**
 * Rows the fast path collects before they go into the files in one INSERT, across batches: a
 * batch is one fetch of a partition (about 1,600 wide records), and DuckDB's INSERT costs less
 * a row the more rows it takes. Measured on 196k records through the writer, µs of CPU a row
 * by rows per INSERT: wide 5.0 (1,536), 4.2 (4,096), 4.0 (16,384); narrow 1.2, 0.95, 0.68.
 * 4,096 keeps the token buffers near what they held when each batch was written at its end
 * (16,384 raised transformation's peak RSS by about 30 MB in the pipeline bench). The rows also
 * go in once they hold an eighth of the target file size, so files roll near their target as
 * they do row by row; when they span more partition values than TokenRows keeps chunks for;
 * before rows of the reference path are written (so a file keeps the records' order); and
 * before a cut or a schema change.
 */
const TOKEN_CHUNK_ROWS = 4096;

/** How long a report waits for error-topic confirmations when a FlushEvent names no deadline. */
const DEFAULT_CONFIRM_WAIT_MS = 30_000;

export class TransformSession {
  readonly job: string;
  readonly table: TableRef;
  readonly workerId: string;
  /** Called when the stream must end because of a failure outside a batch. */
  onFatal: (err: SluiceError) => void = () => undefined;

  private plan!: Plan;
  /** The plan's fast path (token-scan.ts) with the rows it took that are not yet in the files; null when every record takes transformRecord. */
  private tokenRows: TokenRows | null = null;
  private planInput: PlanInput;
  private lastColumnId: number;
  /** The schema this stream evolved the table's to (new columns, widenings), reported with its files. */
  private evolvedSchema: Schema | undefined;
  private readonly files: PartitionedFiles;
  private readonly errorSink: ErrorTableSink | null;
  private readonly flushBufferBytes: number;
  private readonly coverage = new Coverage();
  private readonly confirmations = new ErrorConfirmations();
  private readonly policy: DirtyDataPolicy;
  /** Records refused since the last cut, by reason: the next report carries them with its offsets. */
  private readonly refusedSinceCut = new Map<string, number>();
  private readonly heartbeat: Heartbeat;
  private readonly unsubscribe: () => void;
  /** The stream's file sets, counted by the process's open-file budget until close. */
  private readonly fileSets: PartitionedFiles[];
  private readonly unbudget: () => void;
  private readonly log: Logger;
  private readonly groups = new Map<string, Group>();
  /**
   * A keyed table (mapping.changes): the last change of each key since the last cut, written
   * at the cut, so a key changed many times in a flush lands once (DESIGN.md, "Upsert tables").
   */
  private readonly pendingChanges = new Map<string, PendingChange>();
  private readonly changeScratch: ChangeRow[] = [];
  private tail: Promise<unknown> = Promise.resolve();
  /** Reports are delivered one at a time, in the order their flushes were cut. */
  private reporting: Promise<void> = Promise.resolve();
  private buffered = 0;
  private flushAsked = false;
  /** Spans of the batches since the last cut (at most MAX_FLUSH_LINKS). */
  private batchLinks: Link[] = [];
  private readonly cursor = new RunCursor();
  private failure: SluiceError | null = null;
  private closing: Promise<void> | null = null;
  private rowsTotal = 0;

  private constructor(
    open: TransformOpen,
    private readonly deps: SessionDeps,
    setup: StreamSetup,
  ) {
    this.job = open.job;
    this.table = setup.table;
    this.usePlan(setup.plan);
    this.planInput = setup.planInput;
    this.lastColumnId = setup.lastColumnId;
    this.files = setup.files;
    this.errorSink = setup.errorSink;
    this.flushBufferBytes = open.flushBufferBytes;
    this.workerId = open.workerId;
    this.policy = new DirtyDataPolicy(open.mapping!.errorPolicy, open.errorsCommitted ?? 0);
    this.log = deps.logger.child({ job: this.job, table: tableName(this.table), worker: this.workerId });
    this.heartbeat = new Heartbeat(
      deps.nats,
      { table: this.table, job: this.job, workerId: this.workerId, bufferedBytes: () => this.buffered },
      deps.settings.heartbeatMs,
    );
    this.unsubscribe = deps.flushes.add(this.table, { job: this.job, onFlush: (e) => this.requestFlush(e) });
    this.fileSets = this.errorSink ? [this.files, this.errorSink.files] : [this.files];
    this.unbudget = deps.openFiles.register(...this.fileSets);
  }

  /** The plan from now on, with its fast path. */
  private usePlan(plan: Plan): void {
    this.plan = plan;
    const scanner = compileTokenScanner(plan);
    this.tokenRows = scanner === null ? null : new TokenRows(plan, scanner);
  }

  /** Checks the open message, loads the table(s) and compiles the plan once. */
  static async open(open: TransformOpen, deps: SessionDeps): Promise<TransformSession> {
    const setup = await setUpStream(open, deps.catalog, deps.files);
    const session = new TransformSession(open, deps, setup);
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
      if (batch.traceparent === '') return this.transformBatch(batch);
      // The batch's own trace, begun at ingestion's fetch; the flush that reports it links here.
      const attributes = { 'sluice.job': this.job, 'sluice.worker_id': this.workerId, 'sluice.batch': batch.sequence };
      return withSpan(
        'transformation.batch',
        attributes,
        async (span) => {
          const ack = await this.transformBatch(batch);
          span.setAttributes({ 'sluice.rows': ack.rows, 'sluice.refused': ack.errors });
          if (this.batchLinks.length < MAX_FLUSH_LINKS) this.batchLinks.push({ context: span.spanContext() });
          return ack;
        },
        { parent: contextOf(batch.traceparent) },
      );
    });
  }

  private async transformBatch(batch: RecordBatch): Promise<BatchAck> {
    this.coverage.addBatch(batch);

    const ctx: RecordContext = { nowMs: this.deps.now(), unmapped: this.plan.unknownFields === 'count' ? new Map() : undefined };
    const groups = this.groups;
    let last: Group | null = null;
    let rows = 0;
    let refused = 0;
    let reasons: Map<string, number> | null = null;
    const errorRecords: KafkaRecord[] = [];
    const errorRows: CellValue[][] = [];

    // One reused record per batch (run-cursor.ts): nothing per record is built on the way in.
    const rec = this.cursor;
    for (const run of batch.runs) {
      rec.reset(run);
      while (rec.next()) {
        if (this.plan.changes !== null) {
          const refusal = await this.bufferChanges(rec, ctx);
          if (refusal === null) {
            rows += this.changeScratch.length;
            this.buffered += rec.bytes;
          } else {
            refused++;
            reasons ??= new Map();
            reasons.set(refusal.reason, (reasons.get(refusal.reason) ?? 0) + 1);
            this.refuse(rec.snapshot(), refusal, errorRecords, errorRows);
          }
          continue;
        }
        const fast = this.tokenRows;
        if (fast?.take(rec)) {
          rows++;
          this.buffered += rec.bytes;
          if (fast.rows >= TOKEN_CHUNK_ROWS || fast.crowded || fast.bytes >= this.deps.files.targetFileBytes / 8) await this.writeGroups();
          continue;
        }
        let out = transformRecord(this.plan, rec, ctx);
        if (out instanceof SchemaGrowth) {
          out = await this.evolve(out, rec, () => transformRecord(this.plan, rec, ctx));
          last = null; // the rows so far are written; groups start again
        }
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
          this.refuse(rec.snapshot(), out, errorRecords, errorRows);
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
        this.buffered += rec.bytes;
      }
    }

    // The fast path's rows may wait for the next batches (TOKEN_CHUNK_ROWS); the reference's go now.
    if (this.groups.size > 0) await this.writeGroups();
    try {
      if (errorRows.length > 0) await this.appendErrorRows(errorRows);
      const rolled = await this.deps.openFiles.enforce(this.fileSets);
      if (rolled > 0) this.log.debug({ rolled, openBytes: this.deps.openFiles.openBytes }, 'open files over the budget written out early');
    } catch (e) {
      throw this.streamError(e, `writing data files of ${tableName(this.table)}`);
    }
    this.rowsTotal += rows;
    this.confirmations.ack(batch.sequence, errorRecords.length);
    this.maybeAskForFlush();
    const errorReasons: ErrorCount[] = reasons ? sortedCounts(reasons) : [];
    if (reasons) for (const [reason, count] of reasons) this.refusedSinceCut.set(reason, (this.refusedSinceCut.get(reason) ?? 0) + count);
    const unmappedFields: FieldCount[] = ctx.unmapped ? [...ctx.unmapped].map(([field, count]) => ({ field, count })) : [];
    return { sequence: batch.sequence, rows, errors: refused, errorReasons, excluded: 0, errorRecords, unmappedFields };
  }

  /**
   * A change stream's record into the pending changes, whole or not at all: null when read,
   * else why it is refused.
   */
  private async bufferChanges(rec: RunCursor, ctx: RecordContext): Promise<RecordError | null> {
    const out = this.changeScratch;
    let refusal = transformChanges(this.plan, rec, ctx, out);
    if (refusal instanceof SchemaGrowth) refusal = await this.evolve(refusal, rec, () => transformChanges(this.plan, rec, ctx, out));
    if (refusal !== null) return refusal;
    const tuples: (PartitionTuple | null)[] = [];
    for (const change of out) {
      try {
        tuples.push(change.row === null ? null : partitionOf(this.plan, change.row));
      } catch (e) {
        return new RecordError('partition', `no partition value: ${(e as Error).message}`).at(rec);
      }
    }
    for (let i = 0; i < out.length; i++) {
      const { key, row, position } = out[i];
      // A change older by source position than the one kept (the key moved between the Kafka
      // partitions this stream reads) does not replace it.
      const kept = this.pendingChanges.get(key);
      if (kept !== undefined && isOlder(position, kept.position)) continue;
      this.pendingChanges.set(key, { row, tuple: tuples[i], position });
    }
    return null;
  }

  /**
   * The pending changes' rows into their partitions' files, and what the report says of them
   * once the files are closed: each file's keys in row order, and the deleted keys. Rows read
   * before a schema change have fewer columns: the new ones are null for them.
   */
  private async writePendingChanges(): Promise<{
    deletedKeys: string[];
    deletedPositions: number[];
    keysByPartition: Map<string, KeysInOrder>;
  }> {
    const deletedKeys: string[] = [];
    const deletedPositions: number[] = [];
    const byPartition = new Map<string, { tuple: PartitionTuple; rows: Row[]; keys: KeysInOrder }>();
    const width = this.plan.columns.length;
    for (const [key, { row, tuple, position }] of this.pendingChanges) {
      if (row === null) {
        deletedKeys.push(key);
        deletedPositions.push(position);
        continue;
      }
      while (row.length < width) row.push(null);
      let group = byPartition.get(tuple!.key);
      if (!group) byPartition.set(tuple!.key, (group = { tuple: tuple!, rows: [], keys: { keys: [], positions: [] } }));
      group.rows.push(row);
      group.keys.keys.push(key);
      group.keys.positions.push(position);
    }
    this.pendingChanges.clear();
    for (const g of byPartition.values()) await this.files.append(g.tuple, g.rows);
    return {
      deletedKeys,
      deletedPositions: positionsOrNone(deletedPositions),
      keysByPartition: new Map([...byPartition].map(([k, g]) => [k, g.keys])),
    };
  }

  /** The batch's rows so far into their partitions' files: the fast path's, then the others. */
  private async writeGroups(): Promise<void> {
    try {
      await this.tokenRows?.drain((tuple, chunk) => this.files.appendTokens(tuple, chunk));
      for (const g of this.groups.values()) if (g.rows.length > 0) await this.files.append(g.tuple, g.rows);
    } catch (e) {
      throw this.streamError(e, `writing data files of ${tableName(this.table)}`);
    } finally {
      this.groups.clear();
    }
  }

  /**
   * A record needs a schema change (evolve.ts): the rows so far are written with the old
   * columns, the open files close, and the plan and files take the new schema, which the next
   * report carries so the coordinator commits it with the files. Then the record again.
   */
  private async evolve<R>(growth: SchemaGrowth, rec: KafkaRecord, again: () => R): Promise<R | RecordError> {
    for (let n = 0; n < MAX_GROWTHS_PER_RECORD; n++) {
      await this.writeGroups();
      const grown = grownSchema(this.planInput.schema, this.lastColumnId, growth);
      const planInput = { ...this.planInput, schema: grown.schema };
      try {
        this.usePlan(compilePlan(planInput));
        await this.files.changeColumns(writerColumns(grown.schema));
      } catch (e) {
        throw this.streamError(e, `evolving the schema of ${tableName(this.table)} (${growth.describe()})`);
      }
      this.planInput = planInput;
      this.lastColumnId = grown.lastColumnId;
      this.evolvedSchema = grown.schema;
      this.log.info(
        { change: growth.describe(), offset: rec.offset, partition: rec.partition },
        'schema evolved; committed with the next flush',
      );
      const out = again();
      if (!(out instanceof SchemaGrowth)) return out;
      growth = out;
    }
    return new RecordError('unreadable', `the record still needs a schema change: ${growth.describe()}`).at(rec);
  }

  /** Applies the dirty-data policy to one refused record. */
  private refuse(rec: KafkaRecord, err: RecordError, errorRecords: KafkaRecord[], errorRows: CellValue[][]): void {
    const d = this.policy.decide(rec, err);
    switch (d.action) {
      case 'skip':
        return;
      case 'fail':
        throw new DirtyRecordError(err.reason, d.message, rec);
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
    this.confirmations.confirm(sequence);
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
        // Failures on this chain are typed already; anything else still drops the stream's work.
        const e = err instanceof SluiceError ? err : aborted(`flush ${event.flushId} failed: ${(err as Error).message}`);
        this.failure ??= e;
        this.log.error({ flushId: event.flushId, err: e.message }, 'flush failed; the stream ends');
        this.onFatal(e);
      });
  }

  /** Closes the open files and takes the offsets covered so far (runs between batches). */
  private async cut(event: FlushEvent): Promise<Cut | null> {
    if (this.closing || this.failure) return null;
    await this.writeGroups(); // the fast path's rows still waiting belong to this cut
    let files: DataFile[] = [];
    let errorFiles: DataFile[];
    let changes: RowChanges | undefined;
    try {
      if (this.plan.changes !== null) {
        const { deletedKeys, deletedPositions, keysByPartition } = await this.writePendingChanges();
        const groups = await this.files.closeByPartition();
        files = groups.flatMap((g) => g.files);
        changes = { files: fileKeys(groups, keysByPartition), deletedKeys, deletedPositions };
      } else files = await this.files.close();
      errorFiles = this.errorSink ? await this.errorSink.files.close() : [];
    } catch (e) {
      await this.deleteNeverReported(files);
      throw this.streamError(e, `closing data files for flush ${event.flushId}`);
    }
    const offsets = this.coverage.take();
    const errorCounts = sortedCounts(this.refusedSinceCut);
    this.refusedSinceCut.clear();
    this.buffered = 0;
    this.flushAsked = false;
    const batchLinks = this.batchLinks;
    this.batchLinks = [];
    return {
      event,
      files,
      changes,
      errorFiles,
      offsets,
      awaitBatch: this.confirmations.outstanding,
      schema: this.evolvedSchema,
      errorCounts,
      batchLinks,
    };
  }

  /** Waits for the cut's error-topic confirmation, then reports: the error table first, then the data. */
  private async deliver(cut: Cut): Promise<void> {
    const { event, files, errorFiles, offsets } = cut;
    await withSpan(
      'transformation.flush',
      { 'sluice.flush_id': event.flushId, 'sluice.worker_id': this.workerId, 'sluice.batches': cut.batchLinks.length },
      async (span) => {
        try {
          // After a failed report nothing later fits the committed offsets: do not send it.
          if (this.failure) throw this.failure;
          if (cut.awaitBatch > 0) {
            const now = this.deps.now();
            const deadlineMs = event.deadlineMs > 0 ? event.deadlineMs : now + DEFAULT_CONFIRM_WAIT_MS;
            await this.confirmations.wait(cut.awaitBatch, event.flushId, deadlineMs, now);
          }
        } catch (e) {
          await this.deleteNeverReported([...files, ...errorFiles]);
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
          throw e; // a ReportError: ABORTED, the stream's work is dropped
        }
        // The data report says it came with an error report: the coordinator commits it only together with it.
        const report = buildReport({
          ...base,
          table: this.table,
          files,
          offsets,
          errorReports: errorFiles.length > 0 ? 1 : 0,
          schema: cut.schema,
          errorCounts: cut.errorCounts,
          changes: cut.changes,
        });
        await sendReport(this.deps.commit, report, this.deps.settings.reportRetry);
        span.setAttributes({ 'sluice.files': files.length, 'sluice.records': report.recordCount, 'sluice.error_files': errorFiles.length });
        this.log.debug({ flushId: event.flushId, files: files.length, records: report.recordCount, offsets }, 'flush reported');
      },
      // A trace of its own (not whatever context the flush event arrived in), linked to the batches it reports.
      { parent: ROOT_CONTEXT, links: cut.batchLinks },
    );
  }

  /** Files closed for a report that was never sent: nobody else can know about them. */
  private async deleteNeverReported(files: { filePath: string }[]): Promise<void> {
    for (const f of files) await this.deps.files.storage.delete(f.filePath).catch(() => false);
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
      this.unbudget();
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

  /**
   * A failure while writing or closing files, as the error the stream ends with: a typed one
   * (a FileSetError) keeps its kind and names what was being done; anything else (an I/O
   * error, a bug) is logged and INTERNAL, still naming it, since it also ends a flush chain
   * whose failures must be typed.
   */
  private streamError(e: unknown, what: string): SluiceError {
    if (e instanceof SluiceError) return withContext(what, e);
    this.log.error({ err: e }, `unexpected failure ${what}`);
    return new SluiceError(status.INTERNAL, `${what}: ${(e as Error).message}`);
  }

  /** Bytes held in open files (an uncompressed estimate: the records' key and value bytes). */
  get bufferedBytes(): number {
    return this.buffered;
  }
}

/**
 * Each file's keys in row order: a partition's rows filled its files in order, so its keys
 * are dealt out by the files' row counts.
 */
function fileKeys(groups: { key: string | null; files: DataFile[] }[], keysByPartition: Map<string, KeysInOrder>) {
  return groups.flatMap(({ key, files }) => {
    const { keys, positions } = (key === null ? undefined : keysByPartition.get(key)) ?? { keys: [], positions: [] };
    let at = 0;
    return files.map((f) => {
      const slice = {
        filePath: f.filePath,
        keys: keys.slice(at, at + f.recordCount),
        positions: positionsOrNone(positions.slice(at, at + f.recordCount)),
      };
      at += f.recordCount;
      return slice;
    });
  });
}

/** A partition's keys in row order, with their changes' source positions. */
interface KeysInOrder {
  keys: string[];
  positions: number[];
}

/** Positions as a report carries them: none at all when no change had one (most envelopes). */
const positionsOrNone = (positions: number[]) => (positions.some((p) => p > 0) ? positions : []);

/** Whether a change at source position `p` is older than one at `than` (0: unknown, never older). */
export const isOlder = (p: number, than: number) => p > 0 && than > 0 && p < than;

/** Counts by reason, sorted by reason. */
function sortedCounts(byReason: ReadonlyMap<string, number>): ErrorCount[] {
  return [...byReason].map(([reason, count]) => ({ reason, count })).sort((a, b) => a.reason.localeCompare(b.reason));
}
