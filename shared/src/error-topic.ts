/**
 * The headers of an ERROR_TOPIC policy's record: why it was refused and where it came from.
 * Transformation writes them; ingestion reads them back to name a record Kafka will not take.
 */
export const ERROR_HEADERS = {
  reason: 'sluice.error.reason',
  message: 'sluice.error.message',
  topic: 'sluice.source.topic',
  partition: 'sluice.source.partition',
  offset: 'sluice.source.offset',
} as const;
