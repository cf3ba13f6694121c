/**
 * Verification against subjects enrolled with several images: each identity with enough images
 * enrols its first N and is verified with the rest (genuine), and every probe is also verified
 * against every other identity's enrolment (impostor). One score per probe and subject, fused
 * from the subject's templates one of three ways:
 * - `max`: the best of the probe's scores against each template (what the matcher does today);
 * - `mean-score`: the mean of those scores;
 * - `mean-template`: the score against the normalised mean of the templates (one comparison).
 * The probes are the same for every N (each identity's images from the largest N on), so the
 * figures of different N and fusions compare like with like.
 */
import { cosine } from '@faceprint/contracts';
import type { AllPairsScores } from './all-pairs.js';

/** How a subject's templates make one score. */
export type Fusion = 'max' | 'mean-score' | 'mean-template';
export const FUSIONS: readonly Fusion[] = ['max', 'mean-score', 'mean-template'];

/** One identity's images in their order (undefined: no face found). */
export type IdentityImages = ReadonlyMap<string, readonly (Float32Array | undefined)[]>;

/** The identities that have more than `largestEnrolment` images: the ones every N can use. */
export function usableIdentities(images: IdentityImages, largestEnrolment: number): string[] {
  return [...images].filter(([, list]) => list.length > largestEnrolment).map(([identity]) => identity);
}

function normalised(vectors: readonly Float32Array[]): Float32Array {
  const sum = new Float32Array(vectors[0]!.length);
  for (const v of vectors) for (let i = 0; i < sum.length; i++) sum[i]! += v[i]!;
  const norm = Math.hypot(...sum) || 1;
  return sum.map((v) => v / norm);
}

/** The fused score of `probe` against `templates` (at least one). */
export function fusedScore(probe: Float32Array, templates: readonly Float32Array[], fusion: Fusion, meanTemplate?: Float32Array): number {
  if (fusion === 'mean-template') return cosine(probe, meanTemplate ?? normalised(templates));
  const scores = templates.map((t) => cosine(probe, t));
  return fusion === 'max' ? Math.max(...scores) : scores.reduce((a, b) => a + b, 0) / scores.length;
}

/**
 * The genuine and impostor scores of enrolling `enrolled` images per identity, probes from image
 * `largestEnrolment` on, in the shape of all-pairs scores (so the same operating points apply).
 * A comparison with a probe without a face, or a subject none of whose enrolment images had one,
 * counts as a non-match.
 */
export function multiSampleScores(images: IdentityImages, enrolled: number, largestEnrolment: number, fusion: Fusion): AllPairsScores {
  const identities = usableIdentities(images, largestEnrolment);
  const subjects = identities.map((identity) => {
    const templates = images.get(identity)!.slice(0, enrolled).filter((t): t is Float32Array => t !== undefined);
    return { identity, templates, meanTemplate: templates.length ? normalised(templates) : undefined };
  });
  const probes = identities.flatMap((identity) => images.get(identity)!.slice(largestEnrolment).map((embedding) => ({ identity, embedding })));
  const genuine: number[] = [];
  const impostor: number[] = [];
  for (const probe of probes) {
    for (const subject of subjects) {
      if (!probe.embedding || subject.templates.length === 0) continue; // counted in the pairs, as a non-match
      (probe.identity === subject.identity ? genuine : impostor).push(fusedScore(probe.embedding, subject.templates, fusion, subject.meanTemplate));
    }
  }
  const descending = (scores: number[]) => Float64Array.from(scores).sort().reverse();
  return {
    identities: identities.length,
    images: probes.length,
    failedImages: probes.filter((p) => !p.embedding).length,
    genuinePairs: probes.length,
    impostorPairs: probes.length * (subjects.length - 1),
    genuine: descending(genuine),
    impostor: descending(impostor),
  };
}
