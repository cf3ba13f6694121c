/**
 * How the services run ONNX Runtime sessions (`FACEPRINT_ORT_PROVIDERS`, `FACEPRINT_ORT_THREADS`,
 * `FACEPRINT_ORT_SPIN`, read by each service's config): one place for the options they become.
 */
import type { InferenceSession } from 'onnxruntime-node';

/** A service's ONNX Runtime settings. */
export interface OrtSettings {
  /** Execution providers in order of preference, e.g. `cuda`, `cpu`. */
  readonly executionProviders: readonly string[];
  /** Intra-op threads; 0 = ONNX Runtime's default (one per core). */
  readonly threads: number;
  /**
   * Whether idle intra-op threads spin waiting for work (ONNX Runtime's default). Measured on the
   * 2-core machine: after each run a spinning session burns 20-40 ms of CPU, a non-spinning one
   * under 1 ms (docs/vision.md).
   */
  readonly spin: boolean;
}

/** Session options for `settings`, with full graph optimisation. */
export function ortSessionOptions(settings: OrtSettings): InferenceSession.SessionOptions {
  return {
    executionProviders: [...settings.executionProviders],
    intraOpNumThreads: settings.threads,
    graphOptimizationLevel: 'all',
    // ONNX Runtime's session config keys session.intra_op.allow_spinning and session.inter_op.allow_spinning.
    ...(settings.spin ? {} : { extra: { session: { intra_op: { allow_spinning: '0' }, inter_op: { allow_spinning: '0' } } } }),
  };
}
