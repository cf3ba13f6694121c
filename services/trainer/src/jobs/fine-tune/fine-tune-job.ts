/**
 * The fine-tuning job: labelled face images (a folder per identity, or an identities TSV) through
 * the detector, the aligner and the base embedder pinned to its version (started for the job);
 * each aligned crop embedded as it is and in augmented copies; a projection head trained on those
 * frozen embeddings (head-training.ts); the head appended to the base graph (export-head.ts) and
 * published as a new version with its lineage (parent, dataset digest, hyperparameters, loss
 * curve). It is not promoted: evaluate it, then promote it through the gates.
 */
import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import type { ModelRef } from '@faceprint/contracts/common';
import { ModelTask, type JobSpec } from '@faceprint/contracts/trainer';
import { readLabelledImages } from '@faceprint/evaluation';
import { chooseFace, FacePipeline } from '@faceprint/face-pipeline';
import { acquireServices, forEachConcurrently } from '@faceprint/mesh';
import type { ModelRegistry } from '@faceprint/model-registry';
import { decodeEmbedding } from '@faceprint/contracts';
import { validateWithOnnxRuntime } from '../../importers/validate.js';
import type { JobWork } from '../job-runner.js';
import { checkBaseModel, pinnedServiceEnv, type JobRegistry } from '../pinned-model.js';
import { augmentCrop, seededRandom } from './augment.js';
import { appendProjectionHead } from './export-head.js';
import { LOSSES, trainHead, type Loss } from './head-training.js';

/** The job's settings, from its parameters (with the defaults of the design notes). */
export function fineTuneSettings(parameters: Readonly<Record<string, string>>) {
  const number = (key: string, fallback: number) => (parameters[key] === undefined ? fallback : Number(parameters[key]));
  return {
    loss: (parameters['loss'] ?? 'arcface') as Loss,
    epochs: number('epochs', 20),
    learningRate: number('learning_rate', 0.05),
    warmupEpochs: number('warmup_epochs', 2),
    augmentations: number('augmentations', 2),
    identitiesPerBatch: number('identities_per_batch', 64),
    samplesPerIdentity: number('samples_per_identity', 4),
    seed: number('seed', 1),
    face: parameters['face'] === 'largest' ? ('largest' as const) : ('central' as const),
  };
}

/** Checks a fine-tuning spec before it is queued. */
export async function checkFineTuneSpec(spec: JobSpec, registry: ModelRegistry): Promise<string[]> {
  const problems: string[] = [];
  const manifest = await checkBaseModel(spec, registry, problems);
  if (manifest && manifest.task !== ModelTask.EMBEDDER) problems.push(`base_model: ${spec.baseModel!.name} is not an embedding model`);
  if (!(await stat(spec.dataset).catch(() => undefined))) problems.push(`dataset: ${spec.dataset ? `"${spec.dataset}" does not exist` : 'is required: a folder per identity, or an identities .tsv'}`);
  const s = fineTuneSettings(spec.parameters);
  if (!LOSSES.includes(s.loss)) problems.push(`parameters.loss: must be one of ${LOSSES.join(', ')}`);
  for (const [key, value, ok] of [
    ['epochs', s.epochs, Number.isInteger(s.epochs) && s.epochs >= 1 && s.epochs <= 1000],
    ['learning_rate', s.learningRate, s.learningRate > 0 && s.learningRate < 10],
    ['warmup_epochs', s.warmupEpochs, s.warmupEpochs >= 0],
    ['augmentations', s.augmentations, Number.isInteger(s.augmentations) && s.augmentations >= 0 && s.augmentations <= 16],
  ] as const) {
    if (!ok) problems.push(`parameters.${key}: ${String(value)} is out of range`);
  }
  return problems;
}

/** The fine-tuning job's work, over the registry. */
export function fineTuneJob(where: JobRegistry): JobWork {
  const { registry } = where;
  return async (spec, { signal, progress }): Promise<ModelRef | undefined> => {
    const base = spec.baseModel!;
    const settings = fineTuneSettings(spec.parameters);
    const random = seededRandom(settings.seed);
    const images = await readLabelledImages(spec.dataset, spec.parameters['root'] || undefined);
    const identities = [...new Set(images.map((i) => i.identity))].sort();
    const labelOf = new Map(identities.map((identity, i) => [identity, i]));
    const views = 1 + settings.augmentations;
    progress({ step: 0n, totalSteps: BigInt(images.length), message: `embedding ${images.length} images of ${identities.length} identities (${views} views each) with ${base.name} v${base.version}` });

    // 1. Frozen backbone: every aligned crop and its augmented copies through the pinned embedder.
    const services = await acquireServices(['detector', 'aligner', 'embedder'], undefined, pinnedServiceEnv(where, base));
    const pipeline = new FacePipeline(services.addresses as { detector: string; aligner: string; embedder: string });
    const rows: { label: number; vectors: Float32Array[] }[] = [];
    const digest: string[] = [];
    let done = 0;
    let dim = 0;
    try {
      await forEachConcurrently(images, 4, async ({ path, identity }) => {
        if (signal.aborted) return;
        const bytes = await readFile(path);
        digest.push(`${identity}\t${createHash('sha256').update(bytes).digest('hex')}`);
        const detected = await pipeline.detector.detect({ image: { content: bytes } });
        const face = chooseFace(detected.faces, settings.face, detected.image!);
        if (face) {
          const model = await pipeline.embedderModel();
          const aligned = await pipeline.aligner.align({ image: { content: bytes }, faces: [{ five: face.landmarks }], target: { case: 'model', value: { name: model.name, version: model.version } } });
          const crop = aligned.faces[0]!.face!;
          const crops = [crop, ...Array.from({ length: settings.augmentations }, () => ({ ...crop, pixels: augmentCrop(crop.pixels, crop.width, crop.height, random) }))];
          const embedded = await pipeline.embedder.embed({ faces: crops });
          dim = embedded.embeddings[0]!.dim;
          rows.push({ label: labelOf.get(identity)!, vectors: embedded.embeddings.map((e) => decodeEmbedding(e.vector, e.dim)) });
        }
        done++;
        if (done % 50 === 0 || done === images.length) progress({ step: BigInt(done), message: `embedded ${done}/${images.length} images` });
      });
    } finally {
      pipeline.close();
      await services.stop();
    }
    if (signal.aborted) return undefined;
    if (rows.length === 0) throw new Error('no face was found in any training image');

    // 2. The head.
    const count = rows.length * views;
    const embeddings = new Float32Array(count * dim);
    const labels = new Int32Array(count);
    rows.forEach((row, r) => row.vectors.forEach((vector, v) => {
      embeddings.set(vector, (r * views + v) * dim);
      labels[r * views + v] = row.label;
    }));
    const losses: number[] = [];
    const { weights } = await trainHead(embeddings, labels, dim, {
      ...settings,
      random,
      signal,
      onEpoch: (epoch, loss) => {
        losses.push(loss);
        progress({ epoch, loss, totalSteps: BigInt(settings.epochs), step: BigInt(epoch), message: `epoch ${epoch}/${settings.epochs}: ${settings.loss} loss ${loss.toFixed(4)}` });
      },
    });
    if (signal.aborted) return undefined;

    // 3. One graph, checked in ONNX Runtime, published with its lineage (not promoted).
    const parent = await registry.loadModel(base.name, base.version);
    const model = appendProjectionHead(parent.bytes, weights, dim);
    const inputShape = parent.manifest.inputs[0]!.shape.map((d) => (Number(d) > 0 ? Number(d) : 1));
    await validateWithOnnxRuntime(`${base.name} (fine-tuned)`, model, inputShape, parent.manifest.outputs);
    const hyperparameters = { ...Object.fromEntries(Object.entries(settings).map(([k, v]) => [k, String(v)])), images: String(images.length), faces: String(rows.length), identities: String(identities.length) };
    const { manifest } = await registry.publish({
      name: base.name,
      model,
      manifest: {
        task: parent.manifest.task,
        source: parent.manifest.source,
        license: parent.manifest.license,
        inputs: parent.manifest.inputs,
        outputs: parent.manifest.outputs,
        alignment: parent.manifest.alignment,
        embeddingDim: parent.manifest.embeddingDim,
        format: parent.manifest.format,
        description: `${base.name} v${base.version} with a projection head fine-tuned (${settings.loss}, ${settings.epochs} epochs) on ${identities.length} identities. Uncalibrated: calibrate before the matcher can decide with it.`,
        lineage: {
          parent: parent.manifest.model,
          steps: [...(parent.manifest.lineage?.steps ?? []), `fine-tune:${settings.loss}`],
          datasetDigest: createHash('sha256').update(digest.sort().join('\n')).digest('hex'),
          hyperparameters,
        },
        metrics: Object.fromEntries(losses.map((loss, i) => [`train/loss_epoch_${String(i + 1).padStart(3, '0')}`, loss])),
      },
    });
    progress({ message: `published ${base.name} v${manifest.model!.version} (not promoted): final loss ${losses.at(-1)?.toFixed(4)}` });
    return manifest.model;
  };
}
