/**
 * How the services run ONNX Runtime sessions: one place for the environment variables
 * (`FACEPRINT_ORT_PROVIDERS`, `FACEPRINT_ORT_THREADS`, `FACEPRINT_ORT_SPIN`) and for the session
 * options they become.
 */
import { int } from '@faceprint/service-kit';
import { bool, str } from 'envalid';
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

/** The variables' specs, for a service's `compileEnv` call (spread among its own). */
export const ORT_ENV = {
  FACEPRINT_ORT_PROVIDERS: str({ default: 'cpu' }),
  FACEPRINT_ORT_THREADS: int(0, 256)({ default: 0 }),
  FACEPRINT_ORT_SPIN: bool({ default: false }),
};

/** The settings of a compiled environment that includes {@link ORT_ENV}. */
export function ortSettingsOf(compiled: { readonly FACEPRINT_ORT_PROVIDERS: string; readonly FACEPRINT_ORT_THREADS: number; readonly FACEPRINT_ORT_SPIN: boolean }): OrtSettings {
  return {
    executionProviders: compiled.FACEPRINT_ORT_PROVIDERS.split(',').map((p) => p.trim()).filter(Boolean),
    threads: compiled.FACEPRINT_ORT_THREADS,
    spin: compiled.FACEPRINT_ORT_SPIN,
  };
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
