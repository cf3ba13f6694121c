/**
 * The detector's gRPC handlers. Request validation is in place; detection itself arrives with
 * the vision issue, so a valid request answers UNIMPLEMENTED.
 */
import { DetectorService } from '@faceprint/contracts/detector';
import { FaceprintError, implement, validateDetectRequest, type ServiceRegistration } from '@faceprint/service-kit';

/** The services the detector process serves. */
export function detectorService(): ServiceRegistration[] {
  return [
    implement(DetectorService, {
      async detect(request) {
        validateDetectRequest(request);
        throw FaceprintError.unimplemented(`${DetectorService.typeName}/Detect`);
      },
    }),
  ];
}
