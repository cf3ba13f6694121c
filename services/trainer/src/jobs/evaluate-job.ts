/**
 * The evaluation job: a verification pairs file (LFW pairs.txt or TSV) through the detector,
 * aligner and one pinned version of the embedder (started next to the registry for the job), the
 * protocol's figures recorded in that version's manifest as `<dataset>/<metric>`. The promotion
 * gate compares these figures between a candidate and the current version.
 */
import { stat } from 'node:fs/promises';
import { basename } from 'node:path';
import type { JobSpec } from '@faceprint/contracts/trainer';
import { readPairs, scorePairs, verificationMetrics } from '@faceprint/evaluation';
import type { ModelRegistry } from '@faceprint/model-registry';
import type { JobWork } from './job-runner.js';
import { checkBaseModel, embedWithBaseModel, type JobRegistry } from './pinned-model.js';

/** The dataset name metrics are recorded under: the `name` parameter, else the pairs file's name. */
export const datasetName = (spec: JobSpec) => spec.parameters['name'] || basename(spec.dataset).replace(/\.(txt|tsv)$/, '');

/** The metric keys an evaluation records, for one dataset. */
export const metricKey = (dataset: string, metric: string) => `${dataset}/${metric}`;

/** Checks an evaluation spec before it is queued: a model version and an existing pairs file. */
export async function checkEvaluateSpec(spec: JobSpec, registry: ModelRegistry): Promise<string[]> {
  const problems: string[] = [];
  await checkBaseModel(spec, registry, problems);
  if (!(await stat(spec.dataset).catch(() => undefined))?.isFile()) problems.push(`dataset: ${spec.dataset ? `"${spec.dataset}" is not a file` : 'is required: a pairs file (LFW pairs.txt or .tsv)'}`);
  const face = spec.parameters['face'];
  if (face && face !== 'largest' && face !== 'central') problems.push('parameters.face: must be "largest" or "central"');
  return problems;
}

/** The evaluation job's work, over the registry. */
export function evaluateJob(where: JobRegistry): JobWork {
  // It produces no model (the job's result_model stays empty): it records figures in one.
  return async (spec, context) => {
    const { signal, progress } = context;
    const { registry } = where;
    const model = spec.baseModel!;
    const root = spec.parameters['root'] || undefined;
    const pairs = await readPairs(spec.dataset, root); // the format read from the content
    const images = [...new Set(pairs.flatMap((p) => [p.a, p.b]))];
    progress({ step: 0n, totalSteps: BigInt(images.length), message: `embedding ${images.length} images with ${model.name} v${model.version}` });
    const { embeddings } = await embedWithBaseModel(images, spec, where, 'largest', context);
    if (signal.aborted) return undefined;
    const metrics = verificationMetrics(scorePairs(pairs, embeddings));
    const dataset = datasetName(spec);
    const recorded = {
      [metricKey(dataset, 'pairs')]: metrics.pairs,
      [metricKey(dataset, 'accuracy')]: metrics.accuracy,
      [metricKey(dataset, 'accuracy_std')]: metrics.accuracy_std,
      [metricKey(dataset, 'auc')]: metrics.auc,
      [metricKey(dataset, 'tar_at_far_1e-2')]: metrics.tar_at_far['1e-2'],
      [metricKey(dataset, 'tar_at_far_1e-3')]: metrics.tar_at_far['1e-3'],
      [metricKey(dataset, 'failed_pairs')]: metrics.failed_pairs,
    };
    const manifest = await registry.readManifest(model.name, model.version);
    await registry.recordCalibration(model.name, model.version, { thresholds: manifest.thresholds, metrics: recorded });
    progress({ metrics: recorded, message: `${dataset}: accuracy ${(100 * metrics.accuracy).toFixed(2)}%, TAR at FAR 1e-3 ${(100 * metrics.tar_at_far['1e-3']).toFixed(2)}%` });
    return undefined;
  };
}
