/**
 * Every gRPC service of the mesh, by the process that serves it. The service kit registers these
 * for reflection; tests check that each process serves exactly its own.
 */
import type { DescService } from '@bufbuild/protobuf';
import { AlignerService } from './aligner.js';
import { DetectorService } from './detector.js';
import { EmbedderService } from './embedder.js';
import { LivenessService } from './liveness.js';
import { ApiKeyService as GatewayApiKeyService, ComplianceService as GatewayComplianceService, FaceService } from './gateway.js';
import { ApiKeyService as MatcherApiKeyService, ComplianceService as MatcherComplianceService, MatcherService } from './matcher.js';
import { TrainerService } from './trainer.js';

/** The seven faceprint services (processes). */
export type ServiceName = 'gateway' | 'detector' | 'aligner' | 'embedder' | 'matcher' | 'trainer' | 'liveness';

/** All service names, in port order. */
export const SERVICE_NAMES: readonly ServiceName[] = ['gateway', 'detector', 'aligner', 'embedder', 'matcher', 'trainer', 'liveness'];

/** The gRPC services each process serves. */
export const SERVICES_BY_PROCESS: Readonly<Record<ServiceName, readonly DescService[]>> = {
  gateway: [FaceService, GatewayComplianceService, GatewayApiKeyService],
  detector: [DetectorService],
  aligner: [AlignerService],
  embedder: [EmbedderService],
  matcher: [MatcherService, MatcherComplianceService, MatcherApiKeyService],
  trainer: [TrainerService],
  liveness: [LivenessService],
};
