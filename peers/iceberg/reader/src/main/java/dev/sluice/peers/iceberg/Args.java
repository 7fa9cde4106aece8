package dev.sluice.peers.iceberg;

import java.util.HashMap;
import java.util.Map;
import java.util.Set;

/** `--name value` pairs, checked against the names a program knows; every error names the flag. */
final class Args {
  private final Map<String, String> values = new HashMap<>();

  Args(String[] argv, Set<String> known) {
    for (int i = 0; i < argv.length; i++) {
      String flag = argv[i];
      if (!flag.startsWith("--") || !known.contains(flag.substring(2))) {
        throw new UsageError("unknown argument " + flag);
      }
      if (i + 1 >= argv.length) throw new UsageError(flag + " needs a value");
      values.put(flag.substring(2), argv[++i]);
    }
  }

  String required(String name) {
    String value = values.get(name);
    if (value == null || value.isEmpty()) throw new UsageError("--" + name + " is required");
    return value;
  }

  String optional(String name, String fallback) {
    return values.getOrDefault(name, fallback);
  }

  Long optionalLong(String name) {
    String value = values.get(name);
    if (value == null) return null;
    try {
      return Long.parseLong(value);
    } catch (NumberFormatException e) {
      throw new UsageError("--" + name + " must be an integer, not " + value);
    }
  }

  /** A command line that cannot be run: exit code 2, one line on stderr. */
  static final class UsageError extends RuntimeException {
    UsageError(String message) {
      super(message);
    }
  }
}
