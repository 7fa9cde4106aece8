/**
 * Flattening below level 1 resolves each field once and keeps it (plan.ts spreadLevels); the
 * reference is `flatten` (flatten.ts), which names every field afresh. Differential: random
 * documents (dotted keys, keys that flatten alike, nulls, arrays, objects at every depth) through
 * a plan at levels 2-4 give the rows the same documents give at level 1 once `flatten` has
 * flattened them, and a refusal exactly when `flatten` names one column twice.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MessageFormat, MessageMode, SchemaEvolution } from '#shared/gen/sluice/v1/types.js';
import { field, mapping, record, schema } from '#test-support/builders.js';
import { compilePlan, RecordError, transformRecord } from '../src/core/index.js';
import { flatten } from '../src/core/flatten.js';
import { seededRandom } from '#test-support/random.js';

const KEYS = ['a', 'b', 'c', 'a.b', 'a_b', 'b_c', 'é', 'x.y.z', 'n'];

function value(rand: () => number, depth: number): unknown {
  const r = rand();
  if (depth < 4 && r < 0.3) return doc(rand, depth + 1);
  if (r < 0.4) return null;
  if (r < 0.5) return [1, 'two', { three: 3 }];
  if (r < 0.75) return Math.floor(rand() * 1e6) - 5e5;
  if (r < 0.85) return rand() < 0.5;
  return `s${Math.floor(rand() * 1000)} ✓`;
}

function doc(rand: () => number, depth = 0): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const n = 1 + Math.floor(rand() * 4);
  for (let i = 0; i < n; i++) out[KEYS[Math.floor(rand() * KEYS.length)]] = value(rand, depth);
  return out;
}

test('levels 2-4 through the kept fields agree with flatten, document by document', () => {
  const rand = seededRandom(17);
  const docs = Array.from({ length: 3000 }, () => doc(rand));
  let refusals = 0;
  for (const level of [2, 3, 4]) {
    // Every column any document flattens to, as text: the plan places fields, and coerces them the same way on both paths.
    const names = [...new Set(docs.flatMap((d) => flatten(d, level).map((e) => e.name)))].sort();
    const table = schema(...names.map((n, i) => field(i + 1, n, 'string')));
    const none = SchemaEvolution.SCHEMA_EVOLUTION_NONE;
    const deep = compilePlan({
      schema: table,
      mapping: mapping({
        format: MessageFormat.MESSAGE_FORMAT_JSON,
        mode: MessageMode.MESSAGE_MODE_VALUE,
        flattenLevel: level,
        schemaEvolution: none,
      }),
    });
    const flat = compilePlan({
      schema: table,
      mapping: mapping({
        format: MessageFormat.MESSAGE_FORMAT_JSON,
        mode: MessageMode.MESSAGE_MODE_VALUE,
        flattenLevel: 1,
        schemaEvolution: none,
      }),
    });
    for (const [i, d] of docs.entries()) {
      const entries = flatten(d, level);
      const got = transformRecord(deep, record(JSON.stringify(d), { offset: i }), { nowMs: 0 });
      const twice = entries.find((e, k) => entries.findIndex((f) => f.name === e.name) !== k);
      if (twice) {
        assert.ok(
          got instanceof RecordError && got.reason === 'field_collision',
          `level ${level}, document ${JSON.stringify(d)}: ${twice.name} twice`,
        );
        refusals++;
        continue;
      }
      const want = transformRecord(flat, record(JSON.stringify(Object.fromEntries(entries.map((e) => [e.name, e.value]))), { offset: i }), {
        nowMs: 0,
      });
      assert.deepEqual(got, want, `level ${level}, document ${JSON.stringify(d)}`);
    }
  }
  assert.ok(refusals > 0, 'the corpus has fields that flatten alike');
});
