/**
 * The one validation of a job definition (shared/src/job-rules.ts), as a table of cases: the
 * field each problem names in the request and in the job spec, and the words it uses.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CompletionPolicy, type DeepPartial, type Job, OffsetResetPolicy, Source, StartFrom } from '#shared/gen/sluice/v1/catalog.js';
import { ErrorPolicyKind, Granularity, MessageFormat, MessageMode } from '#shared/gen/sluice/v1/types.js';
import { jobProblems, sourceProblems } from '#shared/job-rules.js';
import { job as jobOf } from '#test-support/builders.js';

const ref = { database: 'shop', table: 'orders' };
const job = (overrides: DeepPartial<Job> = {}): Job => jobOf('orders-job', 'orders', ref, overrides);
const windowed = (w: DeepPartial<Job['window']>): DeepPartial<Job> => ({
  start: { from: StartFrom.START_FROM_TIMESTAMP, timestampMs: 1000 },
  window: { startTimeMs: 1000, endTimeMs: 2000, completion: CompletionPolicy.COMPLETION_POLICY_END_POSITION, ...w },
});

describe('job rules', () => {
  it('a job with the defaults, and one with every section set, are valid', () => {
    assert.deepEqual(jobProblems(job()), []);
    const full = job({
      mapping: {
        flattenLevel: 4,
        timeZone: 'Asia/Shanghai',
        partitionBy: { column: 'pt', granularity: Granularity.GRANULARITY_HOUR, timeZone: 'Europe/Berlin' },
        errorPolicy: { kind: ErrorPolicyKind.ERROR_POLICY_KIND_ERROR_TOPIC, errorTopic: 'orders-errors' },
      },
      commitIntervalMs: 1000,
      bufferBytes: 1024,
      parallelism: 1024,
      offsetReset: OffsetResetPolicy.OFFSET_RESET_POLICY_EARLIEST,
      ...windowed({ timeZone: 'UTC', allowedLatenessMs: 5000 }),
    });
    assert.deepEqual(jobProblems(full), []);
  });

  // [case, job, request field, spec path, problem]
  const cases: [string, Job, string, string, RegExp][] = [
    [
      'flatten level 9',
      job({ mapping: { flattenLevel: 9 } }),
      'job.mapping.flatten_level',
      'mapping.flattenLevel',
      /^must be at most 4, not 9$/,
    ],
    [
      'flatten level -1',
      job({ mapping: { flattenLevel: -1 } }),
      'job.mapping.flatten_level',
      'mapping.flattenLevel',
      /^must be at least 0, not -1$/,
    ],
    ['parallelism 0', job({ parallelism: 0 }), 'job.parallelism', 'parallelism', /^must be at least 1, not 0$/],
    ['parallelism 10000', job({ parallelism: 10000 }), 'job.parallelism', 'parallelism', /^must be at most 1024, not 10000$/],
    ['commit interval 10', job({ commitIntervalMs: 10 }), 'job.commit_interval_ms', 'commit.intervalMs', /^must be at least 1000, not 10$/],
    [
      'commit interval over a day',
      job({ commitIntervalMs: 86_400_001 }),
      'job.commit_interval_ms',
      'commit.intervalMs',
      /^must be at most 86400000/,
    ],
    ['negative buffer', job({ bufferBytes: -1 }), 'job.buffer_bytes', 'commit.bufferBytes', /^must be at least 1, not -1$/],
    [
      'time zone Mars/Olympus',
      job({ mapping: { timeZone: 'Mars/Olympus' } }),
      'job.mapping.time_zone',
      'mapping.timeZone',
      /^"Mars\/Olympus" is not an IANA time zone/,
    ],
    [
      'partition time zone',
      job({ mapping: { partitionBy: { column: 'pt', timeZone: 'Mars/Olympus' } } }),
      'job.mapping.partition_by.time_zone',
      'table.partitionBy.timeZone',
      /^"Mars\/Olympus" is not an IANA time zone/,
    ],
    ['window time zone', job(windowed({ timeZone: 'Mars/Olympus' })), 'job.window.time_zone', 'window.timeZone', /not an IANA time zone/],
    [
      'a 1 MB time zone is quoted by a prefix',
      job({ mapping: { timeZone: 'x'.repeat(1 << 20) } }),
      'job.mapping.time_zone',
      'mapping.timeZone',
      /^"x{64}"… \(1048576 characters\) is not an IANA time zone/,
    ],
    [
      'errorTopic without a topic',
      job({ mapping: { errorPolicy: { kind: ErrorPolicyKind.ERROR_POLICY_KIND_ERROR_TOPIC } } }),
      'job.mapping.error_policy.error_topic',
      'errors.topic',
      /^is required with policy errorTopic$/,
    ],
    [
      'errorTable without a table',
      job({ mapping: { errorPolicy: { kind: ErrorPolicyKind.ERROR_POLICY_KIND_ERROR_TABLE } } }),
      'job.mapping.error_policy.error_table',
      'errors.table',
      /^is required with policy errorTable$/,
    ],
    [
      'skipUpTo without maxErrors',
      job({ mapping: { errorPolicy: { kind: ErrorPolicyKind.ERROR_POLICY_KIND_SKIP_UP_TO } } }),
      'job.mapping.error_policy.max_errors',
      'errors.maxErrors',
      /^is required with policy skipUpTo$/,
    ],
    [
      'a bad error topic name',
      job({ mapping: { errorPolicy: { kind: ErrorPolicyKind.ERROR_POLICY_KIND_ERROR_TOPIC, errorTopic: 'a b' } } }),
      'job.mapping.error_policy.error_topic',
      'errors.topic',
      /^"a b" is not a valid Kafka topic name$/,
    ],
    [
      'format 99 (UNRECOGNIZED)',
      job({ mapping: { format: MessageFormat.UNRECOGNIZED } }),
      'job.mapping.format',
      'source.format',
      /^is not a known value \(one of MESSAGE_FORMAT_JSON, /,
    ],
    ['mode 99', job({ mapping: { mode: MessageMode.UNRECOGNIZED } }), 'job.mapping.mode', 'source.mode', /^is not a known value/],
    [
      'error policy 99',
      job({ mapping: { errorPolicy: { kind: ErrorPolicyKind.UNRECOGNIZED } } }),
      'job.mapping.error_policy.kind',
      'errors.policy',
      /^is not a known value/,
    ],
    ['start 99', job({ start: { from: StartFrom.UNRECOGNIZED } }), 'job.start.from', 'source.startFrom', /^is not a known value/],
    [
      'offset reset 99',
      job({ offsetReset: OffsetResetPolicy.UNRECOGNIZED }),
      'job.offset_reset',
      'source.offsetReset',
      /^is not a known value/,
    ],
    [
      'completion 99',
      job(windowed({ completion: CompletionPolicy.UNRECOGNIZED })),
      'job.window.completion',
      'window.completion',
      /^is not a known value/,
    ],
    [
      'a 1 MB job name',
      jobOf('j'.repeat(1 << 20), 'orders', ref),
      'job.name',
      'name',
      /^"j{64}"… \(1048576 characters\) is longer than 128 characters$/,
    ],
    ['an upper-case source', jobOf('j', 'Orders', ref), 'job.source', 'source.name', /^"Orders" must be lower case$/],
    ['no table', jobOf('j', 'orders', undefined as never), 'job.table', 'table', /^is required$/],
    [
      'a table name with a slash',
      jobOf('j', 'orders', { database: 'shop', table: '../x' }),
      'job.table.table',
      'table.name',
      /^"..\/x" must match/,
    ],
    [
      'window ends before it starts',
      job(windowed({ endTimeMs: 500 })),
      'job.window.end_time_ms',
      'window.end',
      /^must be after window.start$/,
    ],
    [
      'idle completion without a timeout',
      job(windowed({ completion: CompletionPolicy.COMPLETION_POLICY_IDLE })),
      'job.window.idle_timeout_ms',
      'window.idleTimeoutMs',
      /^is required when completion is idle$/,
    ],
    [
      'idle timeout under END_POSITION',
      job(windowed({ idleTimeoutMs: 5000 })),
      'job.window.idle_timeout_ms',
      'window.idleTimeoutMs',
      /^applies only when completion is idle$/,
    ],
    [
      'negative lateness',
      job(windowed({ allowedLatenessMs: -5 })),
      'job.window.allowed_lateness_ms',
      'window.allowedLatenessMs',
      /^must be at least 0, not -5$/,
    ],
    [
      'a window job starting from latest',
      job({ ...windowed({}), start: { from: StartFrom.START_FROM_LATEST } }),
      'job.start',
      'source.startFrom',
      /^a bounded job \(with a window\) starts at its window start/,
    ],
    [
      'offsets naming no partition',
      job({ start: { from: StartFrom.START_FROM_OFFSETS } }),
      'job.start.offsets',
      'source.startFrom.offsets',
      /^names no partition$/,
    ],
    [
      'a negative offset',
      job({ start: { from: StartFrom.START_FROM_OFFSETS, offsets: [{ partition: 3, offset: -1 }] } }),
      'job.start.offsets',
      'source.startFrom.offsets.3',
      /^offset must be a whole number ≥ 0, not -1$/,
    ],
  ];
  for (const [name, input, field, specPath, problem] of cases) {
    it(`refuses ${name}`, () => {
      const [first] = jobProblems(input);
      assert.ok(first, `${name}: no problem found`);
      assert.equal(first.field, field);
      assert.equal(first.specPath, specPath);
      assert.match(first.problem, problem);
      assert.ok(first.problem.length < 200, 'the message quotes at most a prefix of the input');
    });
  }
});

describe('source rules', () => {
  const valid = Source.fromPartial({ name: 'orders', topic: 'orders', brokers: ['localhost:9092', '[::1]:9092', '10.0.0.1:9092'] });
  it('a valid source', () => assert.deepEqual(sourceProblems(valid, 'source'), []));
  // [case, source, request field, spec path (in a job spec), problem]
  const cases: [string, Source, string, string, RegExp][] = [
    ['a broker without a port', { ...valid, brokers: ['nohost'] }, 'source.brokers.0', 'source.brokers.0', /^"nohost" is not host:port$/],
    ['format 99', { ...valid, format: MessageFormat.UNRECOGNIZED }, 'source.format', 'source.format', /^is not a known value/],
    ['mode 99', { ...valid, mode: MessageMode.UNRECOGNIZED }, 'source.mode', 'source.mode', /^is not a known value/],
    ['a bad topic', { ...valid, topic: 'a/b' }, 'source.topic', 'source.topic', /^"a\/b" is not a valid Kafka topic name$/],
    [
      'a 1 MB topic',
      { ...valid, topic: 't'.repeat(1 << 20) },
      'source.topic',
      'source.topic',
      /^"t{64}"… \(1048576 characters\) is not a valid/,
    ],
    [
      'a two-character CSV delimiter',
      { ...valid, csv: { delimiter: ';;', quote: '"', columns: [] } },
      'source.csv.delimiter',
      'source.csv.delimiter',
      /^must be exactly one character$/,
    ],
  ];
  for (const [name, input, field, specPath, problem] of cases)
    it(`refuses ${name}`, () => {
      const [first] = sourceProblems(input, 'source');
      assert.deepEqual([first?.field, first?.specPath], [field, specPath]);
      assert.match(first.problem, problem);
    });
  it('names the spec key without a prefix for `sluice source add`', () =>
    assert.equal(sourceProblems({ ...valid, brokers: ['x'] }, '')[0].specPath, 'brokers.0'));
});
