/**
 * Whether the templates of an enrolment show one person: each added template's best score
 * against the subject's other templates of its model version (the others of this enrolment and
 * those enrolled before), held to the model's loosest calibrated threshold. A flag, not a refusal:
 * genuine photos sometimes score low, and the best of several comparisons is what is held to it.
 */
import { create } from '@bufbuild/protobuf';
import { cosine } from '@faceprint/contracts';
import { EnrolmentConsistencySchema, type EnrolmentConsistency } from '@faceprint/contracts/common';
import type { ModelManifest } from '@faceprint/contracts/trainer';

/** A template's vector (unit length) and the version that made it. */
export interface ComparableTemplate {
  readonly model: { readonly name: string; readonly version: number };
  readonly vector: Float32Array;
}

/** The loosest threshold calibrated for `manifest` (the largest false-match rate), if any. */
export function loosestThreshold(manifest: ModelManifest): { threshold: number; far: number } | undefined {
  const loosest = [...manifest.thresholds].sort((a, b) => b.far - a.far)[0];
  return loosest && { threshold: loosest.threshold, far: loosest.far };
}

/**
 * The consistency of `added` (in request order) with each other and with `earlier`, each
 * template held to the threshold of its own model version; undefined when the first template's
 * model has no calibrated threshold.
 */
export function enrolmentConsistency(
  added: readonly ComparableTemplate[],
  earlier: readonly ComparableTemplate[],
  thresholdOf: (model: ComparableTemplate['model']) => { threshold: number; far: number } | undefined,
): EnrolmentConsistency | undefined {
  const reported = thresholdOf(added[0]!.model);
  if (!reported) return undefined;
  const sameVersion = (a: ComparableTemplate, b: ComparableTemplate) => a.model.name === b.model.name && a.model.version === b.model.version;
  const templates: { index: number; bestScore: number }[] = [];
  let flagged = false;
  added.forEach((template, index) => {
    const others = [...added.filter((_, j) => j !== index), ...earlier].filter((other) => sameVersion(other, template));
    if (others.length === 0) return;
    const bestScore = Math.max(...others.map((other) => cosine(template.vector, other.vector)));
    templates.push({ index, bestScore });
    const threshold = thresholdOf(template.model);
    if (threshold && bestScore < threshold.threshold) flagged = true;
  });
  return create(EnrolmentConsistencySchema, { templates, threshold: reported.threshold, far: reported.far, flagged });
}
