/**
 * Per-column statistics of one data file, as Iceberg manifests want them: value counts
 * (nulls included), null counts, NaN counts, and lower/upper bounds in single-value
 * serialization. NaN never enters the bounds. Strings compare by UTF-16 code units, which
 * matches Iceberg's UTF-8 byte order except between astral characters and U+E000–U+FFFF;
 * bounds are not truncated (Iceberg allows full values).
 */
import type { ColumnStats } from '../gen/sluice/v1/types.js';
import { type PrimitiveType, serializeSingleValue, type SingleValue } from '../iceberg/single-value.js';

type Value = null | boolean | number | bigint | string | Uint8Array;

export class ColumnStatsCollector {
  valueCount = 0;
  nullCount = 0;
  nanCount = 0;
  private min: Value = null;
  private max: Value = null;
  private readonly bytesCompare: boolean;
  private readonly floating: boolean;

  constructor(
    readonly fieldId: number,
    readonly type: PrimitiveType,
  ) {
    this.bytesCompare = type.kind === 'binary' || type.kind === 'fixed';
    this.floating = type.kind === 'float' || type.kind === 'double';
  }

  add(v: Value): void {
    this.valueCount++;
    if (v === null) {
      this.nullCount++;
      return;
    }
    if (this.floating && Number.isNaN(v)) {
      this.nanCount++;
      return;
    }
    if (this.min === null) {
      this.min = v;
      this.max = v;
    } else if (this.bytesCompare) {
      if (Buffer.compare(v as Uint8Array, this.min as Uint8Array) < 0) this.min = v;
      else if (Buffer.compare(v as Uint8Array, this.max as Uint8Array) > 0) this.max = v;
    } else if (v < (this.min as NonNullable<Value>)) this.min = v;
    else if (v > (this.max as NonNullable<Value>)) this.max = v;
  }

  result(columnSize: number): ColumnStats {
    const bound = (v: Value) => (v === null ? Buffer.alloc(0) : serializeSingleValue(this.type, v as SingleValue));
    return {
      fieldId: this.fieldId,
      columnSize,
      valueCount: this.valueCount,
      nullValueCount: this.nullCount,
      nanValueCount: this.nanCount,
      lowerBound: bound(this.min),
      upperBound: bound(this.max),
    };
  }
}
