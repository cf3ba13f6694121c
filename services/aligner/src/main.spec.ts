import { describeServiceProcess, testModelRegistry } from '@faceprint/testing';
import { status } from '@grpc/grpc-js';

// An empty Align request is invalid (image, faces and target are required).
describeServiceProcess('aligner', {
  env: { FACEPRINT_MODEL_REGISTRY: await testModelRegistry() },
  expected: { align: status.INVALID_ARGUMENT },
});
