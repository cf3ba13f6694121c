/**
 * Verification over every pair of a labelled image set: each pair of images of one identity is a
 * genuine comparison, each pair across identities an impostor comparison. Thousands of images
 * give millions of impostor comparisons, the only way to measure false-match rates of 1e-4 and
 * below (a pairs file's 3,000 impostor pairs cannot tell 1e-4 from 0). The decision rule is the
 * matcher's: a match when score >= threshold. An image whose face was not found still counts in
 * every comparison it is part of, as a non-match.
 */
import { cosine } from '@faceprint/contracts';
import { upperBound } from './error-bounds.js';

/** One image: its identity and its embedding (undefined: no face found). */
export interface LabelledEmbedding {
  readonly identity: string;
  readonly embedding: Float32Array | undefined;
  /** How it was taken (e.g. the lighting), for per-condition figures. */
  readonly condition?: string;
}

/** The scores of every comparison, each kind sorted best first. */
export interface AllPairsScores {
  readonly identities: number;
  readonly images: number;
  /** Images with no face: their comparisons are non-matches. */
  readonly failedImages: number;
  /** Genuine comparisons, including those with a failed image. */
  readonly genuinePairs: number;
  /** Impostor comparisons, including those with a failed image. */
  readonly impostorPairs: number;
  /** The genuine scores of the comparisons that had both faces, highest first. */
  readonly genuine: Float64Array;
  /** The impostor scores of the comparisons that had both faces, highest first. */
  readonly impostor: Float64Array;
}

const pairsOf = (n: number) => (n * (n - 1)) / 2;

/** How many impostor comparisons images of these identities (one entry per image) make. */
export function impostorPairsOf(identities: readonly string[]): number {
  const sizes = new Map<string, number>();
  for (const identity of identities) sizes.set(identity, (sizes.get(identity) ?? 0) + 1);
  return pairsOf(identities.length) - [...sizes.values()].reduce((sum, n) => sum + pairsOf(n), 0);
}

/**
 * Whether `impostorPairs` comparisons can show a false-match rate at all: with no false match
 * the 95% upper bound is still about 3/N, so fewer than about 3/rate of them cannot support it.
 */
export const canShowRate = (impostorPairs: number, far: number) => impostorPairs > 0 && upperBound(0, impostorPairs) <= far;

/**
 * Scores every pair of `images`, or only the pairs `include` takes (e.g. those with an image of
 * one capture condition; then the counts come from going over every pair, so keep such sets small).
 */
export function scoreAllPairs(images: readonly LabelledEmbedding[], include?: (a: LabelledEmbedding, b: LabelledEmbedding) => boolean): AllPairsScores {
  if (include) return scoreSomePairs(images, include);
  const impostorPairs = impostorPairsOf(images.map((image) => image.identity));
  const genuinePairs = pairsOf(images.length) - impostorPairs;
  const found = images.filter((image) => image.embedding);
  const foundSizes = new Map<string, number>();
  for (const image of found) foundSizes.set(image.identity, (foundSizes.get(image.identity) ?? 0) + 1);
  const foundGenuine = [...foundSizes.values()].reduce((sum, n) => sum + pairsOf(n), 0);
  const genuine = new Float64Array(foundGenuine);
  const impostor = new Float64Array(pairsOf(found.length) - foundGenuine);
  let g = 0;
  let k = 0;
  for (let i = 0; i < found.length; i++) {
    const a = found[i]!;
    for (let j = i + 1; j < found.length; j++) {
      const score = cosine(a.embedding!, found[j]!.embedding!);
      if (a.identity === found[j]!.identity) genuine[g++] = score;
      else impostor[k++] = score;
    }
  }
  genuine.sort().reverse();
  impostor.sort().reverse();
  return {
    identities: new Set(images.map((image) => image.identity)).size,
    images: images.length,
    failedImages: images.length - found.length,
    genuinePairs,
    impostorPairs,
    genuine,
    impostor,
  };
}

/** {@link scoreAllPairs} over the pairs `include` takes. */
function scoreSomePairs(images: readonly LabelledEmbedding[], include: (a: LabelledEmbedding, b: LabelledEmbedding) => boolean): AllPairsScores {
  const genuine: number[] = [];
  const impostor: number[] = [];
  let [genuinePairs, impostorPairs] = [0, 0];
  for (let i = 0; i < images.length; i++) {
    for (let j = i + 1; j < images.length; j++) {
      const [a, b] = [images[i]!, images[j]!];
      if (!include(a, b)) continue;
      const same = a.identity === b.identity;
      if (same) genuinePairs++;
      else impostorPairs++;
      if (a.embedding && b.embedding) (same ? genuine : impostor).push(cosine(a.embedding, b.embedding));
    }
  }
  const descending = (scores: number[]) => Float64Array.from(scores).sort().reverse();
  return {
    identities: new Set(images.map((image) => image.identity)).size,
    images: images.length,
    failedImages: images.filter((image) => !image.embedding).length,
    genuinePairs,
    impostorPairs,
    genuine: descending(genuine),
    impostor: descending(impostor),
  };
}

/** How many of `descending` are >= `threshold` (binary search). */
function atOrAbove(descending: Float64Array, threshold: number): number {
  let [low, high] = [0, descending.length];
  while (low < high) {
    const mid = (low + high) >>> 1;
    if (descending[mid]! >= threshold) low = mid + 1;
    else high = mid;
  }
  return low;
}

/** The error rates of one threshold, with counts and the false-match rate's 95% upper bound. */
export interface ThresholdRates {
  readonly threshold: number;
  /** False-match rate: impostor comparisons accepted. */
  readonly far: number;
  /** False non-match rate: genuine comparisons refused (failed images included). */
  readonly frr: number;
  readonly impostors: number;
  readonly genuine: number;
  readonly falseMatches: number;
  readonly falseNonMatches: number;
  /** One-sided 95% Clopper-Pearson upper bound of the false-match rate. */
  readonly farUpper95: number;
}

/** The false-match and false non-match rates of a threshold, without the bound (cheap: for curves). */
export function errorRates(scores: AllPairsScores, threshold: number): { far: number; frr: number } {
  return {
    far: scores.impostorPairs ? atOrAbove(scores.impostor, threshold) / scores.impostorPairs : 0,
    frr: scores.genuinePairs ? 1 - atOrAbove(scores.genuine, threshold) / scores.genuinePairs : 0,
  };
}

/** The real error rates of a threshold fixed in advance. */
export function ratesAt(scores: AllPairsScores, threshold: number): ThresholdRates {
  const falseMatches = atOrAbove(scores.impostor, threshold);
  const accepted = atOrAbove(scores.genuine, threshold);
  return {
    threshold,
    far: scores.impostorPairs ? falseMatches / scores.impostorPairs : 0,
    frr: scores.genuinePairs ? 1 - accepted / scores.genuinePairs : 0,
    impostors: scores.impostorPairs,
    genuine: scores.genuinePairs,
    falseMatches,
    falseNonMatches: scores.genuinePairs - accepted,
    farUpper95: scores.impostorPairs ? upperBound(falseMatches, scores.impostorPairs) : 1,
  };
}

const scratch = new Float32Array(1);
const bits = new Int32Array(scratch.buffer);

/** The smallest float32 strictly greater than `x` (thresholds are stored as float32). */
export function float32Above(x: number): number {
  scratch[0] = x;
  if (scratch[0] <= x) {
    // Step one unit in the last place towards +Infinity (the sign decides the direction).
    if (scratch[0] === 0) bits[0] = 1;
    else bits[0]! += scratch[0] > 0 ? 1 : -1;
  }
  return scratch[0];
}

/** The operating point for a target false-match rate. */
export interface OperatingPoint extends ThresholdRates {
  /** The target false-match rate. */
  readonly targetFar: number;
  /** The share of genuine comparisons accepted. */
  readonly tar: number;
  /** Whether the comparisons can show the target at all ({@link canShowRate}). */
  readonly resolvable: boolean;
}

/**
 * The loosest threshold (a float32) at which at most `targetFar` of the impostor comparisons
 * match: just above the (allowed + 1)-th highest impostor score.
 */
export function thresholdForFar(scores: AllPairsScores, targetFar: number): number {
  const allowed = Math.floor(targetFar * scores.impostorPairs);
  return allowed < scores.impostor.length ? float32Above(scores.impostor[allowed]!) : -1;
}

/** The operating point of a target false-match rate: its threshold, TAR, counts and bound. */
export function operatingPoint(scores: AllPairsScores, targetFar: number): OperatingPoint {
  const rates = ratesAt(scores, thresholdForFar(scores, targetFar));
  return { ...rates, targetFar, tar: 1 - rates.frr, resolvable: canShowRate(scores.impostorPairs, targetFar) };
}
