package dev.sluice.peers.iceberg;

import java.util.Collection;
import java.util.List;
import org.apache.iceberg.Schema;
import org.apache.iceberg.types.Type;
import org.apache.iceberg.types.Types;
import org.apache.parquet.schema.LogicalTypeAnnotation;
import org.apache.parquet.schema.MessageType;
import org.apache.parquet.schema.PrimitiveType;
import org.apache.parquet.schema.PrimitiveType.PrimitiveTypeName;

/**
 * A data file's Parquet schema against the table's, column by field id, as the Iceberg spec's
 * "Parquet" appendix maps each type: the physical type and the annotation a reader relies on.
 * Readers are lenient about some of these, but not all readers the same way (Iceberg's generic
 * reader hands a BYTE_ARRAY `fixed` column out as a ByteBuffer where its data model promises a
 * byte[], for one), so every deviation is reported.
 */
final class ParquetTypes {
  private ParquetTypes() {}

  /**
   * schemas: every schema the table has had, so that a file written before a type promotion
   * (int to long, float to double, a wider decimal) is judged by the type it was written with.
   */
  static void check(Schema schema, Collection<Schema> schemas, MessageType file, String where, List<String> problems) {
    for (org.apache.parquet.schema.Type column : file.getFields()) {
      String name = where + " Parquet column " + column.getName();
      if (column.getId() == null) {
        problems.add(name + " has no field id");
        continue;
      }
      Types.NestedField field = schema.findField(column.getId().intValue());
      // A column dropped from the table since is no longer read.
      if (field == null || !field.type().isPrimitiveType()) continue;
      if (!column.isPrimitive()) {
        problems.add(name + " is a group but field " + field.fieldId() + " is " + field.type());
        continue;
      }
      String expected = expected(field.type());
      String actual = describe(column.asPrimitiveType());
      boolean written = accepts(field.type(), column.asPrimitiveType());
      for (Schema earlier : schemas) {
        Types.NestedField before = earlier.findField(field.fieldId());
        if (before != null && before.type().isPrimitiveType()) written |= accepts(before.type(), column.asPrimitiveType());
      }
      if (!written) {
        problems.add(name + " (field " + field.fieldId() + ", " + field.type() + ") is " + actual + "; the spec writes " + expected);
      }
    }
  }

  /** Whether the Parquet column is what the spec writes for the Iceberg type. */
  static boolean accepts(Type type, PrimitiveType column) {
    PrimitiveTypeName physical = column.getPrimitiveTypeName();
    LogicalTypeAnnotation logical = column.getLogicalTypeAnnotation();
    switch (type.typeId()) {
      case BOOLEAN:
        return physical == PrimitiveTypeName.BOOLEAN;
      case INTEGER:
        return physical == PrimitiveTypeName.INT32;
      case LONG:
        return physical == PrimitiveTypeName.INT64;
      case FLOAT:
        return physical == PrimitiveTypeName.FLOAT;
      case DOUBLE:
        return physical == PrimitiveTypeName.DOUBLE;
      case DATE:
        return physical == PrimitiveTypeName.INT32 && logical instanceof LogicalTypeAnnotation.DateLogicalTypeAnnotation;
      case TIME:
        return physical == PrimitiveTypeName.INT64
            && logical instanceof LogicalTypeAnnotation.TimeLogicalTypeAnnotation t
            && t.getUnit() == LogicalTypeAnnotation.TimeUnit.MICROS;
      case TIMESTAMP:
        return physical == PrimitiveTypeName.INT64
            && logical instanceof LogicalTypeAnnotation.TimestampLogicalTypeAnnotation t
            && t.getUnit() == LogicalTypeAnnotation.TimeUnit.MICROS
            && t.isAdjustedToUTC() == ((Types.TimestampType) type).shouldAdjustToUTC();
      case STRING:
        return physical == PrimitiveTypeName.BINARY && logical instanceof LogicalTypeAnnotation.StringLogicalTypeAnnotation;
      case UUID:
        return physical == PrimitiveTypeName.FIXED_LEN_BYTE_ARRAY && column.getTypeLength() == 16;
      case FIXED:
        return physical == PrimitiveTypeName.FIXED_LEN_BYTE_ARRAY && column.getTypeLength() == ((Types.FixedType) type).length();
      case BINARY:
        return physical == PrimitiveTypeName.BINARY;
      case DECIMAL:
        {
          Types.DecimalType decimal = (Types.DecimalType) type;
          // int32 up to 9 digits, int64 up to 18, fixed otherwise; readers take any that holds the precision.
          boolean holds = physical == PrimitiveTypeName.INT32 ? decimal.precision() <= 9
              : physical == PrimitiveTypeName.INT64 ? decimal.precision() <= 18
              : physical == PrimitiveTypeName.FIXED_LEN_BYTE_ARRAY || physical == PrimitiveTypeName.BINARY;
          return holds
              && logical instanceof LogicalTypeAnnotation.DecimalLogicalTypeAnnotation d
              && d.getPrecision() == decimal.precision()
              && d.getScale() == decimal.scale();
        }
      default:
        return true;
    }
  }

  private static String expected(Type type) {
    switch (type.typeId()) {
      case DATE:
        return "INT32 (DATE)";
      case TIME:
        return "INT64 (TIME micros)";
      case TIMESTAMP:
        return "INT64 (TIMESTAMP micros, adjusted to UTC " + ((Types.TimestampType) type).shouldAdjustToUTC() + ")";
      case STRING:
        return "BINARY (STRING)";
      case UUID:
        return "FIXED_LEN_BYTE_ARRAY(16)";
      case FIXED:
        return "FIXED_LEN_BYTE_ARRAY(" + ((Types.FixedType) type).length() + ")";
      case DECIMAL:
        return "INT32/INT64/FIXED_LEN_BYTE_ARRAY (DECIMAL" + type.toString().substring("decimal".length()) + ")";
      default:
        return type.typeId().name();
    }
  }

  private static String describe(PrimitiveType column) {
    String physical = column.getPrimitiveTypeName().name();
    if (column.getPrimitiveTypeName() == PrimitiveTypeName.FIXED_LEN_BYTE_ARRAY) physical += "(" + column.getTypeLength() + ")";
    LogicalTypeAnnotation logical = column.getLogicalTypeAnnotation();
    return logical == null ? physical : physical + " (" + logical + ")";
  }
}
