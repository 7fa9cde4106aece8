import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { PartitionStatus } from '#shared/gen/sluice/v1/ingestion.js';
import { progressBar, progressOf } from '../src/commands/job.js';
import { humanLogLine, humanLogWriter } from '../src/log-lines.js';

describe('sluice up: log lines for a person', () => {
  const cases: [string, string, string][] = [
    [
      'a service log record',
      '{"level":"info","time":"2026-12-03T17:05:12.301Z","service":"commit","table":"demo.orders","files":1,"msg":"snapshot committed"}',
      '17:05:12.301 INFO  commit         snapshot committed  table=demo.orders files=1',
    ],
    [
      'values with spaces are quoted, objects as JSON',
      '{"level":"warn","time":"2026-12-03T17:05:12.301Z","service":"ingestion","err":"no such topic","kafkajs":{"a":1},"msg":"retrying"}',
      '17:05:12.301 WARN  ingestion      retrying  err="no such topic" kafkajs={"a":1}',
    ],
    ['not JSON passes unchanged', 'sluice: all services SERVING', 'sluice: all services SERVING'],
    ['JSON that is not a log record passes unchanged', '{"rows":3}', '{"rows":3}'],
    ['broken JSON passes unchanged', '{"level":"info"', '{"level":"info"'],
  ];
  for (const [name, line, expected] of cases) it(name, () => assert.equal(humanLogLine(line), expected));

  it('rewrites whole lines only, however the chunks split them', () => {
    const out: string[] = [];
    const write = humanLogWriter((text) => out.push(text));
    write('{"level":"info","time":"2026-12-03T17:05:12.301Z","service":"catalog","ms');
    assert.deepEqual(out, []);
    write('g":"catalog serving"}\nplain\n');
    assert.deepEqual(out, ['17:05:12.301 INFO  catalog        catalog serving\nplain\n']);
  });
});

describe('sluice job status: progress of a bounded job', () => {
  const p = (committedOffset: number, endOffset?: number): PartitionStatus =>
    ({ topic: 't', partition: 0, position: 0, highWatermark: 0, committedOffset, lag: 0, workerId: '', endOffset }) as PartitionStatus;
  const cases: [string, PartitionStatus[], number | undefined][] = [
    ['a continuous job has no progress', [p(5)], undefined],
    ['ends not all found yet: no guess', [p(5, 10), p(3)], undefined],
    ['committed against the ends', [p(5, 10), p(10, 10)], 0.75],
    ['nothing committed yet (-1)', [p(-1, 10)], 0],
    ['empty partitions are done', [p(-1, 0)], 1],
  ];
  for (const [name, partitions, expected] of cases) it(name, () => assert.equal(progressOf({ partitions }), expected));

  it('draws a bar of 20 cells', () => {
    assert.equal(progressBar(0.5), '[##########..........]  50%');
    assert.equal(progressBar(1), '[####################] 100%');
    assert.equal(progressBar(0), '[....................]   0%');
  });
});
