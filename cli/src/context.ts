import { loadConfig } from '#shared/config.js';
import { CatalogServiceService } from '#shared/gen/sluice/v1/catalog.js';
import { IngestionServiceService } from '#shared/gen/sluice/v1/ingestion.js';
import { TransformationServiceService } from '#shared/gen/sluice/v1/transformation.js';
import { CLIENT_SECURITY_KEYS, type ClientSecurity, clientSecurity, createClient, type ServiceClient } from '#shared/grpc/client.js';
import type { Output } from './output.js';

export type CatalogClient = ServiceClient<typeof CatalogServiceService>;
export type IngestionClient = ServiceClient<typeof IngestionServiceService>;
export type TransformationClient = ServiceClient<typeof TransformationServiceService>;

/** What every command gets: output, settings and lazily created service clients. */
export class CliContext {
  readonly settings;
  /** TLS and token from SLUICE_TLS*, SLUICE_TOKEN (or the flags main.ts turns into them). */
  private readonly security: ClientSecurity;
  private readonly clients: { close(): void }[] = [];
  private catalogClient?: CatalogClient;
  private ingestionClient?: IngestionClient;
  private transformationClient?: TransformationClient;

  constructor(
    readonly out: Output,
    env: Record<string, string | undefined> = process.env,
  ) {
    this.settings = loadConfig(
      ['catalogAddress', 'ingestionAddress', 'transformationAddress', 'kafkaBrokers', 'devBrokerDataDir', 'warehouse', 'rpcDeadlineMs'],
      env,
    );
    this.security = clientSecurity(loadConfig(CLIENT_SECURITY_KEYS, env));
  }

  private track<T extends { close(): void }>(client: T): T {
    this.clients.push(client);
    return client;
  }

  // A CLI call should fail fast when the mesh is down, not retry for the whole deadline.
  /** The health status of the service at `address` (no token needed), over this context's TLS. */
  async health(address: string): Promise<string> {
    const { checkHealth } = await import('#shared/grpc/health.js');
    return checkHealth(address, '', 2000, this.security.credentials);
  }

  private options() {
    return { deadlineMs: this.settings.rpcDeadlineMs, retries: 2, security: this.security };
  }

  catalog(): CatalogClient {
    return (this.catalogClient ??= this.track(createClient(CatalogServiceService, this.settings.catalogAddress, this.options())));
  }

  ingestion(): IngestionClient {
    return (this.ingestionClient ??= this.track(createClient(IngestionServiceService, this.settings.ingestionAddress, this.options())));
  }

  transformation(): TransformationClient {
    return (this.transformationClient ??= this.track(
      createClient(TransformationServiceService, this.settings.transformationAddress, this.options()),
    ));
  }

  close(): void {
    for (const client of this.clients) client.close();
  }
}
