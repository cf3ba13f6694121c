/**
 * The quantisation job: an FP32 embedding model to a QDQ INT8 version (qdq-graph.ts), calibrated
 * on real face crops, then checked against its parent in the same run on held-out crops: mean
 * cosine between the two models' embeddings, verification accuracy of each on pairs (a pairs file,
 * or pairs drawn from the held-out labelled images), file size and speed. The new version is
 * published either way (unpromoted) with the figures and `quantization/passed` in its manifest;
 * the promotion gates refuse it unless it passed.
 *
 * Crops come from the detector and aligner services (aligned to the base model's template); the
 * two models run in this process, on the same tensors, so that the comparison is like for like.
 */
import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';
import { AlignerService } from '@faceprint/contracts/aligner';
import type { ModelRef } from '@faceprint/contracts/common';
import { DetectorService } from '@faceprint/contracts/detector';
import { cosine } from '@faceprint/contracts';
import { ModelTask, type JobSpec } from '@faceprint/contracts/trainer';
import { readLabelledImages, readPairs, scorePairs, seededRandom, verificationMetrics, type LabelledImage, type Pair, type Random } from '@faceprint/evaluation';
import { chooseFace, normalise } from '@faceprint/face-pipeline';
import { acquireServices, forEachConcurrently } from '@faceprint/mesh';
import type { ModelRegistry } from '@faceprint/model-registry';
import { imageInputOf, type ImageInput } from '@faceprint/onnx';
import { createClient } from '@faceprint/service-kit';
import * as ort from 'onnxruntime-node';
import { validateWithOnnxRuntime } from '../../importers/validate.js';
import type { JobWork } from '../job-runner.js';
import { checkBaseModel, inheritedManifest, pinnedServiceEnv, type JobRegistry } from '../pinned-model.js';
import { measureActivationRanges, type InputBatch } from './activation-ranges.js';
import { calibrationModel, quantiseToQdq } from './qdq-graph.js';

/** The job's settings, from its parameters (defaults: the gate of the design notes). */
export function quantizeSettings(parameters: Readonly<Record<string, string>>) {
  const number = (key: string, fallback: number) => (parameters[key] === undefined ? fallback : Number(parameters[key]));
  return {
    calibrationImages: number('calibration_images', 256),
    evaluationImages: number('evaluation_images', 1000),
    minCosine: number('min_cosine', 0.99),
    maxAccuracyDrop: number('max_accuracy_drop', 0.003),
    seed: number('seed', 1),
    pairs: parameters['pairs'] || undefined,
    root: parameters['root'] || undefined,
    face: parameters['face'] === 'largest' ? ('largest' as const) : ('central' as const),
  };
}

/** Checks a quantisation spec before it is queued. */
export async function checkQuantizeSpec(spec: JobSpec, registry: ModelRegistry): Promise<string[]> {
  const problems: string[] = [];
  const manifest = await checkBaseModel(spec, registry, problems);
  if (manifest && manifest.task !== ModelTask.EMBEDDER) problems.push(`base_model: ${spec.baseModel!.name} is not an embedding model`);
  if (manifest?.lineage?.steps.some((s) => s.startsWith('quantize:'))) problems.push(`base_model: ${spec.baseModel!.name} v${spec.baseModel!.version} is already quantised`);
  if (!(await stat(spec.dataset).catch(() => undefined))) problems.push(`dataset: ${spec.dataset ? `"${spec.dataset}" does not exist` : 'is required: calibration images, a folder per identity or an identities .tsv'}`);
  const s = quantizeSettings(spec.parameters);
  if (s.pairs && !(await stat(s.pairs).catch(() => undefined))?.isFile()) problems.push(`parameters.pairs: "${s.pairs}" is not a file`);
  for (const [key, value, ok] of [
    ['calibration_images', s.calibrationImages, Number.isInteger(s.calibrationImages) && s.calibrationImages >= 1 && s.calibrationImages <= 100_000],
    ['evaluation_images', s.evaluationImages, Number.isInteger(s.evaluationImages) && s.evaluationImages >= 2],
    ['min_cosine', s.minCosine, s.minCosine > 0 && s.minCosine <= 1],
    ['max_accuracy_drop', s.maxAccuracyDrop, s.maxAccuracyDrop >= 0 && s.maxAccuracyDrop <= 1],
  ] as const) {
    if (!ok) problems.push(`parameters.${key}: ${String(value)} is out of range`);
  }
  return problems;
}

/** A seeded shuffle, so that the calibration/evaluation split repeats. */
function shuffled<T>(items: readonly T[], random: Random): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

/**
 * Verification pairs among held-out labelled images: every same-identity pair (at most 3,000) and
 * as many different-identity pairs drawn at random, spread over 10 folds.
 */
export function pairsAmong(images: readonly LabelledImage[], random: Random): Pair[] {
  const same: [string, string][] = [];
  for (let i = 0; i < images.length && same.length < 3000; i++) {
    for (let j = i + 1; j < images.length && same.length < 3000; j++) if (images[i]!.identity === images[j]!.identity) same.push([images[i]!.path, images[j]!.path]);
  }
  const different: [string, string][] = [];
  const identities = new Set(images.map((i) => i.identity));
  for (let tries = 0; identities.size > 1 && different.length < same.length && tries < same.length * 100; tries++) {
    const a = images[Math.floor(random() * images.length)]!;
    const b = images[Math.floor(random() * images.length)]!;
    if (a.identity !== b.identity) different.push([a.path, b.path]);
  }
  return [...same.map(([a, b], i) => ({ a, b, same: true, fold: i % 10 })), ...different.map(([a, b], i) => ({ a, b, same: false, fold: i % 10 }))];
}

/** Each image's aligned crop of its chosen face (undefined where none was found), through the detector and aligner. */
async function alignedCrops(paths: readonly string[], model: ModelRef, face: 'largest' | 'central', where: JobRegistry, signal: AbortSignal, onProgress: (done: number) => void) {
  const services = await acquireServices(['detector', 'aligner'], undefined, pinnedServiceEnv(where, model));
  const detector = createClient(DetectorService, services.addresses.detector!);
  const aligner = createClient(AlignerService, services.addresses.aligner!);
  const crops = new Map<string, Uint8Array | undefined>();
  try {
    await forEachConcurrently(paths, 4, async (path) => {
      if (signal.aborted) return;
      const image = { content: await readFile(path) };
      const detected = await detector.detect({ image });
      const chosen = chooseFace(detected.faces, face, detected.image!);
      crops.set(path, chosen ? (await aligner.align({ image, faces: [{ five: chosen.landmarks }], target: { case: 'model', value: { name: model.name, version: model.version } } })).faces[0]!.face!.pixels : undefined);
      onProgress(crops.size);
    });
  } finally {
    detector.close();
    aligner.close();
    await services.stop();
  }
  return crops;
}

/** Batches of preprocessed crops. */
function* batchesOf(crops: readonly Uint8Array[], input: ImageInput, size = 16): Generator<InputBatch & { count: number }> {
  for (let i = 0; i < crops.length; i += size) {
    const batch = crops.slice(i, i + size);
    yield { tensor: input.toTensor(batch.map((pixels) => ({ pixels }))), dims: [batch.length, 3, input.height, input.width], count: batch.length };
  }
}

/** L2-normalised rows of a [count, dim] output. */
function normalisedRows(values: Float32Array, count: number): Float32Array[] {
  const dim = values.length / count;
  return Array.from({ length: count }, (_, n) => normalise(values.subarray(n * dim, (n + 1) * dim)));
}

/**
 * Both models on the same crops, batch by batch in turn (so that neither gets a warmer machine):
 * the embeddings of each and the time each spent in inference.
 */
async function embedWithBoth(models: { fp32: Uint8Array; int8: Uint8Array }, input: ImageInput, output: string, crops: readonly Uint8Array[], signal: AbortSignal) {
  const options: ort.InferenceSession.SessionOptions = { graphOptimizationLevel: 'all' };
  const sessions = { fp32: await ort.InferenceSession.create(models.fp32, options), int8: await ort.InferenceSession.create(models.int8, options) };
  const embeddings = { fp32: [] as Float32Array[], int8: [] as Float32Array[] };
  const ms = { fp32: 0, int8: 0 };
  try {
    const warmUp = [...batchesOf(crops.slice(0, 16), input)][0]!;
    for (const session of Object.values(sessions)) await session.run({ [input.name]: new ort.Tensor('float32', warmUp.tensor, [...warmUp.dims]) });
    for (const batch of batchesOf(crops, input)) {
      if (signal.aborted) break;
      for (const which of ['fp32', 'int8'] as const) {
        const started = performance.now();
        const result = await sessions[which].run({ [input.name]: new ort.Tensor('float32', batch.tensor, [...batch.dims]) });
        ms[which] += performance.now() - started;
        embeddings[which].push(...normalisedRows(result[output]!.data as Float32Array, batch.count));
      }
    }
  } finally {
    await Promise.all(Object.values(sessions).map((s) => s.release()));
  }
  return { embeddings, ms };
}

/** The quantisation job's work, over the registry. */
export function quantizeJob(where: JobRegistry): JobWork {
  const { registry } = where;
  return async (spec, { signal, progress }): Promise<ModelRef | undefined> => {
    const base = spec.baseModel!;
    const settings = quantizeSettings(spec.parameters);
    const random = seededRandom(settings.seed);
    const parent = await registry.loadModel(base.name, base.version);
    const input = imageInputOf(parent.manifest);
    const output = parent.manifest.outputs[0]!.name;

    // 1. Which images calibrate and which judge: a seeded split of the labelled images; a pairs file judges instead when given.
    const labelled = shuffled(await readLabelledImages(spec.dataset, settings.root), random);
    const calibration = labelled.slice(0, settings.calibrationImages);
    const pairs = settings.pairs
      ? await readPairs(settings.pairs, settings.root)
      : pairsAmong(labelled.slice(settings.calibrationImages, settings.calibrationImages + settings.evaluationImages), random);
    if (pairs.length === 0) throw new Error(`no evaluation pairs: the dataset has ${labelled.length} images, all used for calibration (${settings.calibrationImages}); give more images, fewer calibration_images, or a pairs file`);
    const evaluation = [...new Set(pairs.flatMap((p) => [p.a, p.b]))];
    const paths = [...new Set([...calibration.map((i) => i.path), ...evaluation])];
    progress({ step: 0n, totalSteps: BigInt(paths.length), message: `aligning ${paths.length} images (${calibration.length} to calibrate, ${evaluation.length} in ${pairs.length} pairs to judge)` });
    const crops = await alignedCrops(paths, base, settings.face, where, signal, (done) => {
      if (done % 100 === 0 || done === paths.length) progress({ step: BigInt(done), message: `aligned ${done}/${paths.length} images` });
    });
    if (signal.aborted) return undefined;
    const calibrationCrops = calibration.flatMap((i) => crops.get(i.path) ?? []);
    if (calibrationCrops.length === 0) throw new Error('no face was found in any calibration image');

    // 2. Ranges on real crops, then the QDQ graph, checked in ONNX Runtime.
    progress({ message: `calibrating on ${calibrationCrops.length} crops` });
    const calibrating = calibrationModel(parent.bytes);
    const ranges = await measureActivationRanges(calibrating.model, input.name, calibrating.activations, batchesOf(calibrationCrops, input), signal);
    if (signal.aborted) return undefined;
    const { model, summary } = quantiseToQdq(parent.bytes, ranges);
    const inputShape = parent.manifest.inputs[0]!.shape.map((d) => (Number(d) > 0 ? Number(d) : 1));
    await validateWithOnnxRuntime(`${base.name} (INT8)`, model, inputShape, parent.manifest.outputs);

    // 3. Parity with the parent on the evaluation crops, in the same run.
    const judged = evaluation.filter((path) => crops.get(path));
    progress({ message: `comparing INT8 with FP32 on ${judged.length} crops` });
    const both = await embedWithBoth({ fp32: parent.bytes, int8: model }, input, output, judged.map((path) => crops.get(path)!), signal);
    if (signal.aborted) return undefined;
    const cosines = both.embeddings.fp32.map((v, i) => cosine(v, both.embeddings.int8[i]!));
    const cosineMean = cosines.reduce((a, b) => a + b, 0) / cosines.length;
    const byPath = (which: 'fp32' | 'int8') => new Map<string, Float32Array | undefined>(judged.map((path, i) => [path, both.embeddings[which][i]]));
    const fp32 = verificationMetrics(scorePairs(pairs, byPath('fp32')));
    const int8 = verificationMetrics(scorePairs(pairs, byPath('int8')));
    const accuracyDrop = fp32.accuracy - int8.accuracy;
    const passed = cosineMean >= settings.minCosine && accuracyDrop <= settings.maxAccuracyDrop;
    const figures = {
      'quantization/cosine_mean': cosineMean,
      'quantization/cosine_min': Math.min(...cosines),
      'quantization/accuracy_fp32': fp32.accuracy,
      'quantization/accuracy_int8': int8.accuracy,
      'quantization/accuracy_drop': accuracyDrop,
      'quantization/tar_at_far_1e-3_fp32': fp32.tar_at_far['1e-3'],
      'quantization/tar_at_far_1e-3_int8': int8.tar_at_far['1e-3'],
      'quantization/pairs': pairs.length,
      'quantization/calibration_crops': calibrationCrops.length,
      'quantization/compared_crops': judged.length,
      'quantization/size_bytes': model.byteLength,
      'quantization/size_ratio': model.byteLength / parent.bytes.byteLength,
      'quantization/fp32_ms_per_crop': both.ms.fp32 / judged.length,
      'quantization/int8_ms_per_crop': both.ms.int8 / judged.length,
      'quantization/speedup': both.ms.fp32 / both.ms.int8,
      'quantization/min_cosine': settings.minCosine,
      'quantization/max_accuracy_drop': settings.maxAccuracyDrop,
      'quantization/passed': passed ? 1 : 0,
    };

    // 4. Published either way, unpromoted, with its figures: the promotion gate reads `passed`.
    const verdict = `${passed ? 'passed' : 'FAILED'}: cosine ${cosineMean.toFixed(4)} (>= ${settings.minCosine}), accuracy drop ${(100 * accuracyDrop).toFixed(2)} points (<= ${(100 * settings.maxAccuracyDrop).toFixed(2)})`;
    const { manifest, created } = await registry.publish({
      name: base.name,
      model,
      manifest: {
        ...inheritedManifest(parent.manifest),
        description: `${base.name} v${base.version} quantised to INT8 (QDQ, per-channel weights, MinMax calibration on ${calibrationCrops.length} face crops); parity ${verdict}. Uncalibrated: calibrate before the matcher can decide with it.`,
        lineage: {
          parent: parent.manifest.model,
          steps: [...(parent.manifest.lineage?.steps ?? []), 'quantize:int8-qdq'],
          datasetDigest: createHash('sha256').update(calibration.map((i) => i.path).sort().join('\n')).digest('hex'),
          hyperparameters: {
            scheme: 'QDQ: activations uint8 asymmetric (MinMax), weights int8 symmetric per output channel, biases int32',
            activations: String(summary.activations),
            weights: String(summary.weights),
            folded_relus: String(summary.foldedRelus),
            min_cosine: String(settings.minCosine),
            max_accuracy_drop: String(settings.maxAccuracyDrop),
            seed: String(settings.seed),
            evaluation: settings.pairs ?? 'pairs among held-out images',
          },
        },
        metrics: figures,
      },
    });
    // The same calibration gives the same bytes: the version exists already, and the latest measurement is what its gate reads.
    if (!created) await registry.recordCalibration(base.name, manifest.model!.version, { thresholds: manifest.thresholds, metrics: figures });
    progress({ metrics: figures, message: `${created ? 'published' : 're-measured the identical'} ${base.name} v${manifest.model!.version} (INT8, not promoted); ${verdict}; ${(100 * figures['quantization/size_ratio']).toFixed(0)}% of the size, ${figures['quantization/speedup'].toFixed(2)}x the speed` });
    return manifest.model;
  };
}
