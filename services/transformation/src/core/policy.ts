/**
 * Dirty-data policy: what happens to a record the core refused. Pure: the policy decides
 * and counts, the service does the I/O (produce to the error topic, append to the error
 * table, fail the job).
 *
 * FAIL (also UNSPECIFIED, seed 002's default: skip_error=false and no error topic) stops
 * at the first refused record. SKIP drops it (counted, never silently). SKIP_UP_TO skips
 * up to max_errors records, then fails. ERROR_TOPIC and ERROR_TABLE route it.
 */
import { type ErrorCount, type ErrorPolicy, ErrorPolicyKind, type KafkaHeader, type KafkaRecord } from '#shared/gen/sluice/v1/types.js';
import type { ErrorTableRow } from '#shared/error-table.js';
import type { RecordError } from './errors.js';
import { ERROR_HEADERS } from '#shared/error-topic.js';

/** The record produced to the error topic: the original key, value and headers, plus why and where from. */
export interface ErrorTopicRecord {
  topic: string;
  key: Buffer | null;
  value: Buffer | null;
  headers: KafkaHeader[];
}

export type Decision =
  | { action: 'skip' }
  | { action: 'fail'; message: string }
  | { action: 'error_topic'; record: ErrorTopicRecord }
  | { action: 'error_table'; row: ErrorTableRow };

export class DirtyDataPolicy {
  private readonly counts = new Map<string, number>();
  private refused: number;

  /** `alreadyRefused`: what the job's commits refused before this stream (a SKIP_UP_TO budget spans restarts). */
  constructor(
    private readonly policy: ErrorPolicy | undefined,
    alreadyRefused = 0,
  ) {
    this.refused = alreadyRefused;
  }

  get kind(): ErrorPolicyKind {
    return this.policy?.kind ?? ErrorPolicyKind.ERROR_POLICY_KIND_FAIL;
  }

  /** Counts the refusal and says what to do with the record. */
  decide(rec: KafkaRecord, err: RecordError): Decision {
    this.refused++;
    this.counts.set(err.reason, (this.counts.get(err.reason) ?? 0) + 1);
    const p = this.policy;
    switch (this.kind) {
      case ErrorPolicyKind.ERROR_POLICY_KIND_SKIP:
        return { action: 'skip' };
      case ErrorPolicyKind.ERROR_POLICY_KIND_SKIP_UP_TO: {
        const max = p?.maxErrors ?? 0;
        if (this.refused <= max) return { action: 'skip' };
        return { action: 'fail', message: `more than ${max} dirty records; the last: ${err.message}` };
      }
      case ErrorPolicyKind.ERROR_POLICY_KIND_ERROR_TOPIC:
        return { action: 'error_topic', record: errorTopicRecord(p!.errorTopic, rec, err) };
      case ErrorPolicyKind.ERROR_POLICY_KIND_ERROR_TABLE:
        return { action: 'error_table', row: errorTableRow(rec, err) };
      default:
        return { action: 'fail', message: err.message };
    }
  }

  get refusedCount(): number {
    return this.refused;
  }

  /** Refused records by reason, for BatchAck.error_reasons and job status. */
  errorCounts(): ErrorCount[] {
    return [...this.counts].map(([reason, count]) => ({ reason, count })).sort((a, b) => a.reason.localeCompare(b.reason));
  }
}

/** Checks a policy once, when a job opens. */
export function validatePolicy(p: ErrorPolicy | undefined): string | null {
  if (!p) return null;
  if (p.kind === ErrorPolicyKind.ERROR_POLICY_KIND_ERROR_TOPIC && !p.errorTopic) return 'error policy ERROR_TOPIC needs error_topic';
  if (p.kind === ErrorPolicyKind.ERROR_POLICY_KIND_ERROR_TABLE && !p.errorTable?.table) return 'error policy ERROR_TABLE needs error_table';
  if (p.kind === ErrorPolicyKind.ERROR_POLICY_KIND_SKIP_UP_TO && !(p.maxErrors >= 0))
    return 'error policy SKIP_UP_TO needs max_errors >= 0';
  if (p.kind === ErrorPolicyKind.UNRECOGNIZED) return 'error policy kind is not recognized';
  return null;
}

export function errorTopicRecord(topic: string, rec: KafkaRecord, err: RecordError): ErrorTopicRecord {
  return {
    topic,
    key: rec.key ?? null,
    value: rec.value ?? null,
    headers: [
      ...rec.headers,
      { key: ERROR_HEADERS.reason, value: Buffer.from(err.reason) },
      { key: ERROR_HEADERS.message, value: Buffer.from(err.detail) },
      { key: ERROR_HEADERS.topic, value: Buffer.from(rec.topic) },
      { key: ERROR_HEADERS.partition, value: Buffer.from(String(rec.partition)) },
      { key: ERROR_HEADERS.offset, value: Buffer.from(String(rec.offset)) },
    ],
  };
}

export function errorTableRow(rec: KafkaRecord, err: RecordError): ErrorTableRow {
  return {
    source_topic: rec.topic,
    source_partition: rec.partition,
    source_offset: rec.offset,
    source_timestamp: rec.timestampMs,
    key: rec.key ?? null,
    value: rec.value ?? null,
    reason: `${err.reason}: ${err.detail}`,
    headers: rec.headers,
  };
}
