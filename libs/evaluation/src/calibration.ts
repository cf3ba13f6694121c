/**
 * Threshold calibration for 1:1 decisions: from embeddings of labelled identities, every pair of
 * images of one identity is a genuine pair and every pair across identities an impostor pair; the
 * threshold for a false-match rate f admits at most f × (impostor pairs) impostors under the
 * matcher's rule `score >= threshold`. Many identities give millions of impostor pairs, enough to
 * estimate rates down to 1e-5 (a few hundred identities would not).
 */
import { perComparisonRates, sameRate } from '@faceprint/contracts';
import { operatingPoint, scoreAllPairs } from './all-pairs.js';

/** One calibrated operating point. */
export interface CalibratedPoint {
  /** The target false-match rate. */
  readonly far: number;
  /** The cosine threshold (a float32, as the manifest stores it): accept when score >= threshold. */
  readonly threshold: number;
  /** The share of genuine pairs accepted at it. */
  readonly tar: number;
  /** The share of impostor pairs accepted at it (at most `far`). */
  readonly measuredFar: number;
  /** Impostor pairs at or above the threshold; below ~10 the estimate is rough. */
  readonly falseAccepts: number;
  /** The one-sided 95% upper confidence bound of the false-match rate (Clopper-Pearson). */
  readonly farUpper95: number;
  /** Whether there are impostor pairs enough to show the rate at all (at least about 3/far). */
  readonly resolvable: boolean;
}

/** What a calibration measured. */
export interface Calibration {
  readonly identities: number;
  readonly images: number;
  readonly genuinePairs: number;
  readonly impostorPairs: number;
  readonly points: CalibratedPoint[];
  /** The per-comparison rates far / k (k = 2..MAX_FUSED_TEMPLATES) that are not among the rates asked for. */
  readonly perComparisonPoints: CalibratedPoint[];
}

/**
 * Calibrates thresholds for `fars` from embeddings grouped by identity, and for the per-comparison
 * rates that let a decision at each of them compare up to MAX_FUSED_TEMPLATES templates
 * (`far / k`, fused-threshold.ts in @faceprint/contracts).
 */
export function calibrate(byIdentity: ReadonlyMap<string, readonly Float32Array[]>, fars: readonly number[]): Calibration {
  const scores = scoreAllPairs([...byIdentity].flatMap(([identity, embeddings]) => embeddings.map((embedding) => ({ identity, embedding }))));
  const pointAt = (far: number): CalibratedPoint => {
    const point = operatingPoint(scores, far);
    return { far, threshold: point.threshold, tar: point.tar, measuredFar: point.far, falseAccepts: point.falseMatches, farUpper95: point.farUpper95, resolvable: point.resolvable };
  };
  const perComparison = perComparisonRates(fars).filter((rate) => !fars.some((far) => sameRate(far, rate)));
  return { identities: scores.identities, images: scores.images, genuinePairs: scores.genuinePairs, impostorPairs: scores.impostorPairs, points: fars.map(pointAt), perComparisonPoints: perComparison.map(pointAt) };
}

/** What a calibration may record: the thresholds of the rates its impostor pairs can show. */
export interface RecordableCalibration {
  /** In the manifest's form, with the counts and bound each rests on. */
  readonly thresholds: { far: number; threshold: number; tar: number; dataset: string; impostorPairs: bigint; falseMatches: bigint; farUpper95: number; perComparison: boolean }[];
  /** Rates left out: too few impostor pairs to show them (fewer than about 3/rate). */
  readonly unsupported: number[];
}

/**
 * The thresholds a calibration may record. A threshold for a rate the data cannot show (with no
 * false match at all the 95% upper bound is still about 3/N) would be a claim without evidence,
 * so it is left out and named; the caller decides whether what is left is enough.
 */
export function recordableThresholds(result: Calibration, dataset: string): RecordableCalibration {
  const recordable = (points: readonly CalibratedPoint[], perComparison: boolean) =>
    points
      .filter((p) => p.resolvable)
      .map((p) => ({ far: p.far, threshold: p.threshold, tar: p.tar, dataset, impostorPairs: BigInt(result.impostorPairs), falseMatches: BigInt(p.falseAccepts), farUpper95: p.farUpper95, perComparison }));
  const thresholds = recordable(result.points, false);
  // Per-comparison rates only beside a decision rate they serve; one the data cannot show means fewer templates fuse.
  const perComparison = thresholds.length ? recordable(result.perComparisonPoints, true) : [];
  return { thresholds: [...thresholds, ...perComparison], unsupported: result.points.filter((p) => !p.resolvable).map((p) => p.far) };
}

/** Why nothing can be recorded, for an error message. */
export const unsupportedRatesMessage = (result: Calibration, unsupported: readonly number[]) =>
  `${result.impostorPairs} impostor pairs cannot show a false-match rate of ${unsupported.map((f) => f.toExponential(0)).join(', ')} (that needs at least ${Math.ceil(3 / Math.min(...unsupported)).toLocaleString('en')}): calibrate on more identities, or for a higher rate`;
