/** The gateway's clients of the internal services. */
import { ComplianceService as MatcherComplianceService, MatcherService } from '@faceprint/contracts/matcher';
import { FacePipeline } from '@faceprint/face-pipeline';
import { createClient, type ServiceClient } from '@faceprint/service-kit';
import type { GatewayConfig } from './gateway-config.js';

/** Clients of the services the gateway calls. */
export interface Downstream {
  /** The detector, aligner and embedder, and the sequence that uses them. */
  readonly pipeline: FacePipeline;
  /** The matcher's gallery. */
  readonly matcher: ServiceClient<typeof MatcherService>;
  /** The matcher's erasure, export and audit. */
  readonly compliance: ServiceClient<typeof MatcherComplianceService>;
  /** Closes every channel. */
  close(): void;
}

/** Opens channels to the downstream services (lazily connected by grpc-js). */
export function connectDownstream(config: GatewayConfig): Downstream {
  const options = { defaultTimeoutMs: config.downstreamTimeoutMs, ...(config.downstreamCredentials ? { credentials: config.downstreamCredentials } : {}) };
  const pipeline = new FacePipeline({ detector: config.detectorAddress, aligner: config.alignerAddress, embedder: config.embedderAddress }, options);
  const matcher = createClient(MatcherService, config.matcherAddress, options);
  const compliance = createClient(MatcherComplianceService, config.matcherAddress, options);
  return {
    pipeline,
    matcher,
    compliance,
    close() {
      pipeline.close();
      matcher.close();
      compliance.close();
    },
  };
}
