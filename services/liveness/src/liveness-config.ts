/** The liveness service's own settings. */
import { registryRootFromEnv } from '@faceprint/model-registry';
import { ORT_ENV, ortSettingsOf, type OrtSettings } from '@faceprint/onnx';
import { compileEnv, decimal, int, registryModel } from '@faceprint/service-kit';

/** The name the trainer's pad-train job publishes under by default. */
export const DEFAULT_PAD_MODEL = 'colour-texture-pad';

/** The liveness service's settings. */
export interface LivenessConfig {
  /** The model registry root. `FACEPRINT_MODEL_REGISTRY`. */
  readonly registryRoot: string;
  /**
   * The PAD model to serve: its current version, followed on promotion. `FACEPRINT_LIVENESS_MODEL`,
   * default `colour-texture-pad`; `name@version` pins one version. faceprint ships no PAD weights
   * (see docs/liveness.md): until one is trained and promoted the service runs and says so.
   */
  readonly model: string;
  /** The pinned version of `name@version`; undefined: follow `current`. */
  readonly pinnedVersion: number | undefined;
  /**
   * Which of the model's operating points decides: its threshold for this bona fide rejection rate
   * on the model's development data. `FACEPRINT_LIVENESS_TARGET_BPCER`, default 0.05.
   */
  readonly targetBpcer: number;
  /** How often `current` is checked for a promotion, in ms. `FACEPRINT_LIVENESS_WATCH_INTERVAL_MS`, default 1000. */
  readonly watchIntervalMs: number;
  /** How it runs ONNX Runtime (`FACEPRINT_ORT_*`, as the embedder). */
  readonly ort: OrtSettings;
}

/** Compiles the liveness service's settings from the environment. */
export function loadLivenessConfig(env: NodeJS.ProcessEnv): LivenessConfig {
  const compiled = compileEnv(env, {
    FACEPRINT_LIVENESS_MODEL: registryModel({ default: { name: DEFAULT_PAD_MODEL, version: undefined } }),
    FACEPRINT_LIVENESS_TARGET_BPCER: decimal(0.0001, 0.5)({ default: 0.05 }),
    FACEPRINT_LIVENESS_WATCH_INTERVAL_MS: int(50, 3_600_000)({ default: 1000 }),
    ...ORT_ENV,
  });
  return Object.freeze({
    registryRoot: registryRootFromEnv(env),
    model: compiled.FACEPRINT_LIVENESS_MODEL.name,
    pinnedVersion: compiled.FACEPRINT_LIVENESS_MODEL.version,
    targetBpcer: compiled.FACEPRINT_LIVENESS_TARGET_BPCER,
    watchIntervalMs: compiled.FACEPRINT_LIVENESS_WATCH_INTERVAL_MS,
    ort: ortSettingsOf(compiled),
  });
}
