/**
 * Recognises a report delivered twice: a lost response makes transformation send the same
 * report again (same worker, flush and table). Admitting the copy would find its offsets
 * already taken (stale) and rewind a worker that did nothing wrong; the copy is answered
 * accepted and ignored instead.
 *
 * A worker reports one flush at a time and retries only the report in flight, so the last
 * delivery per (worker, table) is all there is to remember. A copy must also carry the same
 * offsets and files: a different report under a reused flush id is not a duplicate, and
 * admission judges it. Pure; a worker's entries are forgotten when it goes away.
 */
import type { ReportDataFilesRequest } from '#shared/gen/sluice/v1/commit.js';

/** What makes two deliveries the same report. */
export function deliveryKey(r: ReportDataFilesRequest): string {
  let key = `${r.flushId}|${r.recordCount}|${r.errorReports ?? 0}`;
  for (const o of r.offsets) key += `|${o.topic}/${o.partition}:${o.startOffset}-${o.endOffset}`;
  for (const f of r.files) key += `|${f.filePath}`;
  return key;
}

const tableOf = (r: ReportDataFilesRequest) => `${r.table?.database}.${r.table?.table}`;

export class DeliveryLog {
  private readonly last = new Map<string, Map<string, string>>();

  /** Records a delivery; true when it repeats the last one of its worker and table. */
  repeated(r: ReportDataFilesRequest): boolean {
    const key = deliveryKey(r);
    let tables = this.last.get(r.workerId);
    if (!tables) this.last.set(r.workerId, (tables = new Map()));
    if (tables.get(tableOf(r)) === key) return true;
    tables.set(tableOf(r), key);
    return false;
  }

  forget(workerId: string): void {
    this.last.delete(workerId);
  }

  workerIds(): string[] {
    return [...this.last.keys()];
  }
}
