package dev.sluice.peers.iceberg;

import java.util.HashMap;
import java.util.Map;
import org.apache.hadoop.conf.Configuration;
import org.apache.iceberg.CatalogProperties;
import org.apache.iceberg.jdbc.JdbcCatalog;

/**
 * Iceberg's JdbcCatalog configured exactly as README.md tells a Spark or Trino user: catalog
 * name, JDBC URL, user and warehouse, nothing Sluice-specific.
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
    JdbcCatalog catalog = new JdbcCatalog();
    catalog.setConf(new Configuration());
    catalog.initialize(args.optional("catalog", "sluice"), props);
    return catalog;
  }
}
