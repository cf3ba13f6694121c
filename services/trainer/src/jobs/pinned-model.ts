/**
 * What the trainer's jobs share about the model version they work on: checking that the spec
 * names one the registry holds, and the settings that start a detector, aligner and an embedder
 * pinned to it next to the registry.
 */
import type { JobSpec, ModelManifest } from '@faceprint/contracts/trainer';
import { embedImages } from '@faceprint/evaluation';
import type { FaceChoice } from '@faceprint/face-pipeline';
import type { ModelRegistry } from '@faceprint/model-registry';
import type { JobWork } from './job-runner.js';

/** Where the registry is (and its model mirror), for the services a job starts. */
export interface JobRegistry {
  readonly registry: ModelRegistry;
  readonly root: string;
  readonly mirrorDir: string | undefined;
  /** The matcher a fine-tune takes consented gallery templates from. */
  readonly matcherAddress: string;
  /** Where fine-tunes keep what they embedded, for a resume. */
  readonly checkpointDir: string;
}

/** The spec's base model as the registry holds it; a problem is added when it is missing or unknown. */
export async function checkBaseModel(spec: JobSpec, registry: ModelRegistry, problems: string[]): Promise<ModelManifest | undefined> {
  if (!spec.baseModel?.name || !spec.baseModel.version) {
    problems.push('base_model: name and version are required');
    return undefined;
  }
  const manifest = await registry.readManifest(spec.baseModel.name, spec.baseModel.version).catch(() => undefined);
  if (!manifest) problems.push(`base_model: ${spec.baseModel.name} v${spec.baseModel.version} is not in the registry`);
  return manifest;
}

/**
 * What a version a job makes from `parent` (fine-tuned, quantised) keeps of it: task, source,
 * license, input and output specs, alignment template, embedding size, format. Not its
 * thresholds or metrics: those are the new version's to earn.
 */
export function inheritedManifest(parent: ModelManifest) {
  const { task, source, license, inputs, outputs, alignment, embeddingDim, format } = parent;
  return { task, source, license, inputs, outputs, alignment, embeddingDim, format };
}

/** Settings of the services a job starts: its registry, and the embedder pinned to `model` (no hot swap). */
export function pinnedServiceEnv(where: JobRegistry, model: { name: string; version: number }): Record<string, string> {
  return {
    FACEPRINT_MODEL_REGISTRY: where.root,
    FACEPRINT_EMBEDDER_MODEL: `${model.name}@${model.version}`,
    ...(where.mirrorDir ? { FACEPRINT_MODEL_MIRROR: where.mirrorDir } : {}),
  };
}

/** Embeds `images` with the spec's base model pinned, reporting progress; `face` unless the spec's `face` parameter says otherwise. */
export function embedWithBaseModel(images: readonly string[], spec: JobSpec, where: JobRegistry, face: FaceChoice, context: Parameters<JobWork>[1]) {
  const { signal, progress } = context;
  const parameter = spec.parameters['face'];
  return embedImages(images, {
    face: parameter === 'largest' || parameter === 'central' ? parameter : face,
    refine: false,
    flip: spec.parameters['flip'] === 'true',
    target: undefined,
    detectorInputSize: spec.parameters['detector_input_size'] || '640',
    concurrency: 4,
    serviceEnv: pinnedServiceEnv(where, spec.baseModel!),
    signal,
    onProgress: (done, total) => progress({ step: BigInt(done), totalSteps: BigInt(total), message: `embedded ${done}/${total} images` }),
  });
}
