/**
 * Schema evolution committed with the data (DESIGN.md, "Schema evolution"): a worker that
 * evolved the table's schema (new optional columns numbered after the table's last column id,
 * widened types) reports the schema its files were written with. A round commits the table's
 * current schema evolved by every report's, in the same CommitTable as the files; the catalog
 * checks the evolution is permitted. Reports that disagree with the table or with an earlier
 * report (the same id for two names, one name under two ids, two different changes of one
 * column: two workers that evolved at once) do not fit: they are dropped and their workers
 * rewind, reopen with the committed schema and evolve again from it.
 */
import type { Field, Schema } from '#shared/gen/sluice/v1/types.js';

export interface SchemaMerge {
  /** The schema to commit, or null when no report changes the current one. */
  schema: Schema | null;
  /** Indexes of the reports that do not fit, each with the reason. */
  misfits: { index: number; reason: string }[];
}

const typeText = (f: Field): string => {
  const kind = f.type?.kind;
  return kind?.$case === 'primitive' ? kind.value.replace(/\s/g, '') : JSON.stringify(kind ?? null);
};
const sameField = (a: Field, b: Field) => a.name === b.name && a.required === b.required && typeText(a) === typeText(b);

/** Merges the reports' schemas (undefined: the report did not evolve it) into `current`. */
export function mergeReportedSchemas(current: Schema, lastColumnId: number, reported: readonly (Schema | undefined)[]): SchemaMerge {
  const byId = new Map(current.fields.map((f) => [f.id, f]));
  const idOf = new Map(current.fields.map((f) => [f.name, f.id]));
  const changedBy = new Map<number, number>();
  const misfits: SchemaMerge['misfits'] = [];
  reported.forEach((schema, index) => {
    if (!schema) return;
    const changes: Field[] = [];
    let misfit: string | undefined;
    for (const f of schema.fields) {
      const now = byId.get(f.id);
      if (now) {
        if (now.name !== f.name) misfit = `column id ${f.id} is "${now.name}" in the table but "${f.name}" in the report`;
        else if (!sameField(now, f)) {
          if (changedBy.has(f.id)) misfit = `column "${f.name}" was changed differently by another report of the round`;
          else changes.push(f);
        }
      } else {
        const other = idOf.get(f.name);
        if (other !== undefined) misfit = `column "${f.name}" has id ${other} in the table but ${f.id} in the report`;
        else if (f.id <= lastColumnId)
          misfit = `new column "${f.name}" has id ${f.id}, not after the table's last column id ${lastColumnId}`;
        else changes.push(f);
      }
      if (misfit) break;
    }
    if (misfit) {
      misfits.push({ index, reason: `schema does not fit: ${misfit}` });
      return;
    }
    for (const f of changes) {
      byId.set(f.id, f);
      idOf.set(f.name, f.id);
      changedBy.set(f.id, index);
    }
  });
  if (changedBy.size === 0) return { schema: null, misfits };
  // Existing columns keep their order; new ones follow in id order.
  const fields = [...byId.values()].sort((a, b) => order(current, a) - order(current, b) || a.id - b.id);
  return { schema: { ...current, fields }, misfits };
}

function order(current: Schema, f: Field): number {
  const i = current.fields.findIndex((c) => c.id === f.id);
  return i < 0 ? current.fields.length : i;
}
