import { IngestionServiceService } from '../../../shared/src/gen/sluice/v1/ingestion.js';
import { bindService } from '../../../shared/src/grpc/server.js';
import { connectNats } from '../../../shared/src/nats.js';
import type { ServiceSpec } from '../../../shared/src/service.js';

/** Ingestion: runs jobs, reading Kafka and streaming records to transformation workers. */
export const ingestionService: ServiceSpec<'ingestionPort' | 'natsUrl' | 'catalogAddress' | 'transformationAddress' | 'kafkaBrokers'> = {
  name: 'ingestion',
  portKey: 'ingestionPort',
  settings: ['ingestionPort', 'natsUrl', 'catalogAddress', 'transformationAddress', 'kafkaBrokers'],
  protoFiles: ['sluice/v1/ingestion.proto'],
  async build({ config, onShutdown }) {
    const nats = await connectNats(config.natsUrl, 'sluice-ingestion');
    onShutdown(() => nats.drain());
    return [bindService('sluice.v1.IngestionService', IngestionServiceService, {})];
  },
};
