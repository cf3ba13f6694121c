import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { upperBound } from './error-bounds.js';

const close = (actual: number, expected: number, relative = 1e-3) => assert.ok(Math.abs(actual - expected) <= relative * expected, `${actual} vs ${expected}`);

describe('upperBound (one-sided 95% Clopper-Pearson)', () => {
  it('is 1 - 0.05^(1/N) with no error: about the rule of three', () => {
    close(upperBound(0, 3_000), 1 - 0.05 ** (1 / 3_000));
    close(upperBound(0, 29_600_000), 3 / 29_600_000, 2e-3);
  });

  it('matches published exact bounds', () => {
    // The beta quantile Beta(0.95; k + 1, n - k), as scipy.stats.beta.ppf gives it.
    close(upperBound(1, 10), 0.394163, 1e-5);
    close(upperBound(5, 100), 0.102253, 1e-5);
    close(upperBound(10, 1000), 0.0169032, 1e-5);
    close(upperBound(2960, 29_600_000), 1.030765e-4, 1e-5);
  });

  it('stays above the measured rate and tightens as trials grow', () => {
    const small = upperBound(3, 30_000);
    const large = upperBound(300, 3_000_000);
    assert.ok(small > 1e-4 && large > 1e-4 && large < small, `${small} ${large}`);
  });

  it('refuses impossible counts', () => {
    assert.throws(() => upperBound(5, 4), RangeError);
    assert.throws(() => upperBound(0, 0), RangeError);
    assert.equal(upperBound(4, 4), 1);
  });
});
