package dev.sluice.peers.iceberg;

import java.util.HashMap;
import java.util.Map;
import org.apache.hadoop.conf.Configuration;
import org.apache.iceberg.CatalogProperties;
import org.apache.iceberg.jdbc.JdbcCatalog;

/**
 * Iceberg's JdbcCatalog configured exactly as README.md tells a Spark or Trino user: catalog
 * name, JDBC URL, user and warehouse, nothing Sluice-specific. With --s3-endpoint, files are
 * read through Iceberg's S3FileIO from that S3-compatible server (path-style, static keys).
 */
final class Catalogs {
  private Catalogs() {}

  static JdbcCatalog open(Args args) {
    Map<String, String> props = new HashMap<>();
    props.put(CatalogProperties.URI, args.required("jdbc-url"));
    props.put(JdbcCatalog.PROPERTY_PREFIX + "user", args.optional("user", "postgres"));
    String password = args.optional("password", null);
    if (password != null) props.put(JdbcCatalog.PROPERTY_PREFIX + "password", password);
    props.put(CatalogProperties.WAREHOUSE_LOCATION, args.required("warehouse"));
    String s3Endpoint = args.optional("s3-endpoint", null);
    if (s3Endpoint != null) {
      props.put(CatalogProperties.FILE_IO_IMPL, "org.apache.iceberg.aws.s3.S3FileIO");
      props.put("s3.endpoint", s3Endpoint);
      props.put("s3.path-style-access", "true");
      props.put("s3.access-key-id", args.required("s3-access-key-id"));
      props.put("s3.secret-access-key", args.required("s3-secret-access-key"));
      props.put("client.region", args.optional("s3-region", "us-east-1"));
    }
    JdbcCatalog catalog = new JdbcCatalog();
    catalog.setConf(new Configuration());
    catalog.initialize(args.optional("catalog", "sluice"), props);
    return catalog;
  }
}
