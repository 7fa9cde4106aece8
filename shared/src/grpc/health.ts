import * as grpc from '@grpc/grpc-js';
import { service as healthService } from 'grpc-health-check';
import { setTimeout as sleep } from 'node:timers/promises';

const HealthClient = grpc.makeGenericClientConstructor(healthService, 'grpc.health.v1.Health');

/**
 * One grpc.health.v1 Check: SERVING, NOT_SERVING, SERVICE_UNKNOWN, or UNAVAILABLE when
 * unreachable (a failed TLS handshake included). Health needs no token; `credentials` are the
 * channel's TLS (client.ts's ClientSecurity), plaintext by default.
 */
export function checkHealth(
  address: string,
  service = '',
  timeoutMs = 2000,
  credentials: grpc.ChannelCredentials = grpc.credentials.createInsecure(),
): Promise<string> {
  const client = new HealthClient(address, credentials);
  return new Promise<string>((resolve) => {
    client.check({ service }, { deadline: Date.now() + timeoutMs }, (err: grpc.ServiceError | null, res: { status: string }) => {
      client.close();
      if (err) resolve(err.code === grpc.status.NOT_FOUND ? 'SERVICE_UNKNOWN' : 'UNAVAILABLE');
      else resolve(res.status);
    });
  });
}

/**
 * Polls until the address answers SERVING. `what` names the awaited process in the error
 * ("the catalog at 127.0.0.1:50051"), which says how long it waited and the last status seen.
 */
export async function waitForServing(
  address: string,
  timeoutMs: number,
  what = address,
  credentials?: grpc.ChannelCredentials,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = 'UNAVAILABLE';
  while (Date.now() < deadline) {
    last = await checkHealth(address, '', Math.min(2000, Math.max(100, deadline - Date.now())), credentials);
    if (last === 'SERVING') return;
    await sleep(100);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} to be SERVING (last health status ${last})`);
}
