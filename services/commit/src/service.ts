import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { CatalogServiceService } from '#shared/gen/sluice/v1/catalog.js';
import { CommitServiceService } from '#shared/gen/sluice/v1/commit.js';
import { subjects } from '#shared/events.js';
import { createClient } from '#shared/grpc/client.js';
import { bindService, type ServiceBinding } from '#shared/grpc/server.js';
import { connectNats, subscribe, type NatsConnection, type Subscription } from '#shared/nats.js';
import type { ServiceSpec } from '#shared/service.js';
import { createStorage } from '#shared/storage/index.js';
import { natsAnnouncer } from './announcer.js';
import { CommitCoordinator } from './coordinator.js';
import { CommitPeers } from './peers.js';

type CommitKey =
  | 'commitPort'
  | 'natsUrl'
  | 'catalogAddress'
  | 'rpcDeadlineMs'
  | 'commitDefaultIntervalMs'
  | 'commitFlushTimeoutMs'
  | 'commitWorkerTtlMs'
  | 'commitLeaseTtlMs'
  | 'commitMaintenanceIntervalMs'
  | 'commitOrphanMinAgeMs'
  | 'commitAdvertisedAddress';

/** Commit: flush coordination, manifests, and snapshots committed with their Kafka offsets. */
export const commitService: ServiceSpec<CommitKey> = {
  name: 'commit',
  portKey: 'commitPort',
  settings: [
    'commitPort',
    'natsUrl',
    'catalogAddress',
    'rpcDeadlineMs',
    'commitDefaultIntervalMs',
    'commitFlushTimeoutMs',
    'commitWorkerTtlMs',
    'commitLeaseTtlMs',
    'commitMaintenanceIntervalMs',
    'commitOrphanMinAgeMs',
    'commitAdvertisedAddress',
  ],
  protoFiles: ['sluice/v1/commit.proto'],
  async build({ config, logger, security, onShutdown, onServing }) {
    const nats = await connectNats(config.natsUrl, 'sluice-commit');
    onShutdown(() => nats.drain());
    const catalog = createClient(CatalogServiceService, config.catalogAddress, { deadlineMs: config.rpcDeadlineMs, security });
    onShutdown(() => catalog.close());
    let advertised: string | undefined = config.commitAdvertisedAddress || undefined;
    onServing((port) => {
      advertised ??= `${reachableHost(config.bindHost)}:${port}`;
    });
    const coordinator = new CommitCoordinator(
      {
        catalog,
        storage: createStorage(),
        logger,
        settings: {
          defaultIntervalMs: config.commitDefaultIntervalMs,
          flushTimeoutMs: config.commitFlushTimeoutMs,
          workerTtlMs: config.commitWorkerTtlMs,
          leaseTtlMs: config.commitLeaseTtlMs,
          maintenanceIntervalMs: config.commitMaintenanceIntervalMs,
          orphanMinAgeMs: config.commitOrphanMinAgeMs,
        },
        owner: leaseOwner(config.commitPort),
        advertisedAddress: () => advertised,
        peers: new CommitPeers({ deadlineMs: config.rpcDeadlineMs, security }),
        now: Date.now,
      },
      natsAnnouncer(nats),
    );
    // Registered after the NATS drain, so it runs before it: commits in flight finish and
    // announce before the connection closes.
    onShutdown(() => coordinator.stop());
    listenForHeartbeats(nats, coordinator);
    return [commitBinding(coordinator)];
  },
};

/**
 * Who this process is as a lease holder. With a fixed port it is host:port: only one live
 * process can hold that port, so a coordinator restarted after a crash (kill -9) is the same
 * owner and renews its lease at once instead of waiting out the TTL, while a paused-but-alive
 * predecessor keeps the port and so prevents the restart altogether. With an OS-chosen port
 * (tests) every process is a new owner.
 */
export function leaseOwner(port: number): string {
  return port > 0 ? `${hostname()}:${port}` : `${hostname()}/${process.pid}/${randomUUID().slice(0, 8)}`;
}

/** The host other replicas reach this process by: the bind host, or the host name when binding every interface. */
export function reachableHost(bindHost: string): string {
  return bindHost === '0.0.0.0' || bindHost === '::' || bindHost === '' ? hostname() : bindHost;
}

/** The CommitService gRPC handlers of a coordinator. */
export function commitBinding(coordinator: CommitCoordinator): ServiceBinding {
  return bindService('sluice.v1.CommitService', CommitServiceService, {
    reportDataFiles: (req) => coordinator.reportDataFiles(req),
    triggerFlush: (req) => coordinator.triggerFlush(req),
    getCommitStatus: (req) => coordinator.getCommitStatus(req),
  });
}

/** Feeds every WorkerHeartbeat on NATS to the coordinator. */
export function listenForHeartbeats(nats: NatsConnection, coordinator: CommitCoordinator): Subscription {
  return subscribe(
    nats,
    subjects.allWorkers,
    (payload) => coordinator.onHeartbeat(payload),
    (err) => coordinator.ctx.logger.warn({ err: (err as Error).message }, 'bad worker heartbeat ignored'),
  );
}
