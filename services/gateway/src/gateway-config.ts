/** The gateway's own settings: where the downstream services are. */
import { address, compileEnv, DEFAULT_GRPC_PORTS, int } from '@faceprint/service-kit';

/** Downstream addresses and call limits of the gateway. */
export interface GatewayConfig {
  /** `FACEPRINT_DETECTOR_ADDRESS`, default `127.0.0.1:50051`. */
  readonly detectorAddress: string;
  /** `FACEPRINT_ALIGNER_ADDRESS`, default `127.0.0.1:50052`. */
  readonly alignerAddress: string;
  /** `FACEPRINT_EMBEDDER_ADDRESS`, default `127.0.0.1:50053`. */
  readonly embedderAddress: string;
  /** `FACEPRINT_MATCHER_ADDRESS`, default `127.0.0.1:50054`. */
  readonly matcherAddress: string;
  /** Deadline of a downstream call when the client set none, in ms. `FACEPRINT_DOWNSTREAM_TIMEOUT_MS`, default 30000. */
  readonly downstreamTimeoutMs: number;
}

/** Compiles the gateway's settings from the environment. */
export function loadGatewayConfig(env: NodeJS.ProcessEnv): GatewayConfig {
  const local = (port: number) => `127.0.0.1:${port}`;
  const compiled = compileEnv(env, {
    FACEPRINT_DETECTOR_ADDRESS: address({ default: local(DEFAULT_GRPC_PORTS.detector) }),
    FACEPRINT_ALIGNER_ADDRESS: address({ default: local(DEFAULT_GRPC_PORTS.aligner) }),
    FACEPRINT_EMBEDDER_ADDRESS: address({ default: local(DEFAULT_GRPC_PORTS.embedder) }),
    FACEPRINT_MATCHER_ADDRESS: address({ default: local(DEFAULT_GRPC_PORTS.matcher) }),
    FACEPRINT_DOWNSTREAM_TIMEOUT_MS: int(100, 600_000)({ default: 30_000 }),
  });
  return Object.freeze({
    detectorAddress: compiled.FACEPRINT_DETECTOR_ADDRESS,
    alignerAddress: compiled.FACEPRINT_ALIGNER_ADDRESS,
    embedderAddress: compiled.FACEPRINT_EMBEDDER_ADDRESS,
    matcherAddress: compiled.FACEPRINT_MATCHER_ADDRESS,
    downstreamTimeoutMs: compiled.FACEPRINT_DOWNSTREAM_TIMEOUT_MS,
  });
}
