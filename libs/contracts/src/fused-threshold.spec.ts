import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { create } from '@bufbuild/protobuf';
import { fusedThreshold, perComparisonRates, sameRate } from './fused-threshold.js';
import { CalibratedThresholdSchema } from './gen/faceprint/trainer/v1/model_pb.js';

const at = (far: number, threshold: number, perComparison = false) => create(CalibratedThresholdSchema, { far, threshold, farUpper95: far * 1.1, impostorPairs: 1_000_000n, perComparison });

describe('fusedThreshold', () => {
  it('holds each of k templates to the threshold of far / k, with k times its bound', () => {
    const calibrated = perComparisonRates([1e-3, 1e-4]).map((far) => at(far, 0.9 + 0.01 * Math.log10(1e-3 / far), !sameRate(far, 1e-3) && !sameRate(far, 1e-4)));
    assert.equal(perComparisonRates([1e-3, 1e-4]).length, 19, '1e-3/10 is 1e-4: counted once');
    const five = fusedThreshold(calibrated, 1e-4, 5)!;
    assert.deepEqual([five.comparisons, five.perComparisonFar], [5, 2e-5]);
    assert.ok(Math.abs(five.farUpper95 - 5 * 2e-5 * 1.1) < 1e-12);
    assert.equal(fusedThreshold(calibrated, 1e-4, 40)!.comparisons, 10, 'at most 10 templates');
    assert.equal(fusedThreshold(calibrated, 1e-4, 1)!.threshold, calibrated.find((t) => t.far === 1e-4)!.threshold);
  });

  it('compares fewer templates where the per-comparison rates are not calibrated, and offers only decision rates', () => {
    const headline = [at(1e-3, 0.9), at(1e-4, 0.92), at(1e-5, 0.94)];
    assert.deepEqual([fusedThreshold(headline, 1e-3, 5)!.comparisons, fusedThreshold(headline, 1e-3, 5)!.threshold], [1, 0.9], 'no 1e-3/k below 10: the best template alone');
    assert.equal(fusedThreshold(headline, 1e-3, 10)!.comparisons, 10, '1e-3/10 is the calibrated 1e-4');
    assert.equal(fusedThreshold([...headline, at(2e-4, 0.91, true)], 2e-4, 1), undefined, 'a per-comparison rate is not a rate to decide at');
    assert.equal(fusedThreshold(headline, 1e-2, 1), undefined);
  });
});
