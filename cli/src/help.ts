// The CLI's help text, apart from the commands so that `sluice --help` loads none of them.

export const SOURCE_HELP = `sluice source add <name> --topic <topic> [--brokers h:p,...] [--format JSON|TEXT|CSV|FLATTEN|BINARY] [--mode VALUE|KEY|DEFAULT] [--csv-columns a,b] [--csv-delimiter ,]
sluice source list
sluice source rm <name>`;
export const INFER_HELP = `sluice infer <source> [--samples 200] [--flatten-level 0-4 (default 1)]`;
export const TABLE_HELP = `sluice table create <db>.<table> --columns "id long required, name string" [--partition-spec "day(ts),bucket[16](id)"] [--location <uri>]
sluice table create -f spec.yaml          (the table part of a job spec)
sluice table describe <db>.<table>
sluice table history <db>.<table>`;
export const JOB_HELP = `sluice job create -f spec.yaml [--start]
sluice job start|stop|pause|resume <name>
sluice job status <name> [--watch]
sluice job list [--all]                      (--all: with scheduled jobs' instances)
sluice job runs <name> [--json]              (a scheduled job's instances)
sluice job backfill <name> --from <time> --to <time>
sluice job rerun <name> --instance <time>    (times on the schedule's clock: 2022-11-22 10:05)`;

export const HELP = `sluice — Kafka to Apache Iceberg, exactly once

sluice up [--demo]                 start the mesh (with the embedded dev broker when KAFKA_BROKERS is unset)
${SOURCE_HELP}
${INFER_HELP}
${TABLE_HELP}
${JOB_HELP}
sluice query "<SQL>" [--snapshot <id> | --as-of <time>]
sluice health <host:port>          a service's gRPC health (exit 0 when SERVING), e.g. as a probe

Every command takes --json. Services are found at CATALOG_ADDRESS, INGESTION_ADDRESS and
TRANSFORMATION_ADDRESS (defaults 127.0.0.1:50051, :50052, :50053).
A secured mesh: --token <token> (SLUICE_TOKEN), --tls-ca <file> (SLUICE_TLS_CA), and for
mutual TLS --tls-cert <file> --tls-key <file> (SLUICE_TLS_CERT, SLUICE_TLS_KEY).`;
