import { TransformationServiceService } from '../../../shared/src/gen/sluice/v1/transformation.js';
import { bindService } from '../../../shared/src/grpc/server.js';
import { connectNats } from '../../../shared/src/nats.js';
import type { ServiceSpec } from '../../../shared/src/service.js';

/** Transformation: records to rows to Parquet files, reported to the commit service on flush. */
export const transformationService: ServiceSpec<'transformationPort' | 'natsUrl' | 'commitAddress' | 'catalogAddress'> = {
  name: 'transformation',
  portKey: 'transformationPort',
  settings: ['transformationPort', 'natsUrl', 'commitAddress', 'catalogAddress'],
  protoFiles: ['sluice/v1/transformation.proto'],
  async build({ config, onShutdown }) {
    const nats = await connectNats(config.natsUrl, 'sluice-transformation');
    onShutdown(() => nats.drain());
    return [bindService('sluice.v1.TransformationService', TransformationServiceService, {})];
  },
};
