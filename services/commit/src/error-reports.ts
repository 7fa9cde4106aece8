/**
 * Error-table reports waiting for their data report (DESIGN.md, "Error table"). Under the
 * ERROR_TABLE policy transformation reports the error table's files of a flush first, then
 * the data report of the same flush, which says how many error reports came before it
 * (`error_reports`). The data report takes them from here and they travel together: the
 * round that admits the data report commits the error rows first.
 *
 * Whatever is left belongs to a stream that died between its two reports: it is forgotten
 * when the worker says goodbye or expires. If such a worker does report later, its data
 * report finds its error reports missing and is dropped with a rewind, never committed alone.
 */
import type { ReportDataFilesRequest } from '#shared/gen/sluice/v1/commit.js';

export class ErrorReports {
  private readonly byWorker = new Map<string, ReportDataFilesRequest[]>();

  add(report: ReportDataFilesRequest): void {
    const list = this.byWorker.get(report.workerId);
    if (list) list.push(report);
    else this.byWorker.set(report.workerId, [report]);
  }

  /** Removes and returns the error reports of one worker's flush. */
  take(workerId: string, flushId: string): ReportDataFilesRequest[] {
    const list = this.byWorker.get(workerId);
    if (!list) return [];
    const mine = list.filter((r) => r.flushId === flushId);
    const rest = list.filter((r) => r.flushId !== flushId);
    if (rest.length > 0) this.byWorker.set(workerId, rest);
    else this.byWorker.delete(workerId);
    return mine;
  }

  /** Drops what a worker left behind; returns how many reports that was. */
  forget(workerId: string): number {
    const n = this.byWorker.get(workerId)?.length ?? 0;
    this.byWorker.delete(workerId);
    return n;
  }

  /** Every file waiting here (orphan cleanup must leave them alone). */
  files(): string[] {
    const out: string[] = [];
    for (const list of this.byWorker.values()) for (const r of list) for (const f of r.files) out.push(f.filePath);
    return out;
  }
}
