/** Where each service listens by default: a module with no dependencies, so that the CLI's help loads fast. */
import type { ServiceName } from '@faceprint/contracts';

/** Default gRPC port of each service. */
export const DEFAULT_GRPC_PORTS: Readonly<Record<ServiceName, number>> = {
  gateway: 50050,
  detector: 50051,
  aligner: 50052,
  embedder: 50053,
  matcher: 50054,
  trainer: 50055,
  liveness: 50056,
};

/** Default Prometheus metrics port of each service. */
export const DEFAULT_METRICS_PORTS: Readonly<Record<ServiceName, number>> = {
  gateway: 9460,
  detector: 9461,
  aligner: 9462,
  embedder: 9463,
  matcher: 9464,
  trainer: 9465,
  liveness: 9466,
};
