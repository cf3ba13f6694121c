import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describeServiceProcess } from '@faceprint/testing';
import { status } from '@grpc/grpc-js';

// The registry rpcs and the job list work on an empty registry; an empty request to the others is invalid.
describeServiceProcess('trainer', {
  env: { FACEPRINT_MODEL_REGISTRY: await mkdtemp(join(tmpdir(), 'faceprint-trainer-process-')), FACEPRINT_TRAINER_DATA_DIR: await mkdtemp(join(tmpdir(), 'faceprint-trainer-jobs-')) },
  expected: {
    listModels: status.OK,
    getModelManifest: status.INVALID_ARGUMENT,
    importModel: status.INVALID_ARGUMENT,
    importOnnxModel: status.INVALID_ARGUMENT,
    promoteModel: status.INVALID_ARGUMENT,
    evaluateModel: status.INVALID_ARGUMENT,
    startJob: status.INVALID_ARGUMENT,
    getJob: status.INVALID_ARGUMENT,
    listJobs: status.OK,
    cancelJob: status.INVALID_ARGUMENT,
    watchJob: status.INVALID_ARGUMENT,
  },
});
