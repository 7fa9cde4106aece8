package org.apache.iceberg;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import org.apache.iceberg.io.FileIO;
import org.apache.iceberg.types.Comparators;
import org.apache.iceberg.types.Conversions;
import org.apache.iceberg.types.Type;
import org.apache.iceberg.types.Types;

/**
 * Reads every manifest list and every manifest of every snapshot with Iceberg's own readers
 * and checks what the manifest list says about each manifest (file and row counts per status,
 * the partition field summaries engines prune manifests with) against its entries. In
 * Iceberg's package because entries with their status (ADDED, EXISTING, DELETED) are
 * package-private: the public API shows only live files.
 */
public final class ManifestAudit {
  private ManifestAudit() {}

  /** Number of manifests read; every disagreement becomes a line in problems. */
  public static int audit(Table table, List<String> problems) {
    FileIO io = table.io();
    Map<Integer, PartitionSpec> specs = table.specs();
    int read = 0;
    for (Snapshot snapshot : table.snapshots()) {
      List<ManifestFile> manifests;
      try {
        manifests = snapshot.allManifests(io);
      } catch (RuntimeException e) {
        problems.add("snapshot " + snapshot.snapshotId() + ": manifest list " + snapshot.manifestListLocation()
            + " cannot be read: " + e);
        continue;
      }
      for (ManifestFile manifest : manifests) {
        String where = "snapshot " + snapshot.snapshotId() + " manifest " + manifest.path();
        try {
          if (manifest.content() == ManifestContent.DATA) {
            try (ManifestReader<DataFile> reader = ManifestFiles.read(manifest, io, specs)) {
              auditEntries(snapshot, manifest, reader.entries(), specs, where, problems);
            }
          } else {
            try (ManifestReader<DeleteFile> reader = ManifestFiles.readDeleteManifest(manifest, io, specs)) {
              auditEntries(snapshot, manifest, reader.entries(), specs, where, problems);
            }
          }
          read++;
        } catch (IOException e) {
          throw new UncheckedIOException(e);
        } catch (RuntimeException e) {
          problems.add(where + " cannot be read: " + e);
        }
      }
    }
    return read;
  }

  private static <F extends ContentFile<F>> void auditEntries(
      Snapshot snapshot,
      ManifestFile manifest,
      Iterable<ManifestEntry<F>> entries,
      Map<Integer, PartitionSpec> specs,
      String where,
      List<String> problems) {
    long[] files = new long[3];
    long[] rows = new long[3];
    PartitionSpec spec = specs.get(manifest.partitionSpecId());
    List<ManifestFile.PartitionFieldSummary> summaries = manifest.partitions();
    for (ManifestEntry<F> entry : entries) {
      int status = entry.status().id();
      files[status]++;
      rows[status] += entry.file().recordCount();
      Long sequence = entry.dataSequenceNumber();
      if (sequence != null && sequence > snapshot.sequenceNumber()) {
        problems.add(where + ": entry " + entry.file().location() + " has data sequence number " + sequence
            + " above its snapshot's " + snapshot.sequenceNumber());
      }
      if (entry.status() == ManifestEntry.Status.ADDED && manifest.snapshotId() != null
          && !manifest.snapshotId().equals(entry.snapshotId())) {
        problems.add(where + ": ADDED entry " + entry.file().location() + " has snapshot id " + entry.snapshotId()
            + " but the manifest was added by " + manifest.snapshotId());
      }
      if (entry.file().specId() != manifest.partitionSpecId()) {
        problems.add(where + ": entry " + entry.file().location() + " has spec " + entry.file().specId()
            + " in a manifest of spec " + manifest.partitionSpecId());
      }
      if (spec != null && summaries != null) checkSummaries(spec, summaries, entry.file().partition(), where, problems);
    }
    compare(where, "added_files_count", manifest.addedFilesCount(), files[ManifestEntry.Status.ADDED.id()], problems);
    compare(where, "existing_files_count", manifest.existingFilesCount(), files[ManifestEntry.Status.EXISTING.id()], problems);
    compare(where, "deleted_files_count", manifest.deletedFilesCount(), files[ManifestEntry.Status.DELETED.id()], problems);
    compare(where, "added_rows_count", manifest.addedRowsCount(), rows[ManifestEntry.Status.ADDED.id()], problems);
    compare(where, "existing_rows_count", manifest.existingRowsCount(), rows[ManifestEntry.Status.EXISTING.id()], problems);
    compare(where, "deleted_rows_count", manifest.deletedRowsCount(), rows[ManifestEntry.Status.DELETED.id()], problems);
  }

  /** The manifest list's summary of a partition field must cover every entry's value. */
  @SuppressWarnings("unchecked")
  private static void checkSummaries(
      PartitionSpec spec, List<ManifestFile.PartitionFieldSummary> summaries, StructLike partition, String where, List<String> problems) {
    List<Types.NestedField> fields = spec.partitionType().fields();
    if (summaries.size() != fields.size()) {
      problems.add(where + ": " + summaries.size() + " partition summaries for " + fields.size() + " partition fields");
      return;
    }
    for (int i = 0; i < fields.size(); i++) {
      Type type = fields.get(i).type();
      ManifestFile.PartitionFieldSummary summary = summaries.get(i);
      Object value = partition.get(i, Object.class);
      String field = where + " partition field " + fields.get(i).name();
      if (value == null) {
        if (!summary.containsNull()) problems.add(field + ": a null value but contains_null is false");
        continue;
      }
      Comparator<Object> order = (Comparator<Object>) Comparators.forType(type.asPrimitiveType());
      Object lower = decode(type, summary.lowerBound());
      Object upper = decode(type, summary.upperBound());
      if (lower == null || upper == null) {
        problems.add(field + ": value " + value + " but the summary has no bounds");
      } else if (order.compare(lower, value) > 0 || order.compare(upper, value) < 0) {
        problems.add(field + ": value " + value + " outside the summary's bounds [" + lower + ", " + upper + "]");
      }
    }
  }

  private static Object decode(Type type, ByteBuffer bytes) {
    return bytes == null ? null : Conversions.fromByteBuffer(type, bytes.duplicate());
  }

  private static void compare(String where, String name, Number declared, long actual, List<String> problems) {
    if (declared != null && declared.longValue() != actual) {
      problems.add(where + ": the manifest list says " + name + " " + declared + " but the manifest has " + actual);
    }
  }
}
