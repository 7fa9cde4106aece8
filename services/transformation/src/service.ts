import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createStorage } from '#shared/storage/index.js';
import { OpenFileBudget } from './open-file-budget.js';
import { CatalogServiceService } from '#shared/gen/sluice/v1/catalog.js';
import { CommitServiceService } from '#shared/gen/sluice/v1/commit.js';
import { TransformationServiceService } from '#shared/gen/sluice/v1/transformation.js';
import { createClient } from '#shared/grpc/client.js';
import { receiveIntoPool } from '#shared/grpc/framing.js';
import { bindService } from '#shared/grpc/server.js';
import { connectNats } from '#shared/nats.js';
import type { ServiceSpec } from '#shared/service.js';
import { inferSchemaRpc, previewMappingRpc } from './inspect.js';
import { FlushRouter } from './signals.js';
import { decodeTransformRequest } from './request-decoder.js';
import { TransformStreams } from './stream.js';

type TransformationKey =
  | 'transformationPort'
  | 'natsUrl'
  | 'commitAddress'
  | 'catalogAddress'
  | 'rpcDeadlineMs'
  | 'transformationTargetFileBytes'
  | 'transformationOpenFileBytes'
  | 'transformationSpoolDir'
  | 'transformationReportRetryMs'
  | 'transformationHeartbeatMs';

/** The generated service, with Transform's requests decoded without copying their records (request-decoder.ts). */
const TRANSFORMATION_SERVICE = {
  ...TransformationServiceService,
  transform: { ...TransformationServiceService.transform, requestDeserialize: decodeTransformRequest },
} satisfies typeof TransformationServiceService;

/** Transformation: records to rows to Parquet files, reported to the commit service on flush. */
export const transformationService: ServiceSpec<TransformationKey> = {
  name: 'transformation',
  portKey: 'transformationPort',
  settings: [
    'transformationPort',
    'natsUrl',
    'commitAddress',
    'catalogAddress',
    'rpcDeadlineMs',
    'transformationTargetFileBytes',
    'transformationOpenFileBytes',
    'transformationSpoolDir',
    'transformationReportRetryMs',
    'transformationHeartbeatMs',
  ],
  protoFiles: ['sluice/v1/transformation.proto'],
  async build({ config, logger, security, onShutdown, onDrain }) {
    // Batches arrive in reused buffers, given back once transformed (framing.ts, stream.ts).
    receiveIntoPool();
    const nats = await connectNats(config.natsUrl, 'sluice-transformation');
    onShutdown(() => nats.drain());
    const catalog = createClient(CatalogServiceService, config.catalogAddress, { deadlineMs: config.rpcDeadlineMs, security });
    onShutdown(() => catalog.close());
    const commit = createClient(CommitServiceService, config.commitAddress, { deadlineMs: config.rpcDeadlineMs, security });
    onShutdown(() => commit.close());
    const streams = new TransformStreams(
      {
        openFiles: new OpenFileBudget(config.transformationOpenFileBytes),
        files: {
          targetFileBytes: config.transformationTargetFileBytes,
          storage: createStorage(),
          spoolDir: config.transformationSpoolDir || join(tmpdir(), 'sluice-spool'),
        },
        catalog,
        commit,
        nats,
        flushes: new FlushRouter(nats, logger),
        logger,
        now: Date.now,
        settings: {
          heartbeatMs: config.transformationHeartbeatMs,
          reportRetry: { budgetMs: config.transformationReportRetryMs, firstBackoffMs: 100, maxBackoffMs: 5000 },
        },
      },
      logger,
    );
    // On stop, every open stream ends at its next batch boundary (UNAVAILABLE, unreported
    // files deleted) and new ones are refused, before the server waits for in-flight calls.
    onDrain(() => streams.drain());
    return [
      bindService('sluice.v1.TransformationService', TRANSFORMATION_SERVICE, {
        transform: (call) => streams.handle(call),
        inferSchema: async (req) => inferSchemaRpc(req),
        previewMapping: async (req) => previewMappingRpc(req, Date.now()),
      }),
    ];
  },
};
