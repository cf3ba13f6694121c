/**
 * The calibration job: labelled face images (a folder per identity, or an identities TSV) through
 * the detector, aligner and one pinned version of the embedder; every genuine and impostor pair
 * scored; the thresholds for false-match rates 1e-3, 1e-4 and 1e-5 written into that version's
 * manifest, where the matcher reads them for its decisions (as `faceprint eval calibrate --record`
 * does against running services).
 */
import { stat } from 'node:fs/promises';
import { basename } from 'node:path';
import type { JobSpec } from '@faceprint/contracts/trainer';
import { calibrate, readLabelledImages, recordableThresholds, unsupportedRatesMessage } from '@faceprint/evaluation';
import type { ModelRegistry } from '@faceprint/model-registry';
import type { JobWork } from './job-runner.js';
import { checkBaseModel, embedWithBaseModel, type JobRegistry } from './pinned-model.js';

/** The false-match rates calibrated unless the `fars` parameter names others. */
export const CALIBRATED_FARS = [1e-3, 1e-4, 1e-5];

/** The `fars` parameter (comma-separated rates), or the default ones. */
const farsOf = (spec: JobSpec) => (spec.parameters['fars'] ? spec.parameters['fars'].split(',').map((f) => Number(f.trim())) : CALIBRATED_FARS);

/** The dataset name recorded with the thresholds: the `name` parameter, else the file's or folder's name. */
const datasetName = (spec: JobSpec) => spec.parameters['name'] || basename(spec.dataset).replace(/\.tsv$/, '');

/** Checks a calibration spec before it is queued: an embedder version and labelled images that exist. */
export async function checkCalibrateSpec(spec: JobSpec, registry: ModelRegistry): Promise<string[]> {
  const problems: string[] = [];
  await checkBaseModel(spec, registry, problems);
  if (!(await stat(spec.dataset).catch(() => undefined))) problems.push(`dataset: ${spec.dataset ? `"${spec.dataset}" does not exist` : 'is required: a folder per identity, or an identities .tsv'}`);
  if (farsOf(spec).some((f) => !(f > 0 && f <= 0.5))) problems.push(`parameters.fars: false-match rates in (0, 0.5], comma-separated, got "${spec.parameters['fars']}"`);
  return problems;
}

/** The calibration job's work, over the registry. */
export function calibrateJob(where: JobRegistry): JobWork {
  return async (spec, context) => {
    const { signal, progress } = context;
    const { registry } = where;
    const model = spec.baseModel!;
    const labelled = await readLabelledImages(spec.dataset, spec.parameters['root'] || undefined);
    progress({ step: 0n, totalSteps: BigInt(labelled.length), message: `embedding ${labelled.length} images with ${model.name} v${model.version}` });
    const { embeddings } = await embedWithBaseModel(labelled.map((l) => l.path), spec, where, 'central', context);
    if (signal.aborted) return undefined;
    const byIdentity = new Map<string, Float32Array[]>();
    for (const { identity, path } of labelled) {
      const embedding = embeddings.get(path);
      if (!embedding) continue; // no face: left out, counted below
      let group = byIdentity.get(identity);
      if (!group) byIdentity.set(identity, (group = []));
      group.push(embedding);
    }
    const result = calibrate(byIdentity, farsOf(spec));
    if (result.genuinePairs === 0 || result.impostorPairs === 0) throw new Error('calibration needs identities with two or more images and at least two identities');
    const dataset = datasetName(spec);
    // Only the rates these impostor pairs can show are recorded, each with its counts and bound.
    const { thresholds, unsupported } = recordableThresholds(result, dataset);
    if (thresholds.length === 0) throw new Error(`nothing recorded: ${unsupportedRatesMessage(result, unsupported)}`);
    await registry.recordCalibration(model.name, model.version, {
      thresholds,
      metrics: { calibration_genuine_pairs: result.genuinePairs, calibration_impostor_pairs: result.impostorPairs },
    });
    const metrics = Object.fromEntries(result.points.flatMap((p) => [[`threshold_at_far_${p.far.toExponential(0)}`, p.threshold], [`tar_at_far_${p.far.toExponential(0)}`, p.tar]]));
    progress({
      metrics: { ...metrics, genuine_pairs: result.genuinePairs, impostor_pairs: result.impostorPairs, images_without_face: labelled.length - result.images },
      message: `${dataset}: thresholds for FAR ${thresholds.filter((t) => !t.perComparison).map((t) => t.far.toExponential(0)).join(', ')} recorded, and ${thresholds.filter((t) => t.perComparison).length} per-comparison ones for several templates (${result.genuinePairs} genuine, ${result.impostorPairs} impostor pairs)${unsupported.length ? `; not recorded: ${unsupportedRatesMessage(result, unsupported)}` : ''}`,
    });
    return undefined;
  };
}
