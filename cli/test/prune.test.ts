import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ColumnStats } from '#shared/gen/sluice/v1/types.js';
import { field } from '#test-support/builders.js';
import { parsePrimitive, serializeSingleValue } from '#shared/iceberg/single-value.js';
import { columnRanges, fileMayMatch } from '../src/prune.js';

const fields = [
  field(1, 'id', 'long'),
  field(2, 'n', 'int'),
  field(3, 'price', 'double'),
  field(4, 'name', 'string'),
  field(5, 'f', 'float'),
];

/** Stats of a file whose columns hold [lo, hi]. */
function stats(bounds: Record<number, [number | bigint, number | bigint]>): ColumnStats[] {
  return Object.entries(bounds).map(([id, [lo, hi]]) => {
    const type = parsePrimitive(fields.find((f) => f.id === Number(id))!.type!.kind!.value as string);
    return {
      fieldId: Number(id),
      columnSize: 0,
      valueCount: 0,
      nullValueCount: 0,
      nanValueCount: 0,
      lowerBound: serializeSingleValue(type, lo),
      upperBound: serializeSingleValue(type, hi),
    };
  });
}

test('columnRanges: which WHERE clauses prune, and which prune nothing', () => {
  const cases: [string, string, string][] = [
    ['a comparison', 'SELECT * FROM s.t WHERE id > 10', 'id>10'],
    ['reversed', 'SELECT * FROM s.t WHERE 10 <= id', 'id>=10'],
    ['equality on int', 'SELECT count(*) FROM s.t WHERE n = 3 GROUP BY 1', 'n>=3,n<=3'],
    ['BETWEEN and AND', 'SELECT * FROM s.t WHERE id BETWEEN 5 AND 9 AND price < 2.5 ORDER BY id', 'id>=5,id<=9 price<2.5'],
    ['the tighter bound wins', 'SELECT * FROM s.t WHERE id > 5 AND id >= 7 AND id < 20 AND id <= 20', 'id>=7,id<20'],
    ['a string literal with OR inside is only a literal', "SELECT * FROM s.t WHERE name = 'a OR (b)' AND id > 1", 'id>1'],
    ['OR prunes nothing', 'SELECT * FROM s.t WHERE id > 10 OR id < 0', ''],
    ['NOT prunes nothing', 'SELECT * FROM s.t WHERE NOT id > 10', ''],
    ['parentheses prune nothing', 'SELECT * FROM s.t WHERE (id > 10)', ''],
    ['a join prunes nothing', 'SELECT * FROM s.t JOIN s.u ON true WHERE id > 10', ''],
    ['a subquery prunes nothing', 'SELECT * FROM s.t WHERE id > 10 AND 1 IN (SELECT 1)', ''],
    ['strings and floats are not pruned on', "SELECT * FROM s.t WHERE name > 'm' AND f < 1", ''],
    ['a fraction against an integer column is left alone', 'SELECT * FROM s.t WHERE id > 2.5', ''],
    ['no WHERE', 'SELECT * FROM s.t', ''],
    ['an expression on the column', 'SELECT * FROM s.t WHERE id + 0 > 10', ''],
  ];
  for (const [name, sql, expected] of cases) {
    const described = [...columnRanges(sql, fields)]
      .map(([column, r]) =>
        [
          r.lower ? `${column}${r.lower.inclusive ? '>=' : '>'}${r.lower.value}` : '',
          r.upper ? `${column}${r.upper.inclusive ? '<=' : '<'}${r.upper.value}` : '',
        ]
          .filter(Boolean)
          .join(','),
      )
      .join(' ');
    assert.equal(described, expected, name);
  }
});

test('fileMayMatch: a file is skipped only when its bounds rule every row out', () => {
  const file = stats({ 1: [100n, 200n], 2: [1, 5], 3: [0.5, 9.5] });
  const cases: [string, boolean][] = [
    ['SELECT * FROM s.t WHERE id > 200', false],
    ['SELECT * FROM s.t WHERE id >= 200', true],
    ['SELECT * FROM s.t WHERE id < 100', false],
    ['SELECT * FROM s.t WHERE id <= 100', true],
    ['SELECT * FROM s.t WHERE id = 150', true],
    ['SELECT * FROM s.t WHERE id = 99', false],
    ['SELECT * FROM s.t WHERE id BETWEEN 201 AND 300', false],
    ['SELECT * FROM s.t WHERE n > 5', false],
    ['SELECT * FROM s.t WHERE n >= 5 AND id > 150', true],
    ['SELECT * FROM s.t WHERE price > 9.5', false],
    ['SELECT * FROM s.t WHERE price < 0.6', true],
    ['SELECT * FROM s.t WHERE id > 200 OR n = 1', true],
  ];
  for (const [sql, expected] of cases) assert.equal(fileMayMatch(columnRanges(sql, fields), file), expected, sql);
  assert.equal(fileMayMatch(columnRanges('SELECT * FROM s.t WHERE id > 500', fields), []), true, 'no stats: read it');
  const promoted = stats({ 2: [1, 5] }).map((s) => ({ ...s, fieldId: 1 })); // 4-byte bounds of a column now long
  assert.equal(fileMayMatch(columnRanges('SELECT * FROM s.t WHERE id > 500', fields), promoted), true, 'bounds of another width: read it');
});
