package dev.sluice.peers.iceberg;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.apache.iceberg.DataFile;
import org.apache.iceberg.FileScanTask;
import org.apache.iceberg.HasTableOperations;
import org.apache.iceberg.ManifestAudit;
import org.apache.iceberg.PartitionSpec;
import org.apache.iceberg.PartitionSpecParser;
import org.apache.iceberg.Schema;
import org.apache.iceberg.SchemaParser;
import org.apache.iceberg.Snapshot;
import org.apache.iceberg.StructLike;
import org.apache.iceberg.Table;
import org.apache.iceberg.TableMetadata;
import org.apache.iceberg.TableMetadataParser;
import org.apache.iceberg.TableScan;
import org.apache.iceberg.catalog.TableIdentifier;
import org.apache.iceberg.data.IcebergGenerics;
import org.apache.iceberg.data.Record;
import org.apache.iceberg.exceptions.NotFoundException;
import org.apache.iceberg.io.CloseableIterable;
import org.apache.iceberg.jdbc.JdbcCatalog;
import org.apache.iceberg.types.Types;

/**
 * Reads one Sluice table with Apache Iceberg's Java library, as any engine on Iceberg's JDBC
 * catalog would, and prints one JSON object: the table's schema, partition spec and snapshots,
 * the data files and rows of the current snapshot (or --snapshot), read with IcebergGenerics
 * (row-level deletes applied), and `problems`: every disagreement Iceberg's readers found
 * between the metadata Sluice wrote and the files (see FileChecks and ManifestAudit).
 *
 * <p>Exit 0 with the JSON on stdout; 2 for a bad command line; 1 when Iceberg refuses the
 * table (the message on stderr). Either of those is what the interop tests report.
 */
public final class ReadTable {
  private static final Set<String> FLAGS = Set.of(
      "jdbc-url", "user", "password", "warehouse", "catalog", "table", "snapshot",
      "s3-endpoint", "s3-access-key-id", "s3-secret-access-key", "s3-region");
  static final String USAGE = "usage: ReadTable --jdbc-url jdbc:postgresql://127.0.0.1:5432/<db> [--user postgres] [--password p]"
      + " --warehouse <path or URI> [--catalog sluice] --table <db>.<table> [--snapshot <id>]"
      + " [--s3-endpoint http://host:port --s3-access-key-id K --s3-secret-access-key S [--s3-region r]]";

  private ReadTable() {}

  public static void main(String[] argv) {
    try {
      Args args = new Args(argv, FLAGS);
      String name = args.required("table");
      Long snapshotId = args.optionalLong("snapshot");
      JsonNode out;
      try (JdbcCatalog catalog = Catalogs.open(args)) {
        Table table = catalog.loadTable(TableIdentifier.parse(name));
        out = describe(catalog.name(), name, table, snapshotId);
      }
      System.out.println(new ObjectMapper().writeValueAsString(out));
    } catch (Args.UsageError e) {
      System.err.println("ReadTable: " + e.getMessage() + "\n" + USAGE);
      System.exit(2);
    } catch (Exception e) {
      // The stack first (where Iceberg gave up), the verdict last: callers show the tail.
      e.printStackTrace();
      System.err.println("ReadTable: Iceberg refused the table: " + e);
      for (Throwable cause = e.getCause(); cause != null; cause = cause.getCause()) System.err.println("  caused by: " + cause);
      System.exit(1);
    }
  }

  static ObjectNode describe(String catalogName, String name, Table table, Long snapshotId) {
    List<String> problems = new ArrayList<>();
    TableMetadata metadata = ((HasTableOperations) table).operations().current();
    ObjectNode out = JsonValues.NODES.objectNode();
    out.put("catalog", catalogName);
    out.put("table", name);
    out.put("uuid", table.uuid().toString());
    out.put("location", table.location());
    out.put("formatVersion", metadata.formatVersion());
    out.put("metadataLocation", metadata.metadataFileLocation());
    out.set("properties", stringMap(table.properties()));
    out.set("schema", parse(SchemaParser.toJson(table.schema())));
    out.set("spec", parse(PartitionSpecParser.toJson(table.spec())));
    ArrayNode specs = out.putArray("specs");
    table.specs().values().forEach(s -> specs.add(parse(PartitionSpecParser.toJson(s))));
    Snapshot current = table.currentSnapshot();
    if (current == null) out.putNull("currentSnapshotId");
    else out.put("currentSnapshotId", current.snapshotId());
    ArrayNode snapshots = out.putArray("snapshots");
    for (Snapshot s : table.snapshots()) snapshots.add(snapshot(s));

    ObjectNode checks = out.putObject("checks");
    checks.put("metadataFilesParsed", parsePreviousMetadata(table, metadata, problems));
    checks.put("manifestsRead", ManifestAudit.audit(table, problems));

    Long readId = snapshotId != null ? snapshotId : current == null ? null : current.snapshotId();
    if (readId == null) {
      out.putNull("snapshotId");
      out.set("readSchema", parse(SchemaParser.toJson(table.schema())));
      out.putArray("files");
      out.putArray("rows");
    } else {
      if (table.snapshot(readId) == null) throw new IllegalArgumentException("table " + name + " has no snapshot " + readId);
      out.put("snapshotId", readId);
      // Column stats are dropped from planned files unless asked for; FileChecks needs them.
      TableScan scan = table.newScan().useSnapshot(readId).includeColumnStats();
      Schema schema = scan.schema();
      out.set("readSchema", parse(SchemaParser.toJson(schema)));
      checks.put("dataFilesChecked", files(table, scan, schema, out.putArray("files"), problems));
      checkSummary(table.snapshot(readId), out.withArray("files"), problems);
      ArrayNode rows = out.putArray("rows");
      try (CloseableIterable<Record> records = IcebergGenerics.read(table).useSnapshot(readId).build()) {
        for (Record r : records) rows.add(JsonValues.struct(schema.asStruct(), r));
      } catch (IOException | RuntimeException e) {
        // Reported with everything else found, rather than instead of it.
        problems.add("IcebergGenerics cannot read snapshot " + readId + ": " + causes(e));
        rows.removeAll();
      }
    }
    ArrayNode problemList = out.putArray("problems");
    problems.forEach(problemList::add);
    return out;
  }

  private static ObjectNode snapshot(Snapshot s) {
    ObjectNode node = JsonValues.NODES.objectNode();
    node.put("snapshotId", s.snapshotId());
    if (s.parentId() == null) node.putNull("parentId");
    else node.put("parentId", s.parentId());
    node.put("sequenceNumber", s.sequenceNumber());
    node.put("timestampMs", s.timestampMillis());
    node.put("operation", s.operation());
    if (s.schemaId() == null) node.putNull("schemaId");
    else node.put("schemaId", s.schemaId());
    node.put("manifestList", s.manifestListLocation());
    node.set("summary", stringMap(s.summary()));
    return node;
  }

  /** Every metadata file in the log must parse; one removed since is counted, not a problem. */
  private static int parsePreviousMetadata(Table table, TableMetadata metadata, List<String> problems) {
    int parsed = 0;
    for (TableMetadata.MetadataLogEntry entry : metadata.previousFiles()) {
      try {
        TableMetadataParser.read(table.io(), entry.file());
        parsed++;
      } catch (NotFoundException e) {
        // Gone (metadata cleanup); nothing left to judge.
      } catch (RuntimeException e) {
        problems.add("metadata file " + entry.file() + " cannot be parsed: " + e);
      }
    }
    return parsed;
  }

  private static int files(Table table, TableScan scan, Schema schema, ArrayNode files, List<String> problems) {
    int checked = 0;
    try (CloseableIterable<FileScanTask> tasks = scan.planFiles()) {
      for (FileScanTask task : tasks) {
        DataFile file = task.file();
        PartitionSpec spec = table.specs().get(file.specId());
        ObjectNode node = files.addObject();
        node.put("path", file.location());
        node.put("format", file.format().name());
        node.put("specId", file.specId());
        node.set("partition", partition(spec, file.partition()));
        node.put("partitionPath", spec.isPartitioned() ? spec.partitionToPath(file.partition()) : "");
        node.put("recordCount", file.recordCount());
        node.put("fileSizeInBytes", file.fileSizeInBytes());
        node.put("deleteFiles", task.deletes().size());
        try {
          FileChecks.check(table, schema, file, problems);
        } catch (RuntimeException e) {
          problems.add("data file " + file.location() + " cannot be read: " + causes(e));
        }
        checked++;
      }
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    return checked;
  }

  /** The snapshot summary's totals must match the files a scan of it plans. */
  private static void checkSummary(Snapshot snapshot, ArrayNode files, List<String> problems) {
    long records = 0;
    for (JsonNode f : files) records += f.get("recordCount").asLong();
    String where = "snapshot " + snapshot.snapshotId() + " summary";
    String totalRecords = snapshot.summary().get("total-records");
    if (totalRecords != null && Long.parseLong(totalRecords) != records) {
      problems.add(where + ": total-records " + totalRecords + " but its data files hold " + records);
    }
    String totalFiles = snapshot.summary().get("total-data-files");
    if (totalFiles != null && Long.parseLong(totalFiles) != files.size()) {
      problems.add(where + ": total-data-files " + totalFiles + " but a scan plans " + files.size());
    }
  }

  /** An exception and its causes on one line. */
  static String causes(Throwable e) {
    StringBuilder text = new StringBuilder(e.toString());
    for (Throwable cause = e.getCause(); cause != null; cause = cause.getCause()) text.append("; caused by ").append(cause);
    return text.toString();
  }

  private static ObjectNode partition(PartitionSpec spec, StructLike partition) {
    ObjectNode node = JsonValues.NODES.objectNode();
    List<Types.NestedField> fields = spec.partitionType().fields();
    for (int i = 0; i < fields.size(); i++) node.set(fields.get(i).name(), JsonValues.internal(partition.get(i, Object.class)));
    return node;
  }

  private static ObjectNode stringMap(Map<String, String> map) {
    ObjectNode node = JsonValues.NODES.objectNode();
    map.forEach(node::put);
    return node;
  }

  private static JsonNode parse(String json) {
    try {
      return new ObjectMapper().readTree(json);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }
}
