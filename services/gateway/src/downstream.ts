/** The gateway's clients of the internal services. */
import { DetectorService } from '@faceprint/contracts/detector';
import { createClient, type ServiceClient } from '@faceprint/service-kit';
import type { GatewayConfig } from './gateway-config.js';

/** Clients of the services the gateway calls. */
export interface Downstream {
  /** The detector. */
  readonly detector: ServiceClient<typeof DetectorService>;
  /** Closes every channel. */
  close(): void;
}

/** Opens channels to the downstream services (lazily connected by grpc-js). */
export function connectDownstream(config: GatewayConfig): Downstream {
  const options = { defaultTimeoutMs: config.downstreamTimeoutMs };
  const detector = createClient(DetectorService, config.detectorAddress, options);
  return {
    detector,
    close() {
      detector.close();
    },
  };
}
