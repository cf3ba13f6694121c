/** The trainer's gRPC handlers: every rpc answers UNIMPLEMENTED until the trainer issues land. */
import { TrainerService } from '@faceprint/contracts/trainer';
import { implement, type ServiceRegistration } from '@faceprint/service-kit';

/** The services the trainer process serves. */
export function trainerService(): ServiceRegistration[] {
  return [implement(TrainerService, {})];
}
