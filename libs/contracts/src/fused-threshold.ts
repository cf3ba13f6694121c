/**
 * The threshold of a 1:1 decision against a subject with several templates. The decision takes
 * the best of the subject's scores, and an impostor then has as many chances as there are
 * templates: at a threshold calibrated for one comparison, the best of 5 was measured to let
 * through 4 times the target rate (README, "Several enrolment images per subject"). So a decision
 * at rate f over k templates compares at the threshold calibrated for f/k per comparison (the
 * union bound: P(any of k >= t) <= k * P(one >= t)), and its bound is k times that threshold's.
 * Calibrations record f/k for k = 1..MAX_FUSED_TEMPLATES (`perComparisonRates`); where a rate f/k
 * is not recorded, fewer templates (the k of the largest recorded f/k) take part. One rule, here
 * beside the contract, for the matcher that decides and the eval commands that measure it.
 */
import type { CalibratedThreshold } from './gen/faceprint/trainer/v1/model_pb.js';

/** The most templates one decision compares (and the calibrations record rates for). */
export const MAX_FUSED_TEMPLATES = 10;

/** Two false-match rates name the same calibration when they agree to six significant digits. */
export const sameRate = (a: number, b: number) => Math.abs(a - b) <= 1e-6 * Math.max(Math.abs(a), Math.abs(b));

/** The per-comparison rates a calibration records so that decisions at `fars` can fuse up to MAX_FUSED_TEMPLATES templates. */
export function perComparisonRates(fars: readonly number[]): number[] {
  const rates: number[] = [];
  for (const far of fars) {
    for (let k = 1; k <= MAX_FUSED_TEMPLATES; k++) if (!rates.some((r) => sameRate(r, far / k))) rates.push(far / k);
  }
  return rates.sort((a, b) => b - a);
}

/** The threshold a decision at `targetFar` applies to the best of `templates` templates. */
export interface FusedThreshold {
  /** The cosine threshold each compared template is held to. */
  readonly threshold: number;
  readonly targetFar: number;
  /** How many templates take part (the first `comparisons` of the subject's, best quality first). */
  readonly comparisons: number;
  /** The calibrated per-comparison rate, targetFar / comparisons. */
  readonly perComparisonFar: number;
  /** comparisons x the calibration's 95% upper bound at the threshold (0: not recorded). */
  readonly farUpper95: number;
  /** The calibration's impostor comparisons (0: not recorded). */
  readonly impostorPairs: bigint;
}

/** The rates a model offers to decide at: its calibrated thresholds that are not per-comparison ones. */
export const decisionRates = (calibrated: readonly CalibratedThreshold[]) => calibrated.filter((t) => !t.perComparison);

/**
 * The threshold for a decision at `targetFar` over a subject's `templates` templates, from a
 * model's calibrated thresholds; undefined when `targetFar` is not one of its decision rates.
 */
export function fusedThreshold(calibrated: readonly CalibratedThreshold[], targetFar: number, templates: number): FusedThreshold | undefined {
  if (!decisionRates(calibrated).some((t) => sameRate(t.far, targetFar))) return undefined;
  for (let k = Math.min(Math.max(templates, 1), MAX_FUSED_TEMPLATES); k >= 1; k--) {
    const found = calibrated.find((t) => sameRate(t.far, targetFar / k));
    if (!found) continue;
    return {
      threshold: found.threshold,
      targetFar,
      comparisons: k,
      perComparisonFar: found.far,
      farUpper95: found.farUpper95 ? Math.min(1, k * found.farUpper95) : 0,
      impostorPairs: found.impostorPairs,
    };
  }
  return undefined;
}
