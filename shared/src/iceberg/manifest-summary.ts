/**
 * What a manifest list records about each manifest, and what writing a manifest computes for
 * it: the six file and row counts and a summary per partition field. Declared once, here,
 * for the manifest writer (manifest.ts) and the manifest list (manifest-list.ts) alike.
 */

/** Files and rows a manifest adds, keeps and deletes (spec: manifest_file fields 504-506, 512-514). */
export interface ManifestCounts {
  addedFilesCount: number;
  existingFilesCount: number;
  deletedFilesCount: number;
  addedRowsCount: number;
  existingRowsCount: number;
  deletedRowsCount: number;
}

/** One partition field's values across a manifest (spec: field_summary, fields 509-511, 518). */
export interface FieldSummary {
  containsNull: boolean;
  containsNan?: boolean;
  lowerBound?: Uint8Array;
  upperBound?: Uint8Array;
}
