/**
 * The gateway's gRPC handlers. `Detect` validates at the edge and forwards to the detector (with
 * the caller's deadline); the other rpcs answer UNIMPLEMENTED until the gateway issue lands.
 */
import { ComplianceService, FaceService } from '@faceprint/contracts/gateway';
import { implement, stageTiming, validateDetectRequest, type ServiceRegistration } from '@faceprint/service-kit';
import type { Downstream } from './downstream.js';

/** The services the gateway process serves. */
export function gatewayServices(downstream: Downstream): ServiceRegistration[] {
  return [
    implement(FaceService, {
      async detect(request, ctx) {
        validateDetectRequest(request);
        const started = performance.now();
        const detected = await downstream.detector.detect({ image: request.image, options: request.options }, { parent: ctx });
        return {
          faces: detected.faces,
          image: detected.image,
          models: { detector: detected.model },
          timings: [...detected.timings, stageTiming('detect-call', 'gateway', started)],
        };
      },
    }),
    implement(ComplianceService, {}),
  ];
}
