import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { areaUnderCurve, bestThreshold, detectionMetrics, foldAccuracy, rocCurve, tarAtFar, type ScoredPair } from './metrics.js';

const pair = (score: number, same: boolean, fold = 0): ScoredPair => ({ score, same, fold });

describe('verification metrics', () => {
  it('gives AUC 1 for separable scores and 0.5 for interleaved ones', () => {
    assert.equal(areaUnderCurve(rocCurve([pair(0.9, true), pair(0.8, true), pair(0.2, false), pair(0.1, false)])), 1);
    assert.equal(areaUnderCurve(rocCurve([pair(0.9, true), pair(0.8, false), pair(0.7, true), pair(0.6, false)])), 0.75);
  });

  it('chooses the threshold that classifies best', () => {
    const { threshold, accuracy } = bestThreshold([pair(0.9, true), pair(0.7, true), pair(0.6, false), pair(0.2, false), pair(0.65, true)]);
    assert.equal(accuracy, 1);
    assert.ok(threshold > 0.6 && threshold < 0.65);
  });

  it('measures TAR at FAR by the number of impostors the FAR allows', () => {
    const impostors = Array.from({ length: 100 }, (_, i) => pair(i / 100, false)); // 0.00 .. 0.99
    const genuine = [pair(0.995, true), pair(0.985, true), pair(0.5, true), pair(0.2, true)];
    const result = tarAtFar([...impostors, ...genuine], 0.02); // 2 false accepts allowed: threshold 0.97
    assert.equal(result.threshold, 0.97);
    assert.equal(result.tar, 0.5);
    assert.equal(result.far, 0.02);
  });

  it('scores each fold with the threshold chosen on the others', () => {
    // Folds 0 and 1 want a threshold near 0.5; fold 2 alone would want about 0.8.
    const pairs = [
      ...[0, 1].flatMap((fold) => [pair(0.9, true, fold), pair(0.6, true, fold), pair(0.55, true, fold), pair(0.4, false, fold), pair(0.1, false, fold)]),
      pair(0.9, true, 2),
      pair(0.7, false, 2),
      pair(0.1, false, 2),
      pair(0.85, true, 2),
    ];
    const result = foldAccuracy(pairs);
    assert.deepEqual(result.folds.map((a) => Number(a.toFixed(2))), [1, 1, 0.75]);
    assert.ok(Math.abs(result.mean - 2.75 / 3) < 1e-12);
  });
});

describe('detection metrics', () => {
  it('computes recall at a false-positive rate, the maximum recall and AP', () => {
    const detections = [
      { score: 0.95, truePositive: true },
      { score: 0.9, truePositive: true },
      { score: 0.8, truePositive: false },
      { score: 0.7, truePositive: true },
      { score: 0.3, truePositive: false },
    ];
    const { recallAtFp, maxRecall, ap } = detectionMetrics(detections, 4, 10, 0.1);
    assert.equal(recallAtFp, 0.75); // one FP per 10 images allows the first four
    assert.equal(maxRecall, 0.75);
    assert.ok(Math.abs(ap - (0.5 * 1 + 0.25 * 0.75)) < 1e-12);
  });
});
