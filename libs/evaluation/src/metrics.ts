/**
 * Verification and detection metrics, computed as the standard protocols define them: ROC and
 * AUC, TAR at a FAR, accuracy over k folds with the threshold chosen on the other folds, and the
 * discrete detection ROC and average precision.
 */

/** A scored pair: `same` says whether both images show one person. */
export interface ScoredPair {
  readonly score: number;
  readonly same: boolean;
  readonly fold: number;
}

/** The ROC curve as (FAR, TAR) points from the strictest threshold to the loosest. */
export function rocCurve(pairs: readonly ScoredPair[]): { far: number; tar: number; threshold: number }[] {
  const positives = pairs.filter((p) => p.same).length;
  const negatives = pairs.length - positives;
  const sorted = [...pairs].sort((a, b) => b.score - a.score);
  const curve = [{ far: 0, tar: 0, threshold: Infinity }];
  let tp = 0;
  let fp = 0;
  for (let i = 0; i < sorted.length; i++) {
    if (sorted[i]!.same) tp++;
    else fp++;
    if (i === sorted.length - 1 || sorted[i + 1]!.score !== sorted[i]!.score) {
      curve.push({ far: negatives ? fp / negatives : 0, tar: positives ? tp / positives : 0, threshold: sorted[i]!.score });
    }
  }
  return curve;
}

/** Area under the ROC curve (trapezoids). */
export function areaUnderCurve(curve: readonly { far: number; tar: number }[]): number {
  let area = 0;
  for (let i = 1; i < curve.length; i++) area += (curve[i]!.far - curve[i - 1]!.far) * (curve[i]!.tar + curve[i - 1]!.tar) / 2;
  return area;
}

/**
 * TAR at a FAR: the threshold accepts at most `far * negatives` impostor pairs (the largest
 * number of false accepts the target allows), and TAR is the share of genuine pairs above it.
 */
export function tarAtFar(pairs: readonly ScoredPair[], far: number): { tar: number; threshold: number; far: number } {
  const negatives = pairs.filter((p) => !p.same).map((p) => p.score).sort((a, b) => b - a);
  const positives = pairs.filter((p) => p.same).map((p) => p.score);
  const allowed = Math.floor(far * negatives.length);
  // Accept scores strictly above the (allowed+1)-th highest impostor score.
  const threshold = negatives[allowed] ?? -Infinity;
  const accepted = positives.filter((s) => s > threshold).length;
  const falseAccepts = negatives.filter((s) => s > threshold).length;
  return { tar: positives.length ? accepted / positives.length : 0, threshold, far: negatives.length ? falseAccepts / negatives.length : 0 };
}

/** The threshold that classifies `pairs` best (accept when score > threshold) and its accuracy. */
export function bestThreshold(pairs: readonly ScoredPair[]): { threshold: number; accuracy: number } {
  const sorted = [...pairs].sort((a, b) => b.score - a.score);
  const negatives = pairs.filter((p) => !p.same).length;
  // Accept nothing: every impostor is right.
  let best = { threshold: Infinity, accuracy: negatives / pairs.length };
  let tp = 0;
  let fp = 0;
  for (let i = 0; i < sorted.length; i++) {
    if (sorted[i]!.same) tp++;
    else fp++;
    const next = sorted[i + 1]?.score ?? -Infinity;
    if (next === sorted[i]!.score) continue;
    const accuracy = (tp + negatives - fp) / pairs.length;
    if (accuracy > best.accuracy) best = { threshold: Number.isFinite(next) ? (sorted[i]!.score + next) / 2 : sorted[i]!.score - 1e-6, accuracy };
  }
  return best;
}

/** Accuracy per fold with the threshold chosen on the other folds; mean and sample std. */
export function foldAccuracy(pairs: readonly ScoredPair[]): { mean: number; std: number; folds: number[]; thresholds: number[] } {
  const folds = [...new Set(pairs.map((p) => p.fold))].sort((a, b) => a - b);
  const accuracies: number[] = [];
  const thresholds: number[] = [];
  for (const fold of folds) {
    // One fold only: the threshold comes from the set itself (an optimistic figure, so labelled).
    const { threshold } = bestThreshold(folds.length > 1 ? pairs.filter((p) => p.fold !== fold) : pairs);
    const test = pairs.filter((p) => p.fold === fold);
    accuracies.push(test.filter((p) => (p.score > threshold) === p.same).length / test.length);
    thresholds.push(threshold);
  }
  const mean = accuracies.reduce((a, b) => a + b, 0) / accuracies.length;
  const std = accuracies.length > 1 ? Math.sqrt(accuracies.reduce((a, b) => a + (b - mean) ** 2, 0) / (accuracies.length - 1)) : 0;
  return { mean, std, folds: accuracies, thresholds };
}

/** One detection, after matching against the ground truth. */
export interface ScoredDetection {
  readonly score: number;
  readonly truePositive: boolean;
}

/** The discrete detection ROC (recall against false positives per image), recall at a FP rate, AP. */
export function detectionMetrics(detections: readonly ScoredDetection[], faces: number, images: number, fpPerImage: number) {
  const sorted = [...detections].sort((a, b) => b.score - a.score);
  const curve: { fpPerImage: number; recall: number; precision: number; threshold: number }[] = [];
  let tp = 0;
  let fp = 0;
  for (const [i, d] of sorted.entries()) {
    if (d.truePositive) tp++;
    else fp++;
    if (i === sorted.length - 1 || sorted[i + 1]!.score !== d.score) curve.push({ fpPerImage: fp / images, recall: tp / faces, precision: tp / (tp + fp), threshold: d.score });
  }
  const recallAtFp = Math.max(0, ...curve.filter((c) => c.fpPerImage <= fpPerImage).map((c) => c.recall));
  // Average precision: the area under the precision-recall curve with precision made monotone
  // (each point takes the best precision at any higher recall), as PASCAL VOC computes it.
  const bestPrecisionFrom = curve.map((c) => c.precision);
  for (let i = bestPrecisionFrom.length - 2; i >= 0; i--) bestPrecisionFrom[i] = Math.max(bestPrecisionFrom[i]!, bestPrecisionFrom[i + 1]!);
  let ap = 0;
  let previousRecall = 0;
  curve.forEach((c, i) => {
    ap += (c.recall - previousRecall) * bestPrecisionFrom[i]!;
    previousRecall = c.recall;
  });
  return { curve, recallAtFp, maxRecall: curve.at(-1)?.recall ?? 0, ap };
}
