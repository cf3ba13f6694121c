/** The embedder's own settings. */
import { registryRootFromEnv } from '@faceprint/model-registry';
import { compileEnv, int, registryModel } from '@faceprint/service-kit';
import { ORT_ENV, ortSettingsOf, type OrtSettings } from '@faceprint/onnx';

/** The embedder's settings. */
export interface EmbedderConfig {
  /** The model registry root. `FACEPRINT_MODEL_REGISTRY`. */
  readonly registryRoot: string;
  /**
   * The registry model to serve: its current version, followed on promotion. `FACEPRINT_EMBEDDER_MODEL`,
   * default `face-recognition-net`; `name@version` pins one version (no hot swap), as evaluation jobs do.
   */
  readonly model: string;
  /** The pinned version of `name@version`; undefined: follow `current`. */
  readonly pinnedVersion: number | undefined;
  /** The largest batch. `FACEPRINT_EMBEDDER_MAX_BATCH`, default 64 (1 turns batching off). */
  readonly maxBatch: number;
  /**
   * How long the first crop of a batch may wait for more, in ms. `FACEPRINT_EMBEDDER_MAX_DELAY_MS`,
   * default 0: an idle embedder runs at once, and batches form from the crops that arrive while a
   * batch runs (lowest latency at low load, full batches under load). A GPU may prefer a few ms.
   */
  readonly maxDelayMs: number;
  /** Crops that may wait; beyond it calls get RESOURCE_EXHAUSTED. `FACEPRINT_EMBEDDER_MAX_QUEUE`, default 1024. */
  readonly maxQueue: number;
  /** How often `current` is checked for a promotion, in ms. `FACEPRINT_EMBEDDER_WATCH_INTERVAL_MS`, default 1000. */
  readonly watchIntervalMs: number;
  /** How it runs ONNX Runtime: `FACEPRINT_ORT_PROVIDERS` (default `cpu`, e.g. `cuda,cpu`), `FACEPRINT_ORT_THREADS` (intra-op threads, default 0: one per core), `FACEPRINT_ORT_SPIN` (default false). */
  readonly ort: OrtSettings;
}

/** Compiles the embedder's settings from the environment. */
export function loadEmbedderConfig(env: NodeJS.ProcessEnv): EmbedderConfig {
  const compiled = compileEnv(env, {
    FACEPRINT_EMBEDDER_MODEL: registryModel({ default: { name: 'face-recognition-net', version: undefined } }),
    FACEPRINT_EMBEDDER_MAX_BATCH: int(1, 1024)({ default: 64 }),
    FACEPRINT_EMBEDDER_MAX_DELAY_MS: int(0, 1000)({ default: 0 }),
    FACEPRINT_EMBEDDER_MAX_QUEUE: int(1, 1_000_000)({ default: 1024 }),
    FACEPRINT_EMBEDDER_WATCH_INTERVAL_MS: int(50, 3_600_000)({ default: 1000 }),
    ...ORT_ENV,
  });
  return Object.freeze({
    registryRoot: registryRootFromEnv(env),
    model: compiled.FACEPRINT_EMBEDDER_MODEL.name,
    pinnedVersion: compiled.FACEPRINT_EMBEDDER_MODEL.version,
    maxBatch: compiled.FACEPRINT_EMBEDDER_MAX_BATCH,
    maxDelayMs: compiled.FACEPRINT_EMBEDDER_MAX_DELAY_MS,
    maxQueue: compiled.FACEPRINT_EMBEDDER_MAX_QUEUE,
    watchIntervalMs: compiled.FACEPRINT_EMBEDDER_WATCH_INTERVAL_MS,
    ort: ortSettingsOf(compiled),
  });
}
