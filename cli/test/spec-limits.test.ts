/**
 * Spec files are refused by size and nesting depth before the YAML parser sees them: a deeply
 * nested spec printed "Maximum call stack size exceeded" (or ran the parser out of memory),
 * and a 50 MB one ran for minutes.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { MAX_SPEC_BYTES, tooDeepAt } from '../src/spec-limits.js';
import { parseJobSpecText, readJobSpecFile } from '../src/spec.js';
import { tempDir } from '#test-support/temp.js';

const VALID = `
name: orders-to-lake
source: { topic: orders, startFrom: { offsets: { 0: 10 } } }
table:
  database: shop
  name: orders
  partitionBy: { field: __timestamp__, expression: "$[yyyymmddhh24]" }
  columns:
    - { name: id, type: long }
mapping: { fields: [ { column: id, path: "a[0].b" } ] }   # a comment with [[[[ brackets
errors: { policy: errorTopic, topic: 'it''s-[errors' }
`;

const blockNesting = (levels: number) => {
  let text = 'name: j\nproperties:\n';
  for (let i = 1; i <= levels; i++) text += `${'  '.repeat(i)}k${i}:\n`;
  return `${text}${'  '.repeat(levels + 1)}v\n`;
};

describe('spec nesting depth', () => {
  const cases: [string, string, number | undefined][] = [
    ['a real spec, brackets in quotes and comments ignored', VALID, undefined],
    ['32 flow levels', `a: ${'['.repeat(31)}${']'.repeat(31)}`, undefined],
    ['33 flow levels', `a: ${'['.repeat(33)}${']'.repeat(33)}`, 1],
    ['10,000 flow levels', `${'['.repeat(10_000)}${']'.repeat(10_000)}`, 1],
    ['10,000 JSON objects', `${'{"a":'.repeat(10_000)}1${'}'.repeat(10_000)}`, 1],
    ['30 block levels', blockNesting(29), undefined],
    ['40 block levels', blockNesting(40), 34],
    ['40 list markers on one line', `a:\n  ${'- '.repeat(40)}x\n`, 2],
  ];
  for (const [name, text, line] of cases) it(name, () => assert.equal(tooDeepAt(text), line));

  for (const [name, text] of [
    ['flow', `name: j\nsource: ${'['.repeat(10_000)}${']'.repeat(10_000)}\n`],
    ['block', blockNesting(1000)],
    ['JSON', `{"name": ${'['.repeat(10_000)}${']'.repeat(10_000)}}`],
  ])
    it(`a ${name} spec nested 1,000+ levels deep is refused naming the file, not a stack overflow`, () => {
      assert.throws(
        () => parseJobSpecText(text, 'deep.yaml'),
        /^JobSpecError: spec file deep\.yaml: nested deeper than 32 levels \(at line \d+\)$/,
      );
    });
});

describe('spec file size', () => {
  it('a spec file over 1 MiB is refused before it is read, naming the file', async () => {
    const dir = tempDir('spec-limits');
    try {
      const path = join(dir.path, 'big.yaml');
      writeFileSync(path, `name: j\n# ${'x'.repeat(MAX_SPEC_BYTES)}\n`);
      await assert.rejects(readJobSpecFile(path), (err: Error) => {
        assert.match(
          err.message,
          new RegExp(`^spec file ${path.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: \\d+ bytes is more than the 1048576 \\(1 MiB\\)`),
        );
        return true;
      });
      assert.throws(() => parseJobSpecText(`# ${'x'.repeat(MAX_SPEC_BYTES)}`, 'text.yaml'), /spec file text\.yaml: \d+ bytes is more than/);
    } finally {
      dir.remove();
    }
  });
});
