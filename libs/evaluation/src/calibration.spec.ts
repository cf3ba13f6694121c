import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { float32Above } from './all-pairs.js';
import { calibrate } from './calibration.js';

/** A unit vector at `angle` radians in the plane (cosine between two of them: cos of the difference). */
const at = (angle: number) => new Float32Array([Math.cos(angle), Math.sin(angle)]);

describe('threshold calibration', () => {
  it('steps to the next float32 above a value', () => {
    for (const x of [0.5, 0.123456789, -0.25, 0, 1e-9]) {
      const above = float32Above(x);
      assert.ok(above > x, `${above} > ${x}`);
      assert.equal(Math.fround(above), above);
      assert.ok(above - x < 1e-7 * Math.max(1, Math.abs(x)) + 1e-44);
    }
  });

  it('admits at most far × impostor pairs under score >= threshold, and measures TAR on genuine pairs', () => {
    // 40 identities of 3 images each, spread around the circle: impostors far apart, genuine close.
    const byIdentity = new Map<string, Float32Array[]>();
    for (let i = 0; i < 40; i++) byIdentity.set(`id${i}`, [at(i * 0.15), at(i * 0.15 + 0.01), at(i * 0.15 + 0.02)]);
    const result = calibrate(byIdentity, [1e-1, 1e-2, 1e-3]);
    assert.equal(result.images, 120);
    assert.equal(result.genuinePairs, 40 * 3);
    assert.equal(result.impostorPairs, (120 * 119) / 2 - 120);
    for (const point of result.points) {
      assert.ok(point.falseAccepts <= Math.floor(point.far * result.impostorPairs), `${point.falseAccepts} false accepts at ${point.far}`);
      assert.equal(point.measuredFar, point.falseAccepts / result.impostorPairs);
    }
    // Stricter rates need higher thresholds and accept fewer genuine pairs.
    const [loose, , strict] = result.points;
    assert.ok(strict!.threshold > loose!.threshold);
    assert.ok(strict!.tar <= loose!.tar);
    assert.equal(loose!.tar, 1, 'neighbouring identities are 0.15 rad apart, genuine pairs at most 0.02');
  });
});
