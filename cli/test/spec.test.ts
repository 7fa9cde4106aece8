import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CompletionPolicy, StartFrom } from '#shared/gen/sluice/v1/catalog.js';
import { ErrorPolicyKind, Granularity, MessageFormat, SchemaEvolution, TimeSource } from '#shared/gen/sluice/v1/types.js';
import { JobSpecError, parseJobSpecText, planJob } from '../src/spec.js';

const ISSUE_EXAMPLE = `
name: orders-to-lake
source: { brokers: [localhost:9092], topic: orders, format: JSON, mode: VALUE, startFrom: earliest }
table: { database: shop, name: orders, partitionBy: { field: __timestamp__, granularity: HOUR, timeZone: Asia/Shanghai } }
mapping: { flattenLevel: 1 }
commit: { intervalMs: 5000 }
errors: { policy: errorTopic, topic: orders-errors }
`;

describe('job spec files', () => {
  it('the example from the docs becomes a source, a partitioned table and a job', () => {
    const plan = parseJobSpecText(ISSUE_EXAMPLE);
    assert.deepEqual(plan.source.brokers, ['localhost:9092']);
    assert.equal(plan.source.name, 'orders-to-lake');
    assert.equal(plan.source.format, MessageFormat.MESSAGE_FORMAT_JSON);
    assert.deepEqual(plan.table.ref, { database: 'shop', table: 'orders' });
    assert.equal(plan.table.columns, undefined, 'no columns: the CLI infers them from samples');
    assert.equal(plan.table.partitionColumn, 'pt');
    assert.deepEqual(
      plan.table.partitionSpec.fields.map((f) => [f.sourceName, f.transform]),
      [['pt', 'identity']],
    );
    const { job } = plan;
    assert.equal(job.start?.from, StartFrom.START_FROM_EARLIEST);
    assert.equal(job.commitIntervalMs, 5000);
    assert.equal(job.mapping?.flattenLevel, 1);
    assert.deepEqual(job.mapping?.partitionBy, {
      column: 'pt',
      timeSource: TimeSource.TIME_SOURCE_RECORD_TIME,
      granularity: Granularity.GRANULARITY_HOUR,
      timeZone: 'Asia/Shanghai',
      field: '',
      expression: '',
      value: '',
    });
    assert.deepEqual(job.mapping?.errorPolicy, {
      kind: ErrorPolicyKind.ERROR_POLICY_KIND_ERROR_TOPIC,
      maxErrors: 0,
      errorTopic: 'orders-errors',
      errorTable: undefined,
    });
  });

  it('JSON works as well as YAML, and the defaults are the documented ones', () => {
    const plan = parseJobSpecText(JSON.stringify({ name: 'j', source: { topic: 't' }, table: { database: 'd', name: 't' } }));
    assert.equal(plan.job.commitIntervalMs, 300_000);
    assert.equal(plan.job.parallelism, 1);
    assert.equal(plan.job.start?.from, StartFrom.START_FROM_UNSPECIFIED);
    assert.equal(plan.job.mapping?.errorPolicy?.kind, ErrorPolicyKind.ERROR_POLICY_KIND_FAIL);
    assert.deepEqual(plan.table.partitionSpec.fields, []);
    assert.equal(plan.job.mapping?.flattenLevel, 1, "seed 000's default flatten level");
    assert.equal(plan.job.mapping?.schemaEvolution, SchemaEvolution.SCHEMA_EVOLUTION_AUTO, 'new JSON fields become columns');
    const off = parseJobSpecText(
      JSON.stringify({
        name: 'j',
        source: { topic: 't' },
        table: { database: 'd', name: 't' },
        mapping: { schemaEvolution: 'none', flattenLevel: 0 },
      }),
    );
    assert.equal(off.job.mapping?.schemaEvolution, SchemaEvolution.SCHEMA_EVOLUTION_NONE);
    assert.equal(off.job.mapping?.flattenLevel, 0, 'an explicit 0 stays 0');
    assert.equal(plan.table.ifExists, 'fail', 'an existing table is refused unless the spec says use (seed 000)');
    const use = parseJobSpecText('{"name":"j","source":{"topic":"t"},"table":{"database":"d","name":"t","ifExists":"use"}}');
    assert.equal(use.table.ifExists, 'use');
  });

  it('a bounded window in a time zone resolves to instants, DST included, and starts the job at its start', () => {
    const plan = planJob(
      {
        name: 'backfill',
        source: { topic: 'orders' },
        table: { database: 'shop', name: 'orders', columns: [{ name: 'id', type: 'long', required: true }] },
        window: {
          start: '2024-03-10 00:00',
          end: '2024-03-10 04:00:00',
          timeZone: 'America/New_York',
          completion: 'idle',
          idleTimeoutMs: 30000,
        },
      },
      { warehouse: '/wh' },
    );
    // New York switches from UTC-5 to UTC-4 at 02:00 local that night: 4 local hours are 3 real ones.
    assert.equal(plan.job.window?.startTimeMs, Date.parse('2024-03-10T05:00:00Z'));
    assert.equal(plan.job.window?.endTimeMs, Date.parse('2024-03-10T08:00:00Z'));
    assert.equal(plan.job.window?.completion, CompletionPolicy.COMPLETION_POLICY_IDLE);
    assert.deepEqual(plan.job.start, {
      from: StartFrom.START_FROM_TIMESTAMP,
      timestampMs: Date.parse('2024-03-10T05:00:00Z'),
      offsets: [],
    });
    assert.equal(plan.table.location, '/wh/shop/orders');
  });

  it('an END_POSITION window takes an allowed lateness (default 0)', () => {
    const spec = (window: object) => ({ name: 'j', source: { topic: 't' }, table: { database: 'd', name: 't' }, window });
    assert.equal(parseJobSpecText(JSON.stringify(spec({ start: 0, end: 1 }))).job.window?.allowedLatenessMs, 0);
    const late = parseJobSpecText(JSON.stringify(spec({ start: 0, end: 1, allowedLatenessMs: 600000 }))).job.window;
    assert.equal(late?.allowedLatenessMs, 600_000);
    assert.equal(late?.completion, CompletionPolicy.COMPLETION_POLICY_END_POSITION);
  });

  it('explicit columns, field paths, offsets and Iceberg partition transforms', () => {
    const plan = planJob(
      {
        name: 'cdc',
        source: { topic: 'orders', format: 'csv', csv: { columns: ['id', 'ts'] }, startFrom: { offsets: { 0: 5, 3: 10 } } },
        table: {
          database: 'shop',
          name: 'orders',
          columns: [
            { name: 'id', type: 'long' },
            { name: 'ts', type: 'timestamptz' },
          ],
          partitionSpec: [
            { column: 'ts', transform: 'day' },
            { column: 'id', transform: 'bucket[16]' },
          ],
        },
        mapping: { fields: [{ column: 'id', path: 'a.b[0]' }] },
      },
      { warehouse: '' },
    );
    assert.deepEqual(plan.job.start?.offsets, [
      { partition: 0, offset: 5 },
      { partition: 3, offset: 10 },
    ]);
    assert.deepEqual(
      plan.table.partitionSpec.fields.map((f) => `${f.transform}(${f.sourceName})`),
      ['day(ts)', 'bucket[16](id)'],
    );
    assert.equal(plan.job.mapping?.csv?.delimiter, ',');
  });

  const bad: [string, unknown, RegExp][] = [
    ['missing name', { source: { topic: 't' }, table: { database: 'd', name: 't' } }, /^name: is required$/],
    [
      'bad job name',
      { name: 'Bad Name', source: { topic: 't' }, table: { database: 'd', name: 't' } },
      /^name: "Bad Name" must be lower-case/,
    ],
    ['missing topic', { name: 'j', source: {}, table: { database: 'd', name: 't' } }, /^source.topic: is required$/],
    [
      'typo with a suggestion',
      { name: 'j', source: { topic: 't', formta: 'JSON' }, table: { database: 'd', name: 't' } },
      /^source.formta: is not a known key \(did you mean format\?\)$/,
    ],
    [
      'unknown format',
      { name: 'j', source: { topic: 't', format: 'AVRO' }, table: { database: 'd', name: 't' } },
      /^source.format: "AVRO" is not one of JSON, TEXT, CSV, FLATTEN, BINARY$/,
    ],
    [
      'bad startFrom',
      { name: 'j', source: { topic: 't', startFrom: 'soonest' }, table: { database: 'd', name: 't' } },
      /^source.startFrom: must be earliest, latest/,
    ],
    [
      'bad offset',
      { name: 'j', source: { topic: 't', startFrom: { offsets: { 0: -1 } } }, table: { database: 'd', name: 't' } },
      /^source.startFrom.offsets.0: offset must be a whole number/,
    ],
    [
      'bad broker',
      { name: 'j', source: { topic: 't', brokers: ['localhost'] }, table: { database: 'd', name: 't' } },
      /^source.brokers.0: "localhost" is not host:port$/,
    ],
    [
      'table name with a slash',
      { name: 'j', source: { topic: 't' }, table: { database: 'd', name: '../etc' } },
      /^table.name: "..\/etc" must be lower-case/,
    ],
    [
      'bad column type',
      { name: 'j', source: { topic: 't' }, table: { database: 'd', name: 't', columns: [{ name: 'a', type: 'varchar' }] } },
      /^table.columns.0.type: "varchar" is not an Iceberg primitive type$/,
    ],
    [
      'duplicate column',
      {
        name: 'j',
        source: { topic: 't' },
        table: {
          database: 'd',
          name: 't',
          columns: [
            { name: 'a', type: 'int' },
            { name: 'a', type: 'long' },
          ],
        },
      },
      /^table.columns.1.name: column "a" is listed twice$/,
    ],
    [
      'bad time zone',
      { name: 'j', source: { topic: 't' }, table: { database: 'd', name: 't', partitionBy: { timeZone: 'Mars/Olympus' } } },
      /^table.partitionBy.timeZone: "Mars\/Olympus" is not an IANA time zone/,
    ],
    [
      'flatten level 5',
      { name: 'j', source: { topic: 't' }, table: { database: 'd', name: 't' }, mapping: { flattenLevel: 5 } },
      /^mapping.flattenLevel: must be at most 4, not 5$/,
    ],
    [
      'unknown schema evolution',
      { name: 'j', source: { topic: 't' }, table: { database: 'd', name: 't' }, mapping: { schemaEvolution: 'sometimes' } },
      /^mapping.schemaEvolution: "sometimes" is not one of auto, none$/,
    ],
    [
      'interval under 1 s',
      { name: 'j', source: { topic: 't' }, table: { database: 'd', name: 't' }, commit: { intervalMs: 10 } },
      /^commit.intervalMs: must be at least 1000, not 10$/,
    ],
    [
      'skipUpTo without a limit',
      { name: 'j', source: { topic: 't' }, table: { database: 'd', name: 't' }, errors: { policy: 'skipUpTo' } },
      /^errors.maxErrors: is required with policy skipUpTo$/,
    ],
    [
      'errorTopic without a topic',
      { name: 'j', source: { topic: 't' }, table: { database: 'd', name: 't' }, errors: { policy: 'errorTopic' } },
      /^errors.topic: is required with policy errorTopic$/,
    ],
    [
      'window end before start',
      { name: 'j', source: { topic: 't' }, table: { database: 'd', name: 't' }, window: { start: '2024-01-02', end: '2024-01-01' } },
      /^window.end: must be after window.start$/,
    ],
    [
      'impossible date',
      { name: 'j', source: { topic: 't' }, table: { database: 'd', name: 't' }, window: { start: '2024-02-30', end: '2024-03-01' } },
      /^window.start: "2024-02-30": day 30 does not exist in 2024-02$/,
    ],
    [
      'idle without timeout',
      { name: 'j', source: { topic: 't' }, table: { database: 'd', name: 't' }, window: { start: 0, end: 1, completion: 'idle' } },
      /^window.idleTimeoutMs: is required when completion is idle$/,
    ],
    [
      'a negative allowed lateness',
      { name: 'j', source: { topic: 't' }, table: { database: 'd', name: 't' }, window: { start: 0, end: 1, allowedLatenessMs: -5 } },
      /^window.allowedLatenessMs: must be at least 0, not -5$/,
    ],
    [
      'an allowed lateness under completion idle',
      {
        name: 'j',
        source: { topic: 't' },
        table: { database: 'd', name: 't' },
        window: { start: 0, end: 1, completion: 'idle', idleTimeoutMs: 5000, allowedLatenessMs: 1000 },
      },
      /^window.allowedLatenessMs: applies only when completion is endPosition/,
    ],
    [
      'window with latest',
      { name: 'j', source: { topic: 't', startFrom: 'latest' }, table: { database: 'd', name: 't' }, window: { start: 0, end: 1 } },
      /^source.startFrom: a bounded job/,
    ],
    [
      'both partitionings',
      { name: 'j', source: { topic: 't' }, table: { database: 'd', name: 't', partitionBy: {}, partitionSpec: [{ column: 'a' }] } },
      /^table.partitionSpec: use either/,
    ],
    [
      'an unknown table.ifExists',
      { name: 'j', source: { topic: 't' }, table: { database: 'd', name: 't', ifExists: 'replace' } },
      /^table.ifExists: "replace" is not one of fail, use$/,
    ],
    [
      'a fixed[L] column (DuckDB cannot write FIXED_LEN_BYTE_ARRAY; Iceberg readers need it)',
      {
        name: 'j',
        source: { topic: 't' },
        table: {
          database: 'd',
          name: 't',
          columns: [
            { name: 'id', type: 'long' },
            { name: 'fx', type: 'fixed[4]' },
          ],
        },
      },
      /^table.columns.1.type: column "fx" is fixed\[4\]: .*; use binary$/,
    ],
    ['not a mapping', ['a'], /^a job spec must be a mapping/],
  ];
  for (const [what, document, expected] of bad) {
    it(`refuses ${what}, naming the path`, () => {
      assert.throws(
        () => planJob(document, { warehouse: '/wh' }),
        (err: unknown) => err instanceof JobSpecError && expected.test(err.message),
      );
    });
  }

  it('YAML syntax errors name the line', () => {
    const message = (text: string, file: string) => {
      try {
        parseJobSpecText(text, file);
      } catch (err) {
        return (err as Error).message;
      }
      return 'no error';
    };
    assert.match(
      message('name: j\nsource: { topic: t\n', 'orders.yaml'),
      /^orders.yaml is not valid YAML or JSON at line 3, column 1: Flow map/,
    );
    assert.equal(
      message('name: a\nname: b\n', 'dup.yaml'),
      'dup.yaml is not valid YAML or JSON at line 2, column 1: Map keys must be unique',
    );
  });
});

describe('a source on its own (sluice source add)', () => {
  it('is validated like a job spec source, and refuses job-only keys', async () => {
    const { planSource } = await import('../src/spec.js');
    const source = planSource(
      { name: 'orders', topic: 'orders', format: 'csv', csv: { columns: ['a', 'b'] } },
      { warehouse: '', brokers: ['k:9092'] },
    );
    assert.deepEqual(
      [source.name, source.topic, source.format, source.brokers, source.csv?.columns],
      ['orders', 'orders', MessageFormat.MESSAGE_FORMAT_CSV, ['k:9092'], ['a', 'b']],
    );
    assert.throws(() => planSource({ name: 'orders' }, { warehouse: '' }), /^JobSpecError: topic: is required$/);
    assert.throws(
      () => planSource({ name: 'orders', topic: 't', startFrom: 'earliest' }, { warehouse: '' }),
      /startFrom: is not a known key/,
    );
    assert.throws(() => planSource({ topic: 't' }, { warehouse: '' }), /name: is required/);
  });
});

describe('table.key', () =>
  it("names required primitive columns: the table's identifier fields", async () => {
    const { keyedSchema, keyNames } = await import('../src/iceberg-types.js');
    const spec = (
      key: unknown,
      columns: unknown[] = [
        { name: 'id', type: 'long', required: true },
        { name: 'v', type: 'double' },
      ],
    ) => JSON.stringify({ name: 'j', source: { topic: 't' }, table: { database: 'd', name: 't', columns, key } });
    const plan = parseJobSpecText(spec(['id']));
    assert.deepEqual(plan.table.key, ['id']);
    const schema = keyedSchema(plan.table.columns!, plan.table.key);
    assert.deepEqual(schema.identifierFieldIds, [1]);
    assert.deepEqual(keyNames(schema), ['id']);
    const refusals: [unknown, RegExp][] = [
      [['nope'], /^table\.key: key column "nope" is not a column of the table$/],
      [['v'], /^table\.key: key column "v" is double: a key may not be float or double$/],
      [['id', 'id'], /^table\.key: key names a column twice/],
      ['id', /^table\.key: must be a list/],
    ];
    for (const [key, message] of refusals) {
      assert.throws(
        () => parseJobSpecText(spec(key)),
        (e: Error) => message.test(e.message),
        JSON.stringify(key),
      );
    }
    assert.throws(() => parseJobSpecText(spec(['s'], [{ name: 's', type: 'string' }])), /key column "s" must be required/);
  }));
