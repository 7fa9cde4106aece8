/**
 * Field definitions by path (seed 001): `a.a1` reads a subfield, `c[1]` an array element,
 * `d[0].AA` both. A `.` always separates names, so a key that itself contains a dot
 * (`"a.b"`) cannot be addressed: `a.b` means field `b` of object `a`.
 */
import { SpecError } from './errors.js';

export type PathStep = string | number;

export function compilePath(path: string): PathStep[] {
  const steps: PathStep[] = [];
  let i = 0;
  const fail = (why: string) => new SpecError(`field path "${path}" is invalid: ${why} at character ${i + 1}`, path);
  if (path.length === 0) throw new SpecError('field path is empty', path);
  while (i < path.length) {
    if (path[i] === '[') {
      const close = path.indexOf(']', i);
      const digits = close < 0 ? '' : path.slice(i + 1, close);
      if (!/^\d+$/.test(digits)) throw fail('expected [index]');
      steps.push(Number(digits));
      i = close + 1;
      if (i < path.length && path[i] !== '.' && path[i] !== '[') throw fail('expected "." or "[" after "]"');
      if (path[i] === '.') {
        i++;
        if (i >= path.length) throw fail('trailing "."');
      }
      continue;
    }
    let j = i;
    while (j < path.length && path[j] !== '.' && path[j] !== '[') j++;
    if (j === i) throw fail('empty name');
    steps.push(path.slice(i, j));
    i = j;
    if (path[i] === '.') {
      i++;
      if (i >= path.length) throw fail('trailing "."');
    }
  }
  return steps;
}

/** The value at a path, or undefined when any step is missing or of the wrong kind. */
export function resolvePath(root: unknown, steps: readonly PathStep[]): unknown {
  let cur = root;
  for (let k = 0; k < steps.length; k++) {
    if (cur === null || typeof cur !== 'object') return undefined;
    const step = steps[k];
    if (typeof step === 'number') {
      if (!Array.isArray(cur)) return undefined;
      cur = cur[step];
    } else {
      if (Array.isArray(cur) || !Object.hasOwn(cur, step)) return undefined;
      cur = (cur as Record<string, unknown>)[step];
    }
  }
  return cur;
}
