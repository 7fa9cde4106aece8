/** The catalog's pure rules, as tables of cases. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { JobState } from '#shared/gen/sluice/v1/catalog.js';
import { canTransition, isQuiescent } from '../src/job-state.js';
import { nameProblem, validResourceName } from '#shared/names.js';
import { checkOffsetRanges } from '../src/offsets.js';
import { checkEvolvedSchema, typeChangeProblem } from '../src/schema-evolution.js';
import type { SchemaJson } from '#shared/iceberg/index.js';

test('name rule', () => {
  const cases: [string, boolean][] = [
    ['orders', true],
    ['_staging', true],
    ['t2', true],
    ['a'.repeat(128), true],
    ['', false],
    ['2t', false],
    ['Orders', false],
    ['a-b', false],
    ['a.b', false],
    ['../x', false],
    ['a/b', false],
    ['a'.repeat(129), false],
  ];
  for (const [name, ok] of cases) assert.equal(nameProblem(name) === undefined, ok, name);
});

test('source and job name rule: hyphens allowed, never dots or slashes', () => {
  const cases: [string, boolean][] = [
    ['orders-to-lake', true],
    ['orders_hourly', true],
    ['2024-backfill', true],
    ['a'.repeat(128), true],
    ['', false],
    ['-orders', false],
    ['Orders', false],
    ['a.b', false],
    ['a/b', false],
    ['a b', false],
    ['a'.repeat(129), false],
  ];
  for (const [name, ok] of cases) {
    let accepted = true;
    try {
      validResourceName(name, 'job.name');
    } catch {
      accepted = false;
    }
    assert.equal(accepted, ok, name);
  }
  assert.throws(() => validResourceName('Orders', 'job.name'), /job.name "Orders" must be lower case/);
});

test('offset continuity', () => {
  const committed = [{ topic: 't', partition: 0, nextOffset: 10 }];
  // Partition 0's start is superseded by its commit; partition 1 has not committed yet.
  const starts = [
    { topic: 't', partition: 0, offset: 0 },
    { topic: 't', partition: 1, offset: 500 },
  ];
  const r = (partition: number, startOffset: number, endOffset: number) => ({ topic: 't', partition, startOffset, endOffset });
  const cases: [string, ReturnType<typeof r>[], string | undefined][] = [
    ['continues', [r(0, 10, 20)], undefined],
    ['empty range continues', [r(0, 10, 10)], undefined],
    ['first commit of a partition starts at its recorded start', [r(1, 500, 600)], undefined],
    ['first commit past the recorded start skips data', [r(1, 505, 600)], 'discontinuous'],
    ['first commit before the recorded start', [r(1, 499, 600)], 'discontinuous'],
    ['no commit and no recorded start: no start is allowed', [r(2, 0, 10)], 'unstarted'],
    ['the recorded start after a commit is a replay', [r(0, 0, 10)], 'discontinuous'],
    ['gap', [r(0, 11, 20)], 'discontinuous'],
    ['overlap', [r(0, 9, 20)], 'discontinuous'],
    ['replay', [r(0, 0, 10)], 'discontinuous'],
    ['backwards range', [r(0, 10, 9)], 'invalid'],
    ['negative start', [r(2, -1, 3)], 'invalid'],
    ['duplicate partition', [r(1, 500, 501), r(1, 501, 502)], 'invalid'],
  ];
  for (const [name, ranges, kind] of cases) assert.equal(checkOffsetRanges('j', ranges, committed, starts)?.kind, kind, name);
  assert.match(
    checkOffsetRanges('j', [r(1, 505, 600)], committed, starts)!.message,
    /offset gap on t\/1: job j starts at offset 500 \(its recorded start\) but this commit starts at 505/,
  );
  assert.match(checkOffsetRanges('j', [r(2, 0, 10)], committed, starts)!.message, /job j has no start recorded on t\/2/);
});

test('type widening', () => {
  const cases: [string, string, boolean][] = [
    ['int', 'long', true],
    ['float', 'double', true],
    ['decimal(9, 2)', 'decimal(18, 2)', true],
    ['long', 'long', true],
    ['long', 'int', false],
    ['double', 'float', false],
    ['int', 'double', false],
    ['int', 'string', false],
    ['decimal(9, 2)', 'decimal(9, 3)', false],
    ['decimal(9, 2)', 'decimal(8, 2)', false],
    ['date', 'timestamp', false],
  ];
  for (const [from, to, ok] of cases) assert.equal(typeChangeProblem(from, to) === undefined, ok, `${from} -> ${to}`);
});

test("a writer's evolved schema (CommitTable AddSchema) is checked by the evolution rules", () => {
  const current: SchemaJson = {
    type: 'struct',
    'schema-id': 0,
    fields: [
      { id: 1, name: 'id', required: true, type: 'long' },
      { id: 2, name: 'n', required: false, type: 'int' },
    ],
  };
  const withFields = (...extra: SchemaJson['fields']): SchemaJson => ({ ...current, fields: [...current.fields, ...extra] });
  const cases: [string, SchemaJson, RegExp | null][] = [
    ['unchanged', current, null],
    ['a new optional column after the last id', withFields({ id: 4, name: 'tag', required: false, type: 'string' }), null],
    ['int widened to long', { ...current, fields: [current.fields[0], { ...current.fields[1], type: 'long' }] }, null],
    [
      'a new column reusing an id',
      withFields({ id: 3, name: 'tag', required: false, type: 'string' }),
      /has id 3, not after the last column id 3/,
    ],
    ['a new required column', withFields({ id: 4, name: 'tag', required: true, type: 'string' }), /cannot add required column tag/],
    [
      'a new column with a taken name',
      withFields({ id: 4, name: 'n', required: false, type: 'string' }),
      /has the name of an existing column/,
    ],
    ['a dropped column', { ...current, fields: [current.fields[0]] }, /column n \(id 2\) would be dropped/],
    ['a renamed column', { ...current, fields: [current.fields[0], { ...current.fields[1], name: 'm' }] }, /column id 2 is n, not m/],
    ['long narrowed to int', { ...current, fields: [{ ...current.fields[0], type: 'int' }, current.fields[1]] }, /cannot change id/],
  ];
  for (const [name, proposed, problem] of cases) {
    if (problem === null) assert.doesNotThrow(() => checkEvolvedSchema(current, proposed, 3, 'updates[0].add_schema'), name);
    else assert.throws(() => checkEvolvedSchema(current, proposed, 3, 'updates[0].add_schema'), problem, name);
  }
});

test('job state machine', () => {
  const S = JobState;
  const cases: [JobState, JobState, boolean][] = [
    [S.JOB_STATE_CREATED, S.JOB_STATE_RUNNING, true],
    [S.JOB_STATE_RUNNING, S.JOB_STATE_PAUSED, true],
    [S.JOB_STATE_PAUSED, S.JOB_STATE_RUNNING, true],
    [S.JOB_STATE_RUNNING, S.JOB_STATE_FINISHED, true],
    [S.JOB_STATE_FAILED, S.JOB_STATE_RUNNING, true],
    [S.JOB_STATE_RUNNING, S.JOB_STATE_RUNNING, true],
    [S.JOB_STATE_FINISHED, S.JOB_STATE_RUNNING, false],
    [S.JOB_STATE_RUNNING, S.JOB_STATE_CREATED, false],
    [S.JOB_STATE_STOPPED, S.JOB_STATE_PAUSED, false],
  ];
  for (const [from, to, ok] of cases) assert.equal(canTransition(from, to), ok, `${from} -> ${to}`);
  assert.equal(isQuiescent(S.JOB_STATE_RUNNING), false);
  assert.equal(isQuiescent(S.JOB_STATE_STOPPED), true);
});
