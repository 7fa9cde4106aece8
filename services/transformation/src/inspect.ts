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
import { type KafkaRecord, MessageFormat, MessageMode, type MappingSpec } from '#shared/gen/sluice/v1/types.js';
import { invalidArgument } from '#shared/errors.js';
import { compilePlan, inferSchema, previewRows, RecordError } from './core/index.js';
import { decodeText, parseJson } from './core/decode.js';
import { firstCollision, MAX_FLATTEN_LEVEL } from './core/flatten.js';

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
  refuseCollisions(req.samples, req.mapping ?? DEFAULT_INFER);
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

/**
 * Two fields of a sample that flatten to one column (a key "a.b" and a nested a.b, both
 * a_b) would share a column silently: refused here, when a table is inferred (sluice infer,
 * job create), naming both paths; at run time such a record is dirty data (plan.ts).
 */
function refuseCollisions(samples: readonly KafkaRecord[], mapping: Pick<MappingSpec, 'format' | 'flattenLevel' | 'mode'>): void {
  const json = mapping.format === MessageFormat.MESSAGE_FORMAT_JSON || mapping.format === MessageFormat.MESSAGE_FORMAT_FLATTEN;
  const level = Math.min(
    MAX_FLATTEN_LEVEL,
    Math.max(mapping.format === MessageFormat.MESSAGE_FORMAT_FLATTEN ? 1 : 0, mapping.flattenLevel ?? 1),
  );
  if (!json || level < 1) return;
  for (const rec of samples) {
    const bytes = mapping.mode === MessageMode.MESSAGE_MODE_KEY ? rec.key : rec.value;
    if (!bytes) continue;
    let doc: unknown;
    try {
      doc = parseJson(decodeText(bytes, 'value', 8 * 1024 * 1024), 'value');
    } catch (e) {
      if (e instanceof RecordError) continue; // inference warns about unreadable samples
      throw e;
    }
    const c = firstCollision(doc, level);
    if (c)
      throw invalidArgument(
        `fields ${c.first} and ${c.second} both flatten to column "${c.name}" at flatten level ${level} (sample at partition ${rec.partition}, offset ${rec.offset}); map them with explicit fields`,
        { field: 'mapping.flatten_level' },
      );
  }
}

export function previewMappingRpc(req: PreviewMappingRequest, nowMs: number): PreviewMappingResponse {
  checkSamples(req.samples.length);
  if (!req.mapping) throw invalidArgument('mapping is required', { field: 'mapping' });
  if (!req.schema) throw invalidArgument('schema is required (InferSchema proposes one)', { field: 'schema' });
  // A mapping that cannot work is a SpecError: INVALID_ARGUMENT naming the field, as it is.
  const plan = compilePlan({ schema: req.schema, mapping: req.mapping });
  return { rows: previewRows(plan, req.samples, { nowMs }) };
}
