/**
 * Column types the Parquet writer cannot write as Iceberg requires. Kept apart from writer.ts
 * so that the CLI can refuse them in a spec without loading DuckDB.
 */

/**
 * Iceberg stores fixed[L] as Parquet FIXED_LEN_BYTE_ARRAY(L); DuckDB can only write it as
 * BINARY, which Iceberg's Java readers hand out as a ByteBuffer where their data model
 * promises byte[], and their converters (partitioning, equality deletes) then throw (found by
 * the interop suite). So a fixed column is refused rather than written in a form readers choke on.
 */
export function unwritableFixed(column: string, type: string): string {
  return `column "${column}" is ${type}: Sluice writes Parquet through DuckDB, which has no fixed-length byte arrays, and Iceberg readers need one for ${type}; use binary`;
}
