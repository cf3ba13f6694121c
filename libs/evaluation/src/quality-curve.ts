/**
 * The error-versus-discard curve of a quality score (ISO/IEC 29794-1's EDC, over every pair):
 * discard the lowest-quality share of the images, then measure again on the pairs of the images
 * kept. Two figures per share: TAR at the target false-match rate (its threshold chosen again on
 * the impostor comparisons kept), and the false non-match rate at the threshold of the whole set
 * (ISO's fixed-threshold EDC). Beside each, the same share discarded at random: a quality score is
 * useful only where its curve falls faster than that one.
 */
import { errorRates, operatingPoint, scoreAllPairs, thresholdForFar, type LabelledEmbedding } from './all-pairs.js';
import { seededRandom } from './seeded-random.js';

/** One image with its quality (undefined where no face was found: those go first). */
export interface ImageWithQuality extends LabelledEmbedding {
  readonly quality: number | undefined;
}

/** TAR and FNMR at one target false-match rate. */
export interface DiscardRates {
  readonly far: number;
  /** TAR at the target rate, its threshold chosen on the pairs kept. */
  readonly tar: number;
  /** FNMR at the whole set's threshold for the target rate. */
  readonly fnmrAtStartThreshold: number;
}

/** The figures after discarding one share of the images. */
export interface DiscardPoint {
  /** The share of images discarded. */
  readonly discarded: number;
  readonly imagesKept: number;
  /** The lowest quality kept (of the images with a face). */
  readonly minQualityKept: number;
  readonly genuinePairs: number;
  readonly impostorPairs: number;
  /** One entry per target rate. */
  readonly rates: readonly DiscardRates[];
  /** The same when the share is discarded at random instead. */
  readonly random: readonly DiscardRates[];
}

/** The curve at each share of `discards` (e.g. 0, 0.05, 0.1, 0.2), at each of `targetFars`. */
export function qualityCurve(images: readonly ImageWithQuality[], discards: readonly number[], targetFars: readonly number[]): DiscardPoint[] {
  const byQuality = [...images].sort((a, b) => (a.quality ?? -Infinity) - (b.quality ?? -Infinity));
  const random = seededRandom(29794);
  const shuffled = images.map((image) => ({ image, key: random() })).sort((a, b) => a.key - b.key).map((entry) => entry.image);
  const whole = scoreAllPairs(images);
  const startThresholds = targetFars.map((far) => thresholdForFar(whole, far));
  const measure = (kept: readonly ImageWithQuality[]) => {
    const scores = scoreAllPairs(kept);
    const rates = targetFars.map((far, i) => ({ far, tar: operatingPoint(scores, far).tar, fnmrAtStartThreshold: errorRates(scores, startThresholds[i]!).frr }));
    return { scores, rates };
  };
  return discards.map((discarded) => {
    const drop = Math.round(discarded * images.length);
    const kept = byQuality.slice(drop);
    const byScore = measure(kept);
    return {
      discarded,
      imagesKept: kept.length,
      minQualityKept: kept.find((image) => image.quality !== undefined)?.quality ?? Number.NaN,
      genuinePairs: byScore.scores.genuinePairs,
      impostorPairs: byScore.scores.impostorPairs,
      rates: byScore.rates,
      random: measure(shuffled.slice(drop)).rates,
    };
  });
}
