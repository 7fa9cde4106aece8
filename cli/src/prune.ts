/**
 * Which data files a query can skip, from the column bounds in the manifests: for a table in
 * object storage, a skipped file is one not downloaded (object-cache.ts). Deliberately
 * conservative. Only a single-table SELECT whose WHERE clause is a plain AND of comparisons
 * between a column and a number (`=`, `<`, `<=`, `>`, `>=`, `BETWEEN`) is pruned. Only int,
 * long and double columns are used: their bounds are exact, and comparing them is exact.
 * Anything else (OR, NOT, parentheses, joins, subqueries, another type) prunes nothing, so a
 * query never loses a row it would otherwise have returned. Pure.
 */
import type { ColumnStats, Field } from '#shared/gen/sluice/v1/types.js';
import { deserializeSingleValue, parsePrimitive } from '#shared/iceberg/single-value.js';

type Bound = { value: number | bigint; inclusive: boolean };
export interface ColumnRange {
  fieldId: number;
  kind: 'int' | 'long' | 'double';
  lower?: Bound;
  upper?: Bound;
}

const NUMBER = String.raw`[-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?`;
const COLUMN = String.raw`"?([A-Za-z_][A-Za-z0-9_]*)"?`;
const COMPARISON = new RegExp(String.raw`^\s*${COLUMN}\s*(=|<=|>=|<|>)\s*(${NUMBER})\s*$`);
const REVERSED = new RegExp(String.raw`^\s*(${NUMBER})\s*(=|<=|>=|<|>)\s*${COLUMN}\s*$`);
const BETWEEN = new RegExp(String.raw`${COLUMN}\s+BETWEEN\s+(${NUMBER})\s+AND\s+(${NUMBER})`, 'gi');
const FLIP: Record<string, string> = { '=': '=', '<': '>', '>': '<', '<=': '>=', '>=': '<=' };

/** The WHERE clause of a single-table SELECT with nothing that makes pruning unsafe; null otherwise. */
function simpleWhere(sql: string): string | null {
  const bare = sql.replace(/'(?:[^']|'')*'/g, "''");
  if ((bare.match(/\bSELECT\b/gi) ?? []).length !== 1) return null; // subqueries, CTEs with selects
  if (/\b(JOIN|UNION|INTERSECT|EXCEPT|WITH)\b|,\s*[A-Za-z_"][\w"]*\s*\.\s*[A-Za-z_"]/i.test(bare)) return null;
  const where = /\bWHERE\b([\s\S]*?)(?:\bGROUP\s+BY\b|\bORDER\s+BY\b|\bLIMIT\b|\bHAVING\b|\bQUALIFY\b|\bWINDOW\b|;|$)/i.exec(bare);
  if (!where) return null;
  const clause = where[1];
  if (/\b(OR|NOT)\b|[()]/i.test(clause)) return null;
  return clause;
}

/** The ranges the WHERE clause puts on the table's numeric columns (an empty map: no pruning). */
export function columnRanges(sql: string, fields: readonly Field[]): Map<string, ColumnRange> {
  const ranges = new Map<string, ColumnRange>();
  const clause = simpleWhere(sql);
  if (clause === null) return ranges;
  const conjuncts: [string, string, string][] = [];
  const rest = clause.replace(BETWEEN, (_m, column: string, lo: string, hi: string) => {
    conjuncts.push([column, '>=', lo], [column, '<=', hi]);
    return ' TRUE ';
  });
  for (const part of rest.split(/\bAND\b/i)) {
    const direct = COMPARISON.exec(part);
    if (direct) conjuncts.push([direct[1], direct[2], direct[3]]);
    const reversed = REVERSED.exec(part);
    if (reversed) conjuncts.push([reversed[3], FLIP[reversed[2]], reversed[1]]);
  }
  for (const [column, op, literal] of conjuncts) {
    const field = fields.find((f) => f.name.toLowerCase() === column.toLowerCase());
    const type = field?.type?.kind?.$case === 'primitive' ? field.type.kind.value : '';
    if (!field || (type !== 'int' && type !== 'long' && type !== 'double')) continue;
    const integral = /^[-+]?\d+$/.test(literal);
    if (type !== 'double' && !integral) continue; // 2.5 against an integer column: not worth the care
    const value = type === 'long' ? BigInt(literal) : Number(literal);
    const range = ranges.get(field.name) ?? { fieldId: field.id, kind: type };
    if (op === '=' || op === '>' || op === '>=') range.lower = tighter(range.lower, { value, inclusive: op !== '>' }, 1);
    if (op === '=' || op === '<' || op === '<=') range.upper = tighter(range.upper, { value, inclusive: op !== '<' }, -1);
    ranges.set(field.name, range);
  }
  return ranges;
}

/** Of two lower (sign 1) or upper (sign -1) bounds, the one that admits less. */
function tighter(a: Bound | undefined, b: Bound, sign: 1 | -1): Bound {
  if (!a) return b;
  if (a.value === b.value) return { value: a.value, inclusive: a.inclusive && b.inclusive };
  return (a.value > b.value ? 1 : -1) === sign ? a : b;
}

/** Whether a data file may hold a row the ranges admit (true whenever its bounds cannot say). */
export function fileMayMatch(ranges: ReadonlyMap<string, ColumnRange>, stats: readonly ColumnStats[]): boolean {
  for (const range of ranges.values()) {
    const s = stats.find((c) => c.fieldId === range.fieldId);
    if (!s) continue;
    const width = range.kind === 'int' ? 4 : 8;
    const min = s.lowerBound?.length === width ? bound(range.kind, s.lowerBound) : undefined;
    const max = s.upperBound?.length === width ? bound(range.kind, s.upperBound) : undefined;
    if (range.lower && max !== undefined && (max < range.lower.value || (max === range.lower.value && !range.lower.inclusive)))
      return false;
    if (range.upper && min !== undefined && (min > range.upper.value || (min === range.upper.value && !range.upper.inclusive)))
      return false;
  }
  return true;
}

function bound(kind: ColumnRange['kind'], bytes: Uint8Array): number | bigint | undefined {
  const value = deserializeSingleValue(parsePrimitive(kind), bytes) as number | bigint;
  return typeof value === 'number' && Number.isNaN(value) ? undefined : value;
}
