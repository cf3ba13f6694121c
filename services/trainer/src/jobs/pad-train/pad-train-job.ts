/**
 * The pad-train job: a presentation-attack detector trained on labelled frames the operator has
 * the rights to. Each frame's largest face goes through the detector and aligner to the PAD crop
 * template; the colour-texture features are computed by the model's own graph; a logistic head is
 * fitted on the `train` frames; the threshold of each target BPCER is chosen on the `devel` frames,
 * where APCER (per attack type, per frame and per video) is measured. The result is published as
 * a new, unpromoted version with its licence, provenance and operating points in the manifest.
 *
 * faceprint ships no PAD weights: the only presentation-attack data here (Replay-Attack) may be
 * used for research, not shipped, so each deployment trains its own (docs/liveness.md).
 */
import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import type { AlignedFace } from '@faceprint/contracts/common';
import type { JobSpec } from '@faceprint/contracts/trainer';
import { alignLargestFaces, byVideo, padEqualErrorRate, padRatesAt, readPadFrames, thresholdForBpcer, type PadFrame } from '@faceprint/evaluation';
import { acquireServices } from '@faceprint/mesh';
import type { ModelRegistry } from '@faceprint/model-registry';
import * as ort from 'onnxruntime-node';
import type { JobWork } from '../job-runner.js';
import type { JobRegistry } from '../pinned-model.js';
import { buildColourTextureGraph, colourTextureInput, colourTextureManifestFields, FEATURE_LENGTH, PAD_CROP_SIZE, PAD_FACE_SCALE, PAD_FEATURES, PAD_INPUT, PAD_SCORE } from './colour-texture-graph.js';
import { DEFAULT_HEAD_OPTIONS, trainLogisticHead } from './logistic-head.js';

/** The registry name a PAD model is published under unless the `name` parameter says otherwise (the liveness service's default). */
export const DEFAULT_PAD_MODEL_NAME = 'colour-texture-pad';

/** The bona fide rejection rates thresholds are chosen for unless `target_bpcers` names others. */
export const DEFAULT_TARGET_BPCERS = [0.01, 0.05];

const PRODUCER = { producerName: 'faceprint-trainer', producerVersion: '0.1.0' };

const targetBpcersOf = (spec: JobSpec) => (spec.parameters['target_bpcers'] ? spec.parameters['target_bpcers'].split(',').map((t) => Number(t.trim())) : DEFAULT_TARGET_BPCERS);
const l2Of = (spec: JobSpec) => (spec.parameters['l2'] ? Number(spec.parameters['l2']) : DEFAULT_HEAD_OPTIONS.l2);

/** Checks a pad-train spec before it is queued. */
export async function checkPadTrainSpec(spec: JobSpec): Promise<string[]> {
  const problems: string[] = [];
  if (!(await stat(spec.dataset).catch(() => undefined))) problems.push(`dataset: ${spec.dataset ? `"${spec.dataset}" does not exist` : 'is required: a frames .tsv (file, label, split[, video, attack_type])'}`);
  if (!spec.parameters['license']) problems.push('parameters.license: is required: the licence under which the training frames may be used (it becomes the model\'s), e.g. LicenseRef-own-capture-data');
  if (targetBpcersOf(spec).some((t) => !(t > 0 && t <= 0.5))) problems.push(`parameters.target_bpcers: rates in (0, 0.5], comma-separated, got "${spec.parameters['target_bpcers']}"`);
  if (!(l2Of(spec) >= 0)) problems.push(`parameters.l2: a penalty of 0 or more, got "${spec.parameters['l2']}"`);
  const name = spec.parameters['name'];
  if (name !== undefined && !/^[a-z0-9][a-z0-9._-]{0,63}$/.test(name)) problems.push(`parameters.name: a registry model name, got "${name}"`);
  return problems;
}

/** Runs `model` over the crops in batches and returns one row of `output` per crop. */
async function runInBatches(model: Uint8Array, crops: readonly AlignedFace[], output: string, width: number): Promise<Float32Array[]> {
  const input = colourTextureInput();
  const session = await ort.InferenceSession.create(model);
  try {
    const rows: Float32Array[] = [];
    for (let start = 0; start < crops.length; start += 64) {
      const batch = crops.slice(start, start + 64);
      const result = await session.run({ [PAD_INPUT]: new ort.Tensor('float32', input.toTensor(batch), [batch.length, 3, PAD_CROP_SIZE, PAD_CROP_SIZE]) }, [output]);
      const values = result[output]!.data as Float32Array;
      for (let n = 0; n < batch.length; n++) rows.push(values.slice(n * width, (n + 1) * width));
    }
    return rows;
  } finally {
    await session.release();
  }
}

/** The pad-train job's work, over the registry. */
export function padTrainJob(where: JobRegistry): JobWork {
  return async (spec, { jobId, signal, progress }) => {
    const registry: ModelRegistry = where.registry;
    const frames = await readPadFrames(spec.dataset, spec.parameters['root'] || undefined);
    const train = frames.filter((f) => f.split === 'train');
    const devel = frames.filter((f) => f.split === 'devel');
    if (train.length === 0 || devel.length === 0) throw new Error(`${spec.dataset}: a split column with "train" frames (to fit) and "devel" frames (to choose thresholds) is needed; found ${train.length} and ${devel.length}`);

    // 1. Crops of the frames, as the liveness service will see them in the mesh.
    const { alignment: template } = colourTextureManifestFields();
    progress({ step: 0n, totalSteps: BigInt(frames.length), message: `aligning ${frames.length} frames to the ${PAD_CROP_SIZE} px PAD template` });
    const services = await acquireServices(['detector', 'aligner'], undefined, { FACEPRINT_MODEL_REGISTRY: where.root, ...(where.mirrorDir ? { FACEPRINT_MODEL_MIRROR: where.mirrorDir } : {}) });
    let crops: (AlignedFace | undefined)[];
    try {
      const addresses = { detector: services.addresses.detector!, aligner: services.addresses.aligner! };
      crops = await alignLargestFaces(addresses, frames.map((f) => f.path), { template }, { concurrency: 4, signal, onProgress: (done) => done % 100 === 0 && progress({ step: BigInt(done) }) });
    } finally {
      await services.stop();
    }
    if (signal.aborted) return undefined;
    const cropOf = new Map(frames.map((f, i) => [f, crops[i]]));
    const withFace = (split: readonly PadFrame[]) => split.map((f) => ({ frame: f, crop: cropOf.get(f) })).filter((x): x is { frame: PadFrame; crop: AlignedFace } => x.crop !== undefined);
    const [trainFaces, develFaces] = [withFace(train), withFace(devel)];

    // 2. The head, fitted on the features the graph computes.
    progress({ message: `fitting the head on ${trainFaces.length} train frames` });
    const features = await runInBatches(buildColourTextureGraph(PAD_CROP_SIZE, undefined, PRODUCER), trainFaces.map((x) => x.crop), PAD_FEATURES, FEATURE_LENGTH);
    const l2 = l2Of(spec);
    const head = await trainLogisticHead(features, trainFaces.map((x) => x.frame.bonaFide), FEATURE_LENGTH, { ...DEFAULT_HEAD_OPTIONS, l2 });
    if (signal.aborted) return undefined;

    // 3. Thresholds and rates on devel, scored by the very file that is published.
    const model = buildColourTextureGraph(PAD_CROP_SIZE, head, { ...PRODUCER, docString: 'faceprint colour-texture presentation-attack detector (uniform LBP(8,1) histograms in HSV and YCbCr, logistic head)' });
    const scores = (await runInBatches(model, develFaces.map((x) => x.crop), PAD_SCORE, 1)).map((row) => row[0]!);
    const scored = develFaces.map((x, i) => ({ score: scores[i]!, bonaFide: x.frame.bonaFide, attackType: x.frame.attackType, video: x.frame.video }));
    const videos = byVideo(scored);
    const datasetName = spec.parameters['dataset_name'] || `${basename(dirname(spec.dataset))}/${basename(spec.dataset)}`;
    const operatingPoints = targetBpcersOf(spec).map((targetBpcer) => {
      const point = thresholdForBpcer(scored, targetBpcer);
      return { targetBpcer, threshold: point.threshold, apcer: point.apcer, bpcer: point.bpcer, attackFrames: BigInt(point.attacks), bonaFideFrames: BigInt(point.bonaFide), apcerByAttackType: point.apcerByAttackType, dataset: `${datasetName} devel` };
    });
    const metrics: Record<string, number> = {
      'pad/devel_frame_eer': padEqualErrorRate(scored),
      'pad/devel_video_eer': padEqualErrorRate(videos),
      'pad/train_frames': trainFaces.length,
      'pad/devel_frames': develFaces.length,
      'pad/frames_without_face': frames.length - crops.filter(Boolean).length,
    };
    for (const point of operatingPoints) {
      const perVideo = padRatesAt(videos, point.threshold);
      metrics[`pad/devel_frame_apcer_at_bpcer_${point.targetBpcer}`] = point.apcer;
      metrics[`pad/devel_video_apcer_at_bpcer_${point.targetBpcer}`] = perVideo.apcer;
      metrics[`pad/devel_video_bpcer_at_bpcer_${point.targetBpcer}`] = perVideo.bpcer;
    }

    // 4. Published, unpromoted, with where its weights came from.
    const listing = await readFile(spec.dataset);
    const { manifest, created } = await registry.publish({
      name: spec.parameters['name'] || DEFAULT_PAD_MODEL_NAME,
      model,
      manifest: {
        ...colourTextureManifestFields(),
        source: { kind: 'trained', locator: `faceprint trainer pad-train job ${jobId}` },
        license: spec.parameters['license']!,
        metrics,
        padOperatingPoints: operatingPoints,
        description: `Colour-texture presentation-attack detector: the probability that an aligned ${PAD_CROP_SIZE} px face crop is bona fide. Trained on the train frames of ${datasetName} (${trainFaces.length}), thresholds chosen on its devel frames (${develFaces.length}); it knows only the attacks of that data.`,
        lineage: {
          steps: ['colour-texture features: uniform LBP(8,1) histograms of H, S, V, Y, Cb, Cr (square-rooted)', `logistic head fitted on ${datasetName} train`, `thresholds chosen on ${datasetName} devel`],
          datasetDigest: createHash('sha256').update(listing).digest('hex'),
          hyperparameters: { crop_size: String(PAD_CROP_SIZE), face_scale: String(PAD_FACE_SCALE), l2: String(l2), steps: String(DEFAULT_HEAD_OPTIONS.steps), learning_rate: String(DEFAULT_HEAD_OPTIONS.learningRate) },
        },
      },
    });
    const at5 = operatingPoints.find((p) => p.targetBpcer === 0.05) ?? operatingPoints[0]!;
    progress({ metrics, message: `${created ? 'published' : 'already held as'} ${manifest.model!.name} v${manifest.model!.version} (not promoted); devel APCER ${(100 * at5.apcer).toFixed(2)}% per frame, ${(100 * metrics[`pad/devel_video_apcer_at_bpcer_${at5.targetBpcer}`]!).toFixed(2)}% per video at BPCER ${at5.targetBpcer}` });
    return manifest.model;
  };
}
