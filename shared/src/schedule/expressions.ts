/**
 * Scheduling expressions (seed 001): text with `$[...]` placeholders evaluated against a
 * reference time on a zone's wall clock, e.g. at 2022-11-22 10:05:
 *   `$[yyyymmddhh24-1/24]0000` → `20221122090000`, `$[yyyymmdd-1]` → `20221121`,
 *   `$[yyyymmddhh24mi-8/24/60]` → `202211220957`, `$[add_months(yyyymmdd,-1)]` → `20221022`.
 * Inside a placeholder: a format made of yyyy, yy, mm (month), dd, hh24, mi, ss and literal
 * separators, then an optional day offset `±N`, `±N/24` (hours) or `±N/24/60` (minutes);
 * or `add_months(format,±N)`. Compiled once into a closure list; evaluation is arithmetic.
 */
import { addMonths, civilFromMs, MS_PER_DAY, MS_PER_MINUTE, pad2, pad4, type Zone } from '../time.js';

/** An expression that cannot be compiled; the message quotes it and says what is wrong. */
export class ExpressionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ExpressionError';
  }
}

type Piece = (localMs: number) => string;

const TOKENS: [string, (c: ReturnType<typeof civilFromMs>) => string][] = [
  ['yyyy', (c) => pad4(c.year)],
  ['hh24', (c) => pad2(c.hour)],
  ['yy', (c) => pad2(c.year % 100)],
  ['mm', (c) => pad2(c.month)],
  ['dd', (c) => pad2(c.day)],
  ['mi', (c) => pad2(c.minute)],
  ['ss', (c) => pad2(c.second)],
];

export interface CompiledExpression {
  source: string;
  /** Renders the expression at an instant, on the zone's wall clock. */
  render(epochMs: number): string;
}

export function compileExpression(source: string, zone: Zone): CompiledExpression {
  const pieces: Piece[] = [];
  let i = 0;
  while (i < source.length) {
    const open = source.indexOf('$[', i);
    if (open < 0) {
      const lit = source.slice(i);
      pieces.push(() => lit);
      break;
    }
    if (open > i) {
      const lit = source.slice(i, open);
      pieces.push(() => lit);
    }
    const close = source.indexOf(']', open);
    if (close < 0) throw new ExpressionError(`expression "${source}": "$[" at character ${open + 1} is never closed`);
    pieces.push(compilePlaceholder(source.slice(open + 2, close).trim(), source));
    i = close + 1;
  }
  // The output only changes when the local time crosses a unit of the finest element
  // used (a minute unless seconds are shown): consecutive records reuse the last string.
  const unit = /ss/i.test(source) ? 1000 : MS_PER_MINUTE;
  let lastKey = Number.NaN;
  let last = '';
  return {
    source,
    render(epochMs) {
      const local = zone.toLocal(epochMs);
      const key = Math.floor(local / unit);
      if (key === lastKey) return last;
      let s = '';
      for (const p of pieces) s += p(local);
      lastKey = key;
      last = s;
      return s;
    },
  };
}

const ADD_MONTHS = /^add_months\(\s*([^,]+?)\s*,\s*([+-]?\d+)\s*\)$/i;
const OFFSET = /^(.*?)\s*([+-])\s*(\d+)((?:\s*\/\s*\d+)*)$/;

function compilePlaceholder(body: string, source: string): Piece {
  const am = ADD_MONTHS.exec(body);
  if (am) {
    const fmt = compileFormat(am[1], source);
    const months = Number(am[2]);
    return (local) => fmt(addMonths(local, months));
  }
  const off = OFFSET.exec(body);
  if (!off) {
    const fmt = compileFormat(body, source);
    return fmt;
  }
  const fmt = compileFormat(off[1], source);
  const sign = off[2] === '-' ? -1 : 1;
  const divisors = off[4]
    .split('/')
    .map((d) => d.trim())
    .filter((d) => d !== '')
    .map(Number);
  let unit = MS_PER_DAY;
  // N/24 is hours, N/24/60 minutes: the day divided down, as the scheduling syntax writes it.
  for (const d of divisors) {
    if (d === 0) throw new ExpressionError(`expression "${source}": division by zero in "${body}"`);
    unit /= d;
  }
  if (!Number.isInteger(unit)) {
    throw new ExpressionError(`expression "${source}": offset "${body}" is not a whole number of milliseconds`);
  }
  const delta = sign * Number(off[3]) * unit;
  return (local) => fmt(local + delta);
}

function compileFormat(fmt: string, source: string): Piece {
  const parts: ((c: ReturnType<typeof civilFromMs>) => string)[] = [];
  let i = 0;
  const f = fmt.toLowerCase();
  let sawToken = false;
  while (i < f.length) {
    const tok = TOKENS.find(([t]) => f.startsWith(t, i));
    if (tok) {
      parts.push(tok[1]);
      i += tok[0].length;
      sawToken = true;
      continue;
    }
    const ch = fmt[i];
    if (/[a-z0-9]/i.test(ch))
      throw new ExpressionError(`expression "${source}": unknown format element at "${fmt.slice(i)}" (use yyyy, mm, dd, hh24, mi, ss)`);
    parts.push(() => ch);
    i++;
  }
  if (!sawToken) throw new ExpressionError(`expression "${source}": "${fmt}" has no date element`);
  return (local) => {
    const c = civilFromMs(local);
    let s = '';
    for (const p of parts) s += p(c);
    return s;
  };
}
