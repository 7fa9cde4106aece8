package dev.sluice.peers.iceberg;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.math.BigDecimal;
import java.nio.ByteBuffer;
import java.time.LocalDate;
import java.time.LocalDateTime;
import java.time.LocalTime;
import java.time.OffsetDateTime;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import org.apache.iceberg.StructLike;
import org.apache.iceberg.types.Type;
import org.apache.iceberg.types.Types;

/**
 * Iceberg values as JSON, one fixed rendering per type so a test can compare them with another
 * reader's: numbers as numbers (longs too: Sluice keeps them below 2^53), NaN and infinities as
 * strings, decimals as plain strings, binary as base64, dates as ISO text, times and timestamps
 * with all six (or nine) fraction digits, timestamptz in UTC with a Z.
 */
final class JsonValues {
  static final JsonNodeFactory NODES = JsonNodeFactory.instance;
  private static final DateTimeFormatter TIME_US = DateTimeFormatter.ofPattern("HH:mm:ss.SSSSSS");
  private static final DateTimeFormatter TIME_NS = DateTimeFormatter.ofPattern("HH:mm:ss.SSSSSSSSS");
  private static final DateTimeFormatter TS_US = DateTimeFormatter.ofPattern("yyyy-MM-dd'T'HH:mm:ss.SSSSSS");
  private static final DateTimeFormatter TS_NS = DateTimeFormatter.ofPattern("yyyy-MM-dd'T'HH:mm:ss.SSSSSSSSS");

  private JsonValues() {}

  /** A value of Iceberg's generic data model (what IcebergGenerics returns) as JSON. */
  static JsonNode generic(Type type, Object value) {
    if (value == null) return NODES.nullNode();
    switch (type.typeId()) {
      case BOOLEAN:
        return NODES.booleanNode((Boolean) value);
      case INTEGER:
        return NODES.numberNode((Integer) value);
      case LONG:
        return NODES.numberNode((Long) value);
      case FLOAT:
        return floating(((Float) value).doubleValue());
      case DOUBLE:
        return floating((Double) value);
      case DECIMAL:
        return NODES.textNode(((BigDecimal) value).toPlainString());
      case DATE:
        return NODES.textNode(((LocalDate) value).toString());
      case TIME:
        return NODES.textNode(((LocalTime) value).format(TIME_US));
      case TIMESTAMP:
        return NODES.textNode(timestamp(value, TS_US));
      case TIMESTAMP_NANO:
        return NODES.textNode(timestamp(value, TS_NS));
      case FIXED:
      case BINARY:
        return NODES.textNode(base64(value));
      case STRUCT:
        return struct((Types.StructType) type, (StructLike) value);
      case LIST:
        {
          Type element = ((Types.ListType) type).elementType();
          ArrayNode array = NODES.arrayNode();
          for (Object item : (List<?>) value) array.add(generic(element, item));
          return array;
        }
      case MAP:
        return map((Types.MapType) type, (Map<?, ?>) value);
      default:
        // string, uuid and whatever a later format version adds: their text.
        return NODES.textNode(value.toString());
    }
  }

  /** A row or struct, by field name. */
  static ObjectNode struct(Types.StructType type, StructLike row) {
    ObjectNode object = NODES.objectNode();
    List<Types.NestedField> fields = type.fields();
    for (int i = 0; i < fields.size(); i++) {
      Types.NestedField field = fields.get(i);
      object.set(field.name(), generic(field.type(), row.get(i, Object.class)));
    }
    return object;
  }

  /**
   * A value in Iceberg's internal representation (partition values, bounds): days and
   * microseconds stay numbers, as the manifests hold them.
   */
  static JsonNode internal(Object value) {
    if (value == null) return NODES.nullNode();
    if (value instanceof Boolean b) return NODES.booleanNode(b);
    if (value instanceof Integer i) return NODES.numberNode(i);
    if (value instanceof Long l) return NODES.numberNode(l);
    if (value instanceof Float f) return floating(f.doubleValue());
    if (value instanceof Double d) return floating(d);
    if (value instanceof BigDecimal d) return NODES.textNode(d.toPlainString());
    if (value instanceof ByteBuffer || value instanceof byte[]) return NODES.textNode(base64(value));
    return NODES.textNode(value.toString());
  }

  private static JsonNode floating(double d) {
    return Double.isFinite(d) ? NODES.numberNode(d) : NODES.textNode(Double.toString(d));
  }

  private static String timestamp(Object value, DateTimeFormatter format) {
    if (value instanceof OffsetDateTime odt) return odt.withOffsetSameInstant(ZoneOffset.UTC).format(format) + "Z";
    return ((LocalDateTime) value).format(format);
  }

  private static String base64(Object value) {
    if (value instanceof byte[] bytes) return Base64.getEncoder().encodeToString(bytes);
    ByteBuffer buffer = ((ByteBuffer) value).duplicate();
    byte[] bytes = new byte[buffer.remaining()];
    buffer.get(bytes);
    return Base64.getEncoder().encodeToString(bytes);
  }

  private static JsonNode map(Types.MapType type, Map<?, ?> map) {
    if (type.keyType().typeId() == Type.TypeID.STRING) {
      ObjectNode object = NODES.objectNode();
      for (Map.Entry<?, ?> e : map.entrySet()) object.set(e.getKey().toString(), generic(type.valueType(), e.getValue()));
      return object;
    }
    ArrayNode pairs = NODES.arrayNode();
    for (Map.Entry<?, ?> e : map.entrySet()) {
      ObjectNode pair = NODES.objectNode();
      pair.set("key", generic(type.keyType(), e.getKey()));
      pair.set("value", generic(type.valueType(), e.getValue()));
      pairs.add(pair);
    }
    return pairs;
  }
}
