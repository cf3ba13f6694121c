/**
 * The gateway's services: the face API (face-service.ts) and the compliance API
 * (compliance-service.ts), both authenticated by API key (auth/api-keys.ts).
 */
import type { ServiceSetup, SetupContext } from '@faceprint/service-kit';
import { ApiKeys, ensureDevKeys } from './auth/api-keys.js';
import { complianceService } from './compliance-service.js';
import { connectDownstream } from './downstream.js';
import { faceService } from './face-service.js';
import type { GatewayConfig } from './gateway-config.js';

/** The gateway process's services and clean-up. */
export async function gatewayService(config: GatewayConfig, { log }: Pick<SetupContext, 'log'>): Promise<ServiceSetup> {
  if (config.makeDevKeys) await ensureDevKeys(config.apiKeysFile, log);
  const keys = await ApiKeys.load(config.apiKeysFile);
  const downstream = connectDownstream(config);
  return {
    services: [faceService(downstream, keys, config), complianceService(downstream, keys)],
    // Ready only while every service behind it serves: a load balancer then sends calls elsewhere.
    readiness: { check: () => downstream.notServing() },
    close: async () => downstream.close(),
  };
}
