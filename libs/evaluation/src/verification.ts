/**
 * The verification protocol over scored pairs: accuracy (10-fold when the pairs carry folds),
 * AUC, TAR at fixed false-accept rates. One place, so that `faceprint eval verify` and the
 * trainer's evaluation job report the same figures.
 */
import { cosine } from '@faceprint/contracts';
import type { Pair } from './datasets.js';
import { areaUnderCurve, foldAccuracy, rocCurve, tarAtFar, type ScoredPair } from './metrics.js';

/** The false-accept rates reported. */
export const REPORTED_FARS = ['1e-2', '1e-3'] as const;

/** Scores pairs by cosine similarity; a pair with an undetected face is a failed comparison, never accepted. */
export function scorePairs(pairs: readonly Pair[], embeddings: ReadonlyMap<string, Float32Array | undefined>): ScoredPair[] {
  return pairs.map((pair) => {
    const a = embeddings.get(pair.a);
    const b = embeddings.get(pair.b);
    return { score: a && b ? cosine(a, b) : -Infinity, same: pair.same, fold: pair.fold };
  });
}

/** The protocol's figures for scored pairs. */
export function verificationMetrics(scored: readonly ScoredPair[]) {
  const curve = rocCurve(scored);
  const folds = foldAccuracy(scored);
  const tar = Object.fromEntries(REPORTED_FARS.map((far) => [far, tarAtFar(scored, Number(far))]));
  return {
    pairs: scored.length,
    protocol: folds.folds.length > 1 ? `${folds.folds.length}-fold (threshold chosen on the other folds)` : 'single set (best threshold, optimistic)',
    accuracy: folds.mean,
    accuracy_std: folds.std,
    auc: areaUnderCurve(curve),
    tar_at_far: Object.fromEntries(REPORTED_FARS.map((far) => [far, tar[far]!.tar])) as Record<(typeof REPORTED_FARS)[number], number>,
    threshold_at_far: Object.fromEntries(REPORTED_FARS.map((far) => [far, tar[far]!.threshold])) as Record<(typeof REPORTED_FARS)[number], number>,
    failed_pairs: scored.filter((p) => p.score === -Infinity).length,
    curve,
  };
}
