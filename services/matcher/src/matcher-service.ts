/** The matcher's gRPC handlers: every rpc answers UNIMPLEMENTED until the gallery issue lands. */
import { ComplianceService, MatcherService } from '@faceprint/contracts/matcher';
import { implement, type ServiceRegistration } from '@faceprint/service-kit';

/** The services the matcher process serves: the gallery and its compliance operations. */
export function matcherService(): ServiceRegistration[] {
  return [implement(MatcherService, {}), implement(ComplianceService, {})];
}
