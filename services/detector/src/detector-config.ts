/** The detector's own settings. */
import { registryRootFromEnv } from '@faceprint/model-registry';
import { compileEnv, decimal } from '@faceprint/service-kit';
import { makeValidator, str } from 'envalid';
import { IMAGE_MEMORY_ENV, imageMemorySettingsOf, type ImageMemorySettings } from '@faceprint/imaging';
import { ORT_ENV, ortSettingsOf, type OrtSettings } from '@faceprint/onnx';

/** The detector's settings. */
export interface DetectorConfig {
  /** The model registry root. `FACEPRINT_MODEL_REGISTRY`. */
  readonly registryRoot: string;
  /** The registry model to serve (its current version). `FACEPRINT_DETECTOR_MODEL`, default `yunet-n`. */
  readonly model: string;
  /** Longer side of the model input, a multiple of 32. `FACEPRINT_DETECTOR_INPUT_SIZE`, default 640. */
  readonly inputSize: number;
  /** NMS overlap threshold. `FACEPRINT_DETECTOR_NMS_IOU`, default 0.3. */
  readonly nmsIou: number;
  /** Border added to images smaller than the input, as a fraction of their longer side. `FACEPRINT_DETECTOR_SMALL_IMAGE_PADDING`, default 0.5. */
  readonly smallImagePadding: number;
  /** How it runs ONNX Runtime: `FACEPRINT_ORT_PROVIDERS` (default `cpu`, e.g. `cuda,cpu`), `FACEPRINT_ORT_THREADS` (intra-op threads, default 0: one per core), `FACEPRINT_ORT_SPIN` (default false). */
  readonly ort: OrtSettings;
  /** Memory for the images it works on at once: `FACEPRINT_IMAGE_MEMORY_MB` (default 256), `FACEPRINT_IMAGE_MAX_WAITING` (calls that may wait, default 256). */
  readonly imageMemory: ImageMemorySettings;
}

/** A model input size: a multiple of 32 (YuNet's largest stride) between 96 and 4096. */
const inputSize = makeValidator<number>((input) => {
  const value = Number(input);
  if (!/^\d+$/.test(input.trim()) || value < 96 || value > 4096 || value % 32 !== 0) {
    throw new Error(`must be a multiple of 32 between 96 and 4096, got "${input}"`);
  }
  return value;
});

/** Compiles the detector's settings from the environment. */
export function loadDetectorConfig(env: NodeJS.ProcessEnv): DetectorConfig {
  const compiled = compileEnv(env, {
    FACEPRINT_DETECTOR_MODEL: str({ default: 'yunet-n' }),
    FACEPRINT_DETECTOR_INPUT_SIZE: inputSize({ default: 640 }),
    FACEPRINT_DETECTOR_NMS_IOU: decimal(0.05, 0.95)({ default: 0.3 }),
    FACEPRINT_DETECTOR_SMALL_IMAGE_PADDING: decimal(0, 2)({ default: 0.5 }),
    ...ORT_ENV,
    ...IMAGE_MEMORY_ENV,
  });
  return Object.freeze({
    registryRoot: registryRootFromEnv(env),
    model: compiled.FACEPRINT_DETECTOR_MODEL,
    inputSize: compiled.FACEPRINT_DETECTOR_INPUT_SIZE,
    nmsIou: compiled.FACEPRINT_DETECTOR_NMS_IOU,
    smallImagePadding: compiled.FACEPRINT_DETECTOR_SMALL_IMAGE_PADDING,
    ort: ortSettingsOf(compiled),
    imageMemory: imageMemorySettingsOf(compiled),
  });
}
