import { CatalogServiceService } from '#shared/gen/sluice/v1/catalog.js';
import { CommitServiceService } from '#shared/gen/sluice/v1/commit.js';
import { IngestionServiceService } from '#shared/gen/sluice/v1/ingestion.js';
import { TransformationServiceService } from '#shared/gen/sluice/v1/transformation.js';
import { createClient } from '#shared/grpc/client.js';
import { bindService } from '#shared/grpc/server.js';
import { grpcMessage } from '#shared/errors.js';
import { connectNats, subscribe } from '#shared/nats.js';
import { JobChanged } from '#shared/gen/sluice/v1/events.js';
import { subjects } from '#shared/events.js';
import type { ServiceSpec } from '#shared/service.js';
import { newInstanceId } from './job-runner.js';
import { JobRegistry } from './jobs.js';
import { observeJobs } from './job-metrics.js';
import { Scheduler, schedulerClock } from './scheduler.js';

type IngestionKey =
  | 'ingestionPort'
  | 'natsUrl'
  | 'catalogAddress'
  | 'transformationAddress'
  | 'commitAddress'
  | 'kafkaBrokers'
  | 'rpcDeadlineMs'
  | 'ingestionInFlightBytes'
  | 'ingestionJobSyncMs'
  | 'ingestionSchedulerTickMs'
  | 'ingestionLateCheckMs'
  | 'ingestionSchedulerClock';

/**
 * Ingestion: runs jobs, reading Kafka and streaming records to transformation workers.
 * Each job is one kafkajs consumer group, `sluice-<job>`, shared by every ingestion process
 * running the job. On start the process resumes the jobs the catalog lists as RUNNING/PAUSED.
 */
export const ingestionService: ServiceSpec<IngestionKey> = {
  name: 'ingestion',
  portKey: 'ingestionPort',
  settings: [
    'ingestionPort',
    'natsUrl',
    'catalogAddress',
    'transformationAddress',
    'commitAddress',
    'kafkaBrokers',
    'rpcDeadlineMs',
    'ingestionInFlightBytes',
    'ingestionJobSyncMs',
    'ingestionSchedulerTickMs',
    'ingestionLateCheckMs',
    'ingestionSchedulerClock',
  ],
  protoFiles: ['sluice/v1/ingestion.proto'],
  async build({ config, logger, security, onShutdown }) {
    const nats = await connectNats(config.natsUrl, 'sluice-ingestion');
    onShutdown(() => nats.drain());
    const options = { deadlineMs: config.rpcDeadlineMs, security };
    const catalog = createClient(CatalogServiceService, config.catalogAddress, options);
    const transformation = createClient(TransformationServiceService, config.transformationAddress, options);
    const commit = createClient(CommitServiceService, config.commitAddress, options);
    onShutdown(() => {
      catalog.close();
      transformation.close();
      commit.close();
    });
    const instanceId = newInstanceId();
    const jobs = new JobRegistry({
      catalog,
      transformation,
      commit,
      nats,
      logger,
      defaultBrokers: config.kafkaBrokers,
      inFlightBytes: config.ingestionInFlightBytes,
      instanceId,
      stopTimeoutMs: Math.max(1000, config.shutdownTimeoutMs - 1000),
    });
    onShutdown(() => jobs.shutdown());
    // Scheduled jobs: whichever ingestion process holds the catalog's scheduler lease fires them.
    const scheduler = new Scheduler({
      catalog,
      startJob: (name) => jobs.start(name),
      logger: logger.child({ component: 'scheduler' }),
      owner: `ingestion-${instanceId}`,
      tickMs: config.ingestionSchedulerTickMs,
      lateCheckMs: config.ingestionLateCheckMs,
      defaultBrokers: config.kafkaBrokers,
      now: schedulerClock(config.ingestionSchedulerClock),
    });
    scheduler.start();
    onShutdown(() => scheduler.close());
    observeJobs(() => jobs.statuses());
    // Every process keeps its members of each job in line with the catalog: on each JobChanged
    // announcement, and periodically for one it missed; the first sync resumes the running jobs.
    const announcements = subscribe(
      nats,
      subjects.allJobsChanged,
      (payload) => void jobs.sync(JobChanged.decode(payload).job),
      (err) => logger.warn({ err: (err as Error).message }, 'bad job announcement ignored'),
    );
    const syncAll = () => jobs.syncAll().catch((err) => logger.warn({ err: grpcMessage(err) }, 'could not list jobs to sync'));
    void syncAll();
    const syncTimer = setInterval(syncAll, config.ingestionJobSyncMs);
    syncTimer.unref();
    onShutdown(() => {
      clearInterval(syncTimer);
      announcements.unsubscribe();
    });
    return [
      bindService('sluice.v1.IngestionService', IngestionServiceService, {
        startJob: async (req) => ({ status: await jobs.start(req.job) }),
        stopJob: async (req) => ({ status: await jobs.stop(req.job) }),
        pauseJob: async (req) => ({ status: await jobs.pause(req.job) }),
        resumeJob: async (req) => ({ status: await jobs.resume(req.job) }),
        getJobStatus: async (req) => ({ status: await jobs.status(req.job) }),
        listJobStatuses: async () => ({ statuses: jobs.list() }),
      }),
    ];
  },
};
