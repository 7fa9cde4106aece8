// Programmatic API of the Kafka-protocol dev broker (see ../README.md).
export { startDevBroker, DevBrokerError, type DevBroker, type DevBrokerOptions, type AppendResult } from './broker.js';
export type { Faults } from './server/faults.js';
export type { RecordInput } from './protocol/record-batch.js';
export { ErrorCode } from './protocol/errors.js';
export { ApiKey } from './protocol/api-keys.js';
