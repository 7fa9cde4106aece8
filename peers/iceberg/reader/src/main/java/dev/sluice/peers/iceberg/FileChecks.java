package dev.sluice.peers.iceberg;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import org.apache.iceberg.DataFile;
import org.apache.iceberg.PartitionKey;
import org.apache.iceberg.PartitionSpec;
import org.apache.iceberg.Schema;
import org.apache.iceberg.StructLike;
import org.apache.iceberg.Table;
import org.apache.iceberg.data.InternalRecordWrapper;
import org.apache.iceberg.data.Record;
import org.apache.iceberg.data.parquet.GenericParquetReaders;
import org.apache.iceberg.io.CloseableIterable;
import org.apache.iceberg.parquet.Parquet;
import org.apache.iceberg.types.Comparators;
import org.apache.iceberg.types.Conversions;
import org.apache.iceberg.types.Type;
import org.apache.iceberg.types.Types;
import org.apache.parquet.schema.MessageType;

/**
 * What a manifest says about a data file, checked against the file's rows: the record count,
 * the partition tuple (recomputed from every row with Iceberg's own transforms), and per
 * top-level column the value, null and NaN counts and the lower/upper bounds. Engines prune
 * files and manifests with exactly these, so a wrong one silently drops rows from a filtered
 * query even when a full scan looks right.
 */
final class FileChecks {
  private FileChecks() {}

  /** One column's tally over a file's rows, in Iceberg's internal representation. */
  private static final class Tally {
    final Types.NestedField field;
    final int position;
    final Comparator<Object> order;
    long nulls;
    long nans;
    Object min;
    Object max;

    @SuppressWarnings("unchecked")
    Tally(Types.NestedField field, int position) {
      this.field = field;
      this.position = position;
      this.order = (Comparator<Object>) Comparators.forType(field.type().asPrimitiveType());
    }

    /** Set when Iceberg's own conversion of this column failed: reported once, then left alone. */
    String broken;

    void add(Object value) {
      if (value == null) {
        nulls++;
      } else if ((value instanceof Double d && d.isNaN()) || (value instanceof Float f && f.isNaN())) {
        nans++;
      } else {
        if (min == null || order.compare(value, min) < 0) min = value;
        if (max == null || order.compare(value, max) > 0) max = value;
      }
    }
  }

  /** Adds a line to problems for every disagreement between the manifest entry and the file. */
  static void check(Table table, Schema schema, DataFile file, List<String> problems) {
    String where = "data file " + file.location();
    List<Tally> tallies = new ArrayList<>();
    List<Types.NestedField> fields = schema.columns();
    for (int i = 0; i < fields.size(); i++) {
      if (fields.get(i).type().isPrimitiveType()) tallies.add(new Tally(fields.get(i), i));
    }
    PartitionSpec spec = table.specs().get(file.specId());
    PartitionKey key = partitionKey(spec, schema, where, problems);
    Comparator<StructLike> partitionOrder = Comparators.forType(spec.partitionType());
    InternalRecordWrapper internal = new InternalRecordWrapper(schema.asStruct());
    long rows = 0;
    boolean partitionReported = false;
    MessageType[] fileSchema = new MessageType[1];
    try (CloseableIterable<Record> records =
        Parquet.read(table.io().newInputFile(file.location()))
            .project(schema)
            .createReaderFunc(parquetSchema -> {
              fileSchema[0] = parquetSchema;
              return GenericParquetReaders.buildReader(schema, parquetSchema);
            })
            .build()) {
      for (Record record : records) {
        rows++;
        internal.wrap(record);
        for (Tally t : tallies) tally(t, internal, where, problems);
        if (key != null && !partitionReported) {
          try {
            key.partition(internal);
            if (partitionOrder.compare(key, file.partition()) != 0) {
              problems.add(where + ": row " + (rows - 1) + " belongs in partition " + spec.partitionToPath(key)
                  + " but the manifest says " + spec.partitionToPath(file.partition()));
              partitionReported = true;
            }
          } catch (RuntimeException e) {
            problems.add(where + ": Iceberg cannot compute row " + (rows - 1) + "'s partition: " + e);
            partitionReported = true;
          }
        }
      }
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    if (fileSchema[0] != null) ParquetTypes.check(schema, table.schemas().values(), fileSchema[0], where, problems);
    if (rows != file.recordCount()) {
      problems.add(where + ": record_count is " + file.recordCount() + " but the file has " + rows + " rows");
    }
    for (Tally t : tallies) {
      if (t.broken == null) checkColumn(file, t, rows, where, problems);
    }
  }

  /** One row's value of a column; a value Iceberg's own converters cannot take is a problem, once. */
  private static void tally(Tally t, InternalRecordWrapper row, String where, List<String> problems) {
    if (t.broken != null) return;
    Object value;
    try {
      value = row.get(t.position, Object.class);
    } catch (RuntimeException e) {
      t.broken = e.toString();
      problems.add(where + " column " + t.field.name() + ": Iceberg's generic reader returned a value its own converters refuse: " + e);
      return;
    }
    t.add(value);
  }

  private static PartitionKey partitionKey(PartitionSpec spec, Schema schema, String where, List<String> problems) {
    if (spec.isUnpartitioned()) return null;
    try {
      return new PartitionKey(spec, schema);
    } catch (RuntimeException e) {
      // A spec over a column the read schema no longer has: nothing to recompute from.
      problems.add(where + ": cannot recompute partition spec " + spec.specId() + ": " + e.getMessage());
      return null;
    }
  }

  private static void checkColumn(DataFile file, Tally t, long rows, String where, List<String> problems) {
    int id = t.field.fieldId();
    String column = where + " column " + t.field.name() + " (id " + id + ")";
    Long values = get(file.valueCounts(), id);
    Long nulls = get(file.nullValueCounts(), id);
    Long nans = get(file.nanValueCounts(), id);
    // A column the file does not hold (added later) reads as nulls and has no metrics.
    if (t.field.isRequired() && t.nulls > 0) problems.add(column + ": required, but " + t.nulls + " rows are null");
    if (values != null && values != rows) problems.add(column + ": value_count " + values + " but " + rows + " rows");
    if (nulls != null && nulls != t.nulls) problems.add(column + ": null_value_count " + nulls + " but " + t.nulls + " nulls");
    if (nans != null && nans != t.nans) problems.add(column + ": nan_value_count " + nans + " but " + t.nans + " NaNs");
    Type type = t.field.type();
    Object lower = bound(file.lowerBounds(), id, type, column + ": lower_bound", problems);
    Object upper = bound(file.upperBounds(), id, type, column + ": upper_bound", problems);
    if (t.min == null) return;
    if (lower != null && t.order.compare(lower, t.min) > 0) {
      problems.add(column + ": lower_bound " + lower + " is above the smallest value " + t.min);
    }
    if (upper != null && t.order.compare(upper, t.max) < 0) {
      problems.add(column + ": upper_bound " + upper + " is below the largest value " + t.max);
    }
  }

  private static Long get(Map<Integer, Long> counts, int id) {
    return counts == null ? null : counts.get(id);
  }

  private static Object bound(Map<Integer, ByteBuffer> bounds, int id, Type type, String what, List<String> problems) {
    ByteBuffer bytes = bounds == null ? null : bounds.get(id);
    if (bytes == null) return null;
    try {
      return Conversions.fromByteBuffer(type, bytes.duplicate());
    } catch (RuntimeException e) {
      problems.add(what + " cannot be decoded as " + type + ": " + e.getMessage());
      return null;
    }
  }
}
