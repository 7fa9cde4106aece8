/**
 * Scheduling expressions for partition values: the shared compiler (#shared/schedule), with its
 * refusals as the core's SpecError so a bad expression is refused like any other mapping field.
 */
import { compileExpression as compileShared, type CompiledExpression, ExpressionError } from '#shared/schedule/expressions.js';
import type { Zone } from '#shared/time.js';
import { SpecError } from './errors.js';

export type { CompiledExpression };

export function compileExpression(source: string, zone: Zone): CompiledExpression {
  try {
    return compileShared(source, zone);
  } catch (err) {
    if (err instanceof ExpressionError) throw new SpecError(err.message, 'expression');
    throw err;
  }
}
