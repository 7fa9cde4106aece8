/**
 * The commit service's metrics (shared/src/metrics.ts): what each commit adds and how long it
 * takes, per table and job, and how often workers are rewound. Made once, after the process's
 * meter provider is registered.
 */
import type { DataFile } from '#shared/gen/sluice/v1/types.js';
import { meter } from '#shared/metrics.js';

export interface CommitMetrics {
  committed(where: { table: string; job: string }, files: readonly DataFile[], rows: number, seconds: number): void;
  rewound(where: { table: string; job: string }, workers: number): void;
  /** A flush round ended: from the flush event to its commit (or its failure). */
  roundEnded(where: { table: string; job: string }, seconds: number): void;
}

let instruments: CommitMetrics | undefined;

export function commitMetrics(): CommitMetrics {
  if (instruments) return instruments;
  const m = meter();
  const duration = m.createHistogram('sluice_commit_duration_seconds', {
    description: 'Time from a round starting its commit to the catalog transaction that made the snapshot current.',
    unit: 's',
    advice: { explicitBucketBoundaries: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30] },
  });
  const commits = m.createCounter('sluice_commits', { description: 'Snapshots committed with their offsets.' });
  const files = m.createCounter('sluice_commit_files', { description: 'Data files added by commits.' });
  const rows = m.createCounter('sluice_commit_rows', { description: 'Rows added by commits.' });
  const bytes = m.createCounter('sluice_commit_bytes', { description: 'Bytes of the data files added by commits.', unit: 'By' });
  const rounds = m.createHistogram('sluice_flush_round_duration_seconds', {
    description:
      'Time from a flush event to the end of its round: every live worker reported (or the deadline passed) and the commit done.',
    unit: 's',
    advice: { explicitBucketBoundaries: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60] },
  });
  const rewinds = m.createCounter('sluice_rewinds', { description: 'Workers told to re-read from the committed offsets.' });
  instruments = {
    committed(where, added, rowCount, seconds) {
      duration.record(seconds, where);
      commits.add(1, where);
      files.add(added.length, where);
      rows.add(rowCount, where);
      bytes.add(
        added.reduce((sum, f) => sum + f.fileSizeInBytes, 0),
        where,
      );
    },
    rewound(where, workers) {
      rewinds.add(workers, where);
    },
    roundEnded(where, seconds) {
      rounds.record(seconds, where);
    },
  };
  return instruments;
}
