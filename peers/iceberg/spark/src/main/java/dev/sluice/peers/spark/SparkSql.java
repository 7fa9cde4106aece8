package dev.sluice.peers.spark;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;

/**
 * Runs SQL in a local SparkSession whose catalog `sluice` is Iceberg's JdbcCatalog, set up with
 * the very properties README.md gives Spark users, and prints one JSON object:
 * {"startMs", "results": [{"sql", "columns", "rows", "ms"}]}, rows as Spark's own JSON rendering
 * (nulls kept, timestamps in UTC). Several --sql flags share one session, whose start is most of
 * the cost. Exit 2 for a bad command line, 1 when Spark fails (the message on stderr).
 */
public final class SparkSql {
  private static final Set<String> FLAGS = Set.of("jdbc-url", "user", "password", "warehouse", "catalog");
  private static final String USAGE = "usage: SparkSql --jdbc-url jdbc:postgresql://127.0.0.1:5432/<db> [--user postgres]"
      + " [--password p] --warehouse <path or URI> [--catalog sluice] --sql <query> [--sql <query> ...]";

  private SparkSql() {}

  public static void main(String[] argv) {
    Map<String, String> flags = new HashMap<>();
    List<String> queries = new ArrayList<>();
    try {
      for (int i = 0; i < argv.length; i += 2) {
        String flag = argv[i];
        String name = flag.startsWith("--") ? flag.substring(2) : "";
        if (!name.equals("sql") && !FLAGS.contains(name)) throw new IllegalArgumentException("unknown argument " + flag);
        if (i + 1 >= argv.length) throw new IllegalArgumentException(flag + " needs a value");
        if (name.equals("sql")) queries.add(argv[i + 1]);
        else flags.put(name, argv[i + 1]);
      }
      for (String required : List.of("jdbc-url", "warehouse")) {
        if (!flags.containsKey(required)) throw new IllegalArgumentException("--" + required + " is required");
      }
      if (queries.isEmpty()) throw new IllegalArgumentException("--sql is required");
    } catch (IllegalArgumentException e) {
      System.err.println("SparkSql: " + e.getMessage() + "\n" + USAGE);
      System.exit(2);
    }
    try {
      System.out.println(new ObjectMapper().writeValueAsString(run(flags, queries)));
      System.exit(0);
    } catch (Exception e) {
      System.err.println("SparkSql: " + e);
      System.exit(1);
    }
  }

  private static ObjectNode run(Map<String, String> flags, List<String> queries) throws Exception {
    ObjectMapper mapper = new ObjectMapper();
    String catalog = flags.getOrDefault("catalog", "sluice");
    String prefix = "spark.sql.catalog." + catalog;
    long started = System.nanoTime();
    SparkSession.Builder builder = SparkSession.builder()
        .master("local[2]")
        .appName("sluice-interop")
        .config("spark.ui.enabled", "false")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.jsonGenerator.ignoreNullFields", "false")
        // What README.md tells a Spark user, word for word.
        .config(prefix, "org.apache.iceberg.spark.SparkCatalog")
        .config(prefix + ".catalog-impl", "org.apache.iceberg.jdbc.JdbcCatalog")
        .config(prefix + ".uri", flags.get("jdbc-url"))
        .config(prefix + ".jdbc.user", flags.getOrDefault("user", "postgres"))
        .config(prefix + ".warehouse", flags.get("warehouse"));
    if (flags.containsKey("password")) builder.config(prefix + ".jdbc.password", flags.get("password"));
    ObjectNode out = JsonNodeFactory.instance.objectNode();
    try (SparkSession spark = builder.getOrCreate()) {
      out.put("startMs", (System.nanoTime() - started) / 1_000_000);
      out.put("sparkVersion", spark.version());
      ArrayNode results = out.putArray("results");
      for (String sql : queries) {
        long begun = System.nanoTime();
        Dataset<Row> result = spark.sql(sql);
        ObjectNode node = results.addObject();
        node.put("sql", sql);
        ArrayNode columns = node.putArray("columns");
        for (String column : result.columns()) columns.add(column);
        ArrayNode rows = node.putArray("rows");
        for (String row : result.toJSON().collectAsList()) rows.add(mapper.readTree(row));
        node.put("ms", (System.nanoTime() - begun) / 1_000_000);
      }
    }
    return out;
  }
}
