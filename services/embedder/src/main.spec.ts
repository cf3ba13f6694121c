import { describeServiceProcess, testModelRegistry } from '@faceprint/testing';
import { status } from '@grpc/grpc-js';

// An empty Embed is invalid; an empty stream ends cleanly; ModelStatus always answers.
describeServiceProcess('embedder', {
  env: { FACEPRINT_MODEL_REGISTRY: await testModelRegistry() },
  expected: { embed: status.INVALID_ARGUMENT, embedStream: status.OK, modelStatus: status.OK },
});
