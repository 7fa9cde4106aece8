/**
 * The other commit replicas, by address: where this process forwards what belongs to a table
 * whose lease another replica holds (DESIGN.md, "Replicas"). One client per address, made on
 * first use and closed with the coordinator.
 */
import { CommitServiceService } from '#shared/gen/sluice/v1/commit.js';
import { createClient, type ClientSecurity, type ServiceClient } from '#shared/grpc/client.js';

export type CommitPeer = ServiceClient<typeof CommitServiceService>;

export class CommitPeers {
  private readonly clients = new Map<string, CommitPeer>();

  constructor(private readonly options: { deadlineMs: number; security?: ClientSecurity }) {}

  get(address: string): CommitPeer {
    let client = this.clients.get(address);
    if (!client) {
      // No retries here: the caller (a transformation worker) retries the whole report itself.
      client = createClient(CommitServiceService, address, {
        deadlineMs: this.options.deadlineMs,
        retries: 0,
        security: this.options.security,
      });
      this.clients.set(address, client);
    }
    return client;
  }

  close(): void {
    for (const client of this.clients.values()) client.close();
    this.clients.clear();
  }
}
