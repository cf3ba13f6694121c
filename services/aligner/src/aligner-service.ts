/** The aligner's gRPC handlers: every rpc answers UNIMPLEMENTED until the vision issue lands. */
import { AlignerService } from '@faceprint/contracts/aligner';
import { implement, type ServiceRegistration } from '@faceprint/service-kit';

/** The services the aligner process serves. */
export function alignerService(): ServiceRegistration[] {
  return [implement(AlignerService, {})];
}
