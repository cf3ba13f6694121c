/** The aligner's own settings. */
import { registryRootFromEnv } from '@faceprint/model-registry';
import { compileEnv, int } from '@faceprint/service-kit';
import { str } from 'envalid';

/** The aligner's settings. */
export interface AlignerConfig {
  /** The model registry root (manifests for templates, the landmark net). `FACEPRINT_MODEL_REGISTRY`. */
  readonly registryRoot: string;
  /** The registry model used to refine landmarks; empty disables refinement. `FACEPRINT_ALIGNER_LANDMARK_MODEL`, default `face-landmark-68`. */
  readonly landmarkModel: string;
  /** ONNX Runtime intra-op threads; 0 = its default. `FACEPRINT_ORT_THREADS`, default 0. */
  readonly ortThreads: number;
}

/** Compiles the aligner's settings from the environment. */
export function loadAlignerConfig(env: NodeJS.ProcessEnv): AlignerConfig {
  const compiled = compileEnv(env, {
    FACEPRINT_ALIGNER_LANDMARK_MODEL: str({ default: 'face-landmark-68' }),
    FACEPRINT_ORT_THREADS: int(0, 256)({ default: 0 }),
  });
  return Object.freeze({
    registryRoot: registryRootFromEnv(env),
    landmarkModel: compiled.FACEPRINT_ALIGNER_LANDMARK_MODEL,
    ortThreads: compiled.FACEPRINT_ORT_THREADS,
  });
}
