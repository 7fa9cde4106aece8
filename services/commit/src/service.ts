import { CommitServiceService } from '../../../shared/src/gen/sluice/v1/commit.js';
import { bindService } from '../../../shared/src/grpc/server.js';
import { connectNats } from '../../../shared/src/nats.js';
import type { ServiceSpec } from '../../../shared/src/service.js';

/** Commit: flush coordination, manifests, and snapshots committed with their Kafka offsets. */
export const commitService: ServiceSpec<'commitPort' | 'natsUrl' | 'catalogAddress'> = {
  name: 'commit',
  portKey: 'commitPort',
  settings: ['commitPort', 'natsUrl', 'catalogAddress'],
  protoFiles: ['sluice/v1/commit.proto'],
  async build({ config, onShutdown }) {
    const nats = await connectNats(config.natsUrl, 'sluice-commit');
    onShutdown(() => nats.drain());
    return [bindService('sluice.v1.CommitService', CommitServiceService, {})];
  },
};
