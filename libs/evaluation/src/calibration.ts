/**
 * Threshold calibration for 1:1 decisions: from embeddings of labelled identities, every pair of
 * images of one identity is a genuine pair and every pair across identities an impostor pair; the
 * threshold for a false-match rate f admits at most f × (impostor pairs) impostors under the
 * matcher's rule `score >= threshold`. Many identities give millions of impostor pairs, enough to
 * estimate rates down to 1e-5 (a few hundred identities would not).
 */
import { cosine } from '@faceprint/contracts';

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
}

/** What a calibration measured. */
export interface Calibration {
  readonly identities: number;
  readonly images: number;
  readonly genuinePairs: number;
  readonly impostorPairs: number;
  readonly points: CalibratedPoint[];
}

const scratch = new Float32Array(1);
const bits = new Int32Array(scratch.buffer);

/** The smallest float32 strictly greater than `x`. */
export function float32Above(x: number): number {
  scratch[0] = x;
  if (scratch[0] <= x) {
    // Step one unit in the last place towards +Infinity (the sign decides the direction).
    if (scratch[0] === 0) bits[0] = 1;
    else bits[0]! += scratch[0] > 0 ? 1 : -1;
  }
  return scratch[0];
}

/** Calibrates thresholds for `fars` from embeddings grouped by identity. */
export function calibrate(byIdentity: ReadonlyMap<string, readonly Float32Array[]>, fars: readonly number[]): Calibration {
  const groups = [...byIdentity.values()].filter((g) => g.length > 0);
  const all = groups.flatMap((group, identity) => group.map((embedding) => ({ embedding, identity })));
  const genuine: number[] = [];
  const pairs = (n: number) => (n * (n - 1)) / 2;
  const impostor = new Float64Array(pairs(all.length) - groups.reduce((sum, g) => sum + pairs(g.length), 0));
  let next = 0;
  for (let i = 0; i < all.length; i++) {
    for (let j = i + 1; j < all.length; j++) {
      const score = cosine(all[i]!.embedding, all[j]!.embedding);
      if (all[i]!.identity === all[j]!.identity) genuine.push(score);
      else impostor[next++] = score;
    }
  }
  impostor.sort().reverse(); // highest first
  const points = fars.map((far) => {
    const allowed = Math.floor(far * impostor.length);
    // Just above the (allowed + 1)-th highest impostor score: at most `allowed` impostors reach it.
    const threshold = allowed < impostor.length ? float32Above(impostor[allowed]!) : -1;
    let falseAccepts = 0;
    while (falseAccepts < impostor.length && impostor[falseAccepts]! >= threshold) falseAccepts += 1;
    return {
      far,
      threshold,
      tar: genuine.length ? genuine.filter((s) => s >= threshold).length / genuine.length : 0,
      measuredFar: impostor.length ? falseAccepts / impostor.length : 0,
      falseAccepts,
    };
  });
  return { identities: groups.length, images: all.length, genuinePairs: genuine.length, impostorPairs: impostor.length, points };
}
