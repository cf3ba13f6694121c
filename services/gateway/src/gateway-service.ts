/**
 * The gateway's services: the face API (face-service.ts), the compliance API
 * (compliance-service.ts) and API key management (auth/api-key-service.ts), all authenticated by
 * API key (auth/api-keys.ts).
 */
import type { ServiceSetup, SetupContext } from '@faceprint/service-kit';
import { FaceprintError } from '@faceprint/service-kit';
import { status } from '@grpc/grpc-js';
import { apiKeyService } from './auth/api-key-service.js';
import { ApiKeys, ensureDevKeys, type Role } from './auth/api-keys.js';
import { complianceService } from './compliance-service.js';
import { connectDownstream } from './downstream.js';
import { faceService } from './face-service.js';
import type { GatewayConfig } from './gateway-config.js';

/** The gateway process's services and clean-up. */
export async function gatewayService(config: GatewayConfig, { log }: Pick<SetupContext, 'log'>): Promise<ServiceSetup> {
  if (config.makeDevKeys) await ensureDevKeys(config.apiKeysFile, log);
  const downstream = connectDownstream(config);
  // Keys not in the static file are looked up among the matcher's managed keys.
  const keys = (await ApiKeys.load(config.apiKeysFile)).withManagedKeys(async (secretSha256) => {
    try {
      const { key } = await downstream.apiKeys.authenticateApiKey({ secretSha256 });
      return key && { callerId: key.keyId, tenantId: key.tenantId, roles: key.roles as Role[] };
    } catch (error) {
      if (FaceprintError.from(error).code === status.NOT_FOUND) return undefined;
      throw error;
    }
  });
  return {
    services: [faceService(downstream, keys, config), complianceService(downstream, keys), apiKeyService(downstream.apiKeys, keys)],
    // Ready only while every service behind it serves: a load balancer then sends calls elsewhere.
    readiness: { check: () => downstream.notServing() },
    close: async () => downstream.close(),
  };
}
