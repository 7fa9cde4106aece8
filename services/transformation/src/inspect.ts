/**
 * InferSchema and PreviewMapping: the core's inference and preview, as RPCs. Both work on
 * samples the caller sends (the CLI reads them from the topic), never on a live job.
 */
import type {
  InferSchemaRequest,
  InferSchemaResponse,
  PreviewMappingRequest,
  PreviewMappingResponse,
} from '#shared/gen/sluice/v1/transformation.js';
import { MessageFormat, MessageMode, type MappingSpec } from '#shared/gen/sluice/v1/types.js';
import { invalidArgument } from '#shared/errors.js';
import { compilePlan, inferSchema, previewRows } from './core/index.js';

/** Enough to infer from; more is a mistake in the caller, and costs memory for nothing. */
export const MAX_SAMPLES = 10_000;

const DEFAULT_INFER: Pick<MappingSpec, 'format' | 'flattenLevel' | 'mode'> = {
  format: MessageFormat.MESSAGE_FORMAT_JSON,
  flattenLevel: 1,
  mode: MessageMode.MESSAGE_MODE_VALUE,
};

function checkSamples(n: number): void {
  if (n === 0) throw invalidArgument('samples is empty; send at least one record', { field: 'samples' });
  if (n > MAX_SAMPLES) throw invalidArgument(`${n} samples is over the limit of ${MAX_SAMPLES}`, { field: 'samples' });
}

export function inferSchemaRpc(req: InferSchemaRequest): InferSchemaResponse {
  checkSamples(req.samples.length);
  const r = inferSchema(req.samples, req.mapping ?? DEFAULT_INFER);
  return {
    schema: r.schema,
    fields: r.fields.map((f) => ({
      name: f.name,
      path: f.path,
      type: { kind: { $case: 'primitive', value: f.type } },
      required: f.required,
      sample: f.sample,
    })),
    warnings: r.warnings,
  };
}

export function previewMappingRpc(req: PreviewMappingRequest, nowMs: number): PreviewMappingResponse {
  checkSamples(req.samples.length);
  if (!req.mapping) throw invalidArgument('mapping is required', { field: 'mapping' });
  if (!req.schema) throw invalidArgument('schema is required (InferSchema proposes one)', { field: 'schema' });
  // A mapping that cannot work is a SpecError: INVALID_ARGUMENT naming the field, as it is.
  const plan = compilePlan({ schema: req.schema, mapping: req.mapping });
  return { rows: previewRows(plan, req.samples, { nowMs }) };
}
