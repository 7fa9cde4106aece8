/**
 * The transformation plan of a pipeline-bench shape (bench/pipeline/records.ts) read as JSON:
 * the table `tableSpec` creates (its columns, `id` required) at the shape's flatten level.
 * What the component benchmarks run the shapes through without the mesh.
 */
import { MessageFormat, MessageMode, type Schema } from '#shared/gen/sluice/v1/types.js';
import { compilePlan, type Plan } from '../../services/transformation/src/core/index.js';
import { SHAPES, type Shape } from '../pipeline/records.js';

export function shapeSchema(name: Shape['name']): Schema {
  return {
    schemaId: 0,
    identifierFieldIds: [],
    fields: SHAPES[name].columns.map((c, i) => ({
      id: i + 1,
      name: c.name,
      required: c.name === 'id',
      doc: '',
      type: { kind: { $case: 'primitive' as const, value: c.iceberg } },
    })),
  };
}

export function jsonShapePlan(name: 'narrow' | 'wide'): Plan {
  return compilePlan({
    schema: shapeSchema(name),
    mapping: {
      format: MessageFormat.MESSAGE_FORMAT_JSON,
      mode: MessageMode.MESSAGE_MODE_VALUE,
      flattenLevel: SHAPES[name].flattenLevel,
      fields: [],
      timeZone: 'UTC',
      includeFixedColumns: false,
    },
  });
}
