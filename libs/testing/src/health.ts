/** Health checks against a running server, through the standard grpc.health.v1 protocol. */
import { Health, type HealthCheckResponse_ServingStatus } from '@faceprint/contracts/health';
import { createClient } from '@faceprint/service-kit';
import type { ChannelCredentials } from '@grpc/grpc-js';

export { HealthCheckResponse_ServingStatus as ServingStatus } from '@faceprint/contracts/health';

/** The health of `service` ("" = the whole server) at `address` (called with `credentials`, if given). */
export async function checkHealth(address: string, service = '', credentials?: ChannelCredentials): Promise<HealthCheckResponse_ServingStatus> {
  const client = createClient(Health, address, { defaultTimeoutMs: 5_000, ...(credentials ? { credentials } : {}) });
  try {
    return (await client.check({ service })).status;
  } finally {
    client.close();
  }
}

/**
 * Watches the health of `service` and resolves with every status seen until `until` returns
 * true for one (the stream is then closed).
 */
export async function watchHealthUntil(
  address: string,
  until: (status: HealthCheckResponse_ServingStatus) => boolean,
  service = '',
  timeoutMs = 20_000,
): Promise<HealthCheckResponse_ServingStatus[]> {
  const client = createClient(Health, address, { defaultTimeoutMs: timeoutMs });
  const seen: HealthCheckResponse_ServingStatus[] = [];
  try {
    for await (const response of client.watch({ service })) {
      seen.push(response.status);
      if (until(response.status)) break;
    }
    return seen;
  } finally {
    client.close();
  }
}
