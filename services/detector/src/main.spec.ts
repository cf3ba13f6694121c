import { describeServiceProcess, testModelRegistry } from '@faceprint/testing';
import { status } from '@grpc/grpc-js';

// An empty Detect request is invalid (the image is required).
describeServiceProcess('detector', {
  env: { FACEPRINT_MODEL_REGISTRY: await testModelRegistry() },
  expected: { detect: status.INVALID_ARGUMENT },
});
