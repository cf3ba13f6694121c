/**
 * The fine-tuning job: labelled face images (a folder per identity, or an identities TSV) through
 * the detector, the aligner and the base embedder pinned to its version (started for the job);
 * each aligned crop embedded as it is and in augmented copies; with `gallery_tenant`, also the
 * templates of that tenant's subjects who consented to model improvement (gallery-templates.ts;
 * stored embeddings of the base version, so no augmented copies); a projection head trained on
 * those frozen embeddings (head-training.ts); the head appended to the base graph (export-head.ts)
 * and published as a new version with its lineage (parent, dataset digest, hyperparameters, loss
 * curve). It is not promoted: evaluate it, then promote it through the gates. What it embeds is
 * checkpointed (sample-checkpoint.ts): `resume_from` a cancelled or failed job skips those images.
 */
import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import type { ModelRef } from '@faceprint/contracts/common';
import { ModelTask, type JobSpec } from '@faceprint/contracts/trainer';
import { readLabelledImages, seededRandom } from '@faceprint/evaluation';
import { chooseFace, FacePipeline } from '@faceprint/face-pipeline';
import { acquireServices, forEachConcurrently } from '@faceprint/mesh';
import type { ModelRegistry } from '@faceprint/model-registry';
import { decodeEmbedding } from '@faceprint/contracts';
import { validateWithOnnxRuntime } from '../../importers/validate.js';
import type { JobWork } from '../job-runner.js';
import { checkBaseModel, inheritedManifest, pinnedServiceEnv, type JobRegistry } from '../pinned-model.js';
import { augmentCrop } from './augment.js';
import { appendProjectionHead } from './export-head.js';
import { consentedGalleryTemplates } from './gallery-templates.js';
import { CheckpointWriter, readCheckpoint, removeCheckpoints, type EmbeddedImage } from './sample-checkpoint.js';
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
    galleryTenant: parameters['gallery_tenant'] || undefined,
    resumeFrom: parameters['resume_from'] || undefined,
  };
}

/** Checks a fine-tuning spec before it is queued. */
export async function checkFineTuneSpec(spec: JobSpec, registry: ModelRegistry): Promise<string[]> {
  const problems: string[] = [];
  const manifest = await checkBaseModel(spec, registry, problems);
  if (manifest && manifest.task !== ModelTask.EMBEDDER) problems.push(`base_model: ${spec.baseModel!.name} is not an embedding model`);
  const s = fineTuneSettings(spec.parameters);
  if (spec.dataset ? !(await stat(spec.dataset).catch(() => undefined)) : !s.galleryTenant) {
    problems.push(`dataset: ${spec.dataset ? `"${spec.dataset}" does not exist` : 'is required (a folder per identity, or an identities .tsv) unless parameters.gallery_tenant names a gallery to learn from'}`);
  }
  if (s.galleryTenant !== undefined && !/^[A-Za-z0-9._-]{1,64}$/.test(s.galleryTenant)) problems.push('parameters.gallery_tenant: must be a tenant id');
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
  return async (spec, { jobId, signal, progress }): Promise<ModelRef | undefined> => {
    const base = spec.baseModel!;
    const settings = fineTuneSettings(spec.parameters);
    const random = seededRandom(settings.seed);
    const images = spec.dataset ? await readLabelledImages(spec.dataset, spec.parameters['root'] || undefined) : [];
    const gallery = settings.galleryTenant ? await consentedGalleryTemplates(where.matcherAddress, settings.galleryTenant, base, jobId, signal) : [];
    const identities = [...new Set([...images.map((i) => i.identity), ...gallery.map((t) => `gallery:${t.label}`)])].sort();
    const labelOf = new Map(identities.map((identity, i) => [identity, i]));
    const views = 1 + settings.augmentations;
    const gallerySubjects = new Set(gallery.map((t) => t.label)).size;
    progress({ step: 0n, totalSteps: BigInt(images.length), message: `embedding ${images.length} images (${views} views each) with ${base.name} v${base.version}${settings.galleryTenant ? `, and ${gallery.length} consented templates of ${gallerySubjects} gallery subjects` : ''}: ${identities.length} identities` });

    // 1. Frozen backbone: every aligned crop and its augmented copies through the pinned embedder;
    //    the gallery's templates are such embeddings already.
    const samples: { label: number; vector: Float32Array }[] = gallery.map((t) => ({ label: labelOf.get(`gallery:${t.label}`)!, vector: t.vector }));
    const digest: string[] = [];
    let faces = 0;
    // Images a cancelled or failed job embedded already (the same bytes) are taken from its checkpoint.
    const resumed = settings.resumeFrom ? await readCheckpoint(where.checkpointDir, settings.resumeFrom) : new Map<string, EmbeddedImage>();
    const checkpoint = new CheckpointWriter(where.checkpointDir, jobId);
    const take = (image: EmbeddedImage) => {
      digest.push(`${image.identity}\t${image.sha256}`);
      for (const vector of image.vectors) samples.push({ label: labelOf.get(image.identity)!, vector });
      if (image.vectors.length > 0) faces++;
      checkpoint.add(image);
    };
    let reused = 0;
    if (images.length > 0) {
      const services = await acquireServices(['detector', 'aligner', 'embedder'], undefined, pinnedServiceEnv(where, base));
      const pipeline = new FacePipeline(services.addresses as { detector: string; aligner: string; embedder: string });
      let done = 0;
      try {
        await forEachConcurrently(images, 4, async ({ path, identity }) => {
          if (signal.aborted) return;
          const bytes = await readFile(path);
          const sha256 = createHash('sha256').update(bytes).digest('hex');
          const earlier = resumed.get(path);
          if (earlier && earlier.sha256 === sha256 && earlier.identity === identity) {
            take(earlier);
            reused++;
          } else {
            const detected = await pipeline.detector.detect({ image: { content: bytes } });
            const face = chooseFace(detected.faces, settings.face, detected.image!);
            const vectors: Float32Array[] = [];
            if (face) {
              const model = await pipeline.embedderModel();
              const aligned = await pipeline.aligner.align({ image: { content: bytes }, faces: [{ five: face.landmarks }], target: { case: 'model', value: { name: model.name, version: model.version } } });
              const crop = aligned.faces[0]!.face!;
              const crops = [crop, ...Array.from({ length: settings.augmentations }, () => ({ ...crop, pixels: augmentCrop(crop.pixels, crop.width, crop.height, random) }))];
              const embedded = await pipeline.embedder.embed({ faces: crops });
              vectors.push(...embedded.embeddings.map((e) => decodeEmbedding(e.vector, e.dim)));
            }
            take({ path, identity, sha256, vectors });
          }
          done++;
          if (done % 10 === 0 || done === images.length) progress({ step: BigInt(done), message: `embedded ${done}/${images.length} images${reused ? ` (${reused} from job ${settings.resumeFrom})` : ''}` });
        });
      } finally {
        pipeline.close();
        await services.stop();
        await checkpoint.flushed();
      }
    }
    if (signal.aborted) return undefined;
    if (samples.length === 0) throw new Error(settings.galleryTenant ? `no face was found in any training image and the gallery of "${settings.galleryTenant}" holds no consented template of ${base.name} v${base.version}` : 'no face was found in any training image');
    // The gallery enters the digest by its counts only: no subject, label or vector leaves the job.
    if (settings.galleryTenant) digest.push(`gallery\t${settings.galleryTenant}\t${gallerySubjects}\t${gallery.length}`);

    // 2. The head.
    const dim = samples[0]!.vector.length;
    if (samples.some((sample) => sample.vector.length !== dim)) throw new Error(`the training embeddings differ in dimension (${base.name} v${base.version} gives ${dim})`);
    const embeddings = new Float32Array(samples.length * dim);
    const labels = new Int32Array(samples.length);
    samples.forEach((sample, i) => {
      embeddings.set(sample.vector, i * dim);
      labels[i] = sample.label;
    });
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
    const hyperparameters = {
      ...Object.fromEntries(Object.entries(settings).filter(([, v]) => v !== undefined).map(([k, v]) => [k, String(v)])),
      images: String(images.length),
      faces: String(faces),
      identities: String(identities.length),
      ...(settings.galleryTenant ? { gallery_subjects: String(gallerySubjects), gallery_templates: String(gallery.length) } : {}),
    };
    const { manifest } = await registry.publish({
      name: base.name,
      model,
      manifest: {
        ...inheritedManifest(parent.manifest),
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
    await removeCheckpoints(where.checkpointDir, [jobId, ...(settings.resumeFrom ? [settings.resumeFrom] : [])]);
    progress({ message: `published ${base.name} v${manifest.model!.version} (not promoted): final loss ${losses.at(-1)?.toFixed(4)}${reused ? `; ${reused} of ${images.length} images resumed from job ${settings.resumeFrom}` : ''}` });
    return manifest.model;
  };
}
