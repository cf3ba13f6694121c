import { describeServiceProcess, testModelRegistry } from '@faceprint/testing';
import { status } from '@grpc/grpc-js';

// An empty Assess is invalid; ModelStatus answers (with no model: faceprint ships none).
describeServiceProcess('liveness', {
  env: { FACEPRINT_MODEL_REGISTRY: await testModelRegistry() },
  expected: { assess: status.INVALID_ARGUMENT, modelStatus: status.OK },
});
