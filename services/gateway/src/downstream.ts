/** The gateway's clients of the internal services. */
import { Health, HealthCheckResponse_ServingStatus } from '@faceprint/contracts/health';
import { LivenessService, type ModelStatusResponse } from '@faceprint/contracts/liveness';
import { ApiKeyService as MatcherApiKeyService, ComplianceService as MatcherComplianceService, MatcherService } from '@faceprint/contracts/matcher';
import { FacePipeline } from '@faceprint/face-pipeline';
import { createClient, type CallContext, type ServiceClient } from '@faceprint/service-kit';
import type { GatewayConfig } from './gateway-config.js';

/** Clients of the services the gateway calls. */
export interface Downstream {
  /** The detector, aligner and embedder, and the sequence that uses them. */
  readonly pipeline: FacePipeline;
  /** The matcher's gallery. */
  readonly matcher: ServiceClient<typeof MatcherService>;
  /** The matcher's erasure, export and audit. */
  readonly compliance: ServiceClient<typeof MatcherComplianceService>;
  /** The matcher's managed API keys. */
  readonly apiKeys: ServiceClient<typeof MatcherApiKeyService>;
  /** Presentation-attack detection. */
  readonly liveness: ServiceClient<typeof LivenessService>;
  /**
   * The liveness service's serving model: asked once and kept while one serves, asked again with
   * `refresh` (after a call refused for naming another version: a hot swap) and while none serves.
   */
  livenessModel(parent: CallContext, refresh?: boolean): Promise<ModelStatusResponse>;
  /** Which of the services the gateway needs do not report SERVING ("detector, matcher not serving"), or undefined when all do. */
  notServing(): Promise<string | undefined>;
  /** Closes every channel. */
  close(): void;
}

/** Opens channels to the downstream services (lazily connected by grpc-js). */
export function connectDownstream(config: GatewayConfig): Downstream {
  const options = { defaultTimeoutMs: config.downstreamTimeoutMs, ...(config.downstreamCredentials ? { credentials: config.downstreamCredentials } : {}) };
  const pipeline = new FacePipeline({ detector: config.detectorAddress, aligner: config.alignerAddress, embedder: config.embedderAddress }, options);
  const matcher = createClient(MatcherService, config.matcherAddress, options);
  const compliance = createClient(MatcherComplianceService, config.matcherAddress, options);
  const apiKeys = createClient(MatcherApiKeyService, config.matcherAddress, options);
  const liveness = createClient(LivenessService, config.livenessAddress, options);
  let livenessStatus: ModelStatusResponse | undefined;
  // Liveness is needed while a purpose requires its check (a verify with frames asks for it too).
  const needed = {
    detector: config.detectorAddress,
    aligner: config.alignerAddress,
    embedder: config.embedderAddress,
    matcher: config.matcherAddress,
    ...(config.padPurposes.size > 0 ? { liveness: config.livenessAddress } : {}),
  };
  const health = Object.entries(needed).map(([name, address]) => ({ name, client: createClient(Health, address, { ...options, defaultTimeoutMs: 1_500, retry: false }) }));
  return {
    pipeline,
    matcher,
    compliance,
    apiKeys,
    liveness,
    async livenessModel(parent, refresh = false) {
      if (refresh || !livenessStatus?.serving) livenessStatus = await liveness.modelStatus({}, { parent });
      return livenessStatus;
    },
    async notServing() {
      const statuses = await Promise.all(health.map(({ client }) => client.check({}).then((r) => r.status, () => undefined)));
      const down = health.filter((_, i) => statuses[i] !== HealthCheckResponse_ServingStatus.SERVING).map(({ name }) => name);
      return down.length > 0 ? `${down.join(', ')} not serving` : undefined;
    },
    close() {
      pipeline.close();
      matcher.close();
      compliance.close();
      apiKeys.close();
      liveness.close();
      health.forEach(({ client }) => client.close());
    },
  };
}
