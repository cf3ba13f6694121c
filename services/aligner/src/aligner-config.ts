/** The aligner's own settings. */
import { registryRootFromEnv } from '@faceprint/model-registry';
import { compileEnv } from '@faceprint/service-kit';
import { str } from 'envalid';
import { IMAGE_MEMORY_ENV, imageMemorySettingsOf, type ImageMemorySettings } from '@faceprint/imaging';
import { ORT_ENV, ortSettingsOf, type OrtSettings } from '@faceprint/onnx';

/** The aligner's settings. */
export interface AlignerConfig {
  /** The model registry root (manifests for templates, the landmark net). `FACEPRINT_MODEL_REGISTRY`. */
  readonly registryRoot: string;
  /** The registry model used to refine landmarks; empty disables refinement. `FACEPRINT_ALIGNER_LANDMARK_MODEL`, default `face-landmark-68`. */
  readonly landmarkModel: string;
  /** How it runs ONNX Runtime (the landmark net): `FACEPRINT_ORT_PROVIDERS` (default `cpu`, e.g. `cuda,cpu`), `FACEPRINT_ORT_THREADS` (intra-op threads, default 0: one per core), `FACEPRINT_ORT_SPIN` (default false). */
  readonly ort: OrtSettings;
  /** Memory for the images it works on at once: `FACEPRINT_IMAGE_MEMORY_MB` (default 256), `FACEPRINT_IMAGE_MAX_WAITING` (calls that may wait, default 256). */
  readonly imageMemory: ImageMemorySettings;
}

/** Compiles the aligner's settings from the environment. */
export function loadAlignerConfig(env: NodeJS.ProcessEnv): AlignerConfig {
  const compiled = compileEnv(env, {
    FACEPRINT_ALIGNER_LANDMARK_MODEL: str({ default: 'face-landmark-68' }),
    ...ORT_ENV,
    ...IMAGE_MEMORY_ENV,
  });
  return Object.freeze({
    registryRoot: registryRootFromEnv(env),
    landmarkModel: compiled.FACEPRINT_ALIGNER_LANDMARK_MODEL,
    ort: ortSettingsOf(compiled),
    imageMemory: imageMemorySettingsOf(compiled),
  });
}
