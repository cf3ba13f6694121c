/**
 * Importers for the face-api.js nets, whose weights ship in the npm package @vladmandic/face-api
 * (MIT; the recognition weights are dlib's, released to the public domain): the weight manifest
 * is read from node_modules and converted to ONNX.
 */
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { ModelTask } from '@faceprint/contracts/trainer';
import { upperBound } from '@faceprint/evaluation';
import type { BuiltModel, Importer, ShippedCalibration } from '../importer.js';
import { buildFaceLandmark68Net, FACE_LANDMARK_68_INPUT_SIZE } from './face-landmark-68-net.js';
import { buildFaceRecognitionNet, FACE_RECOGNITION_INPUT_SIZE, FACE_RECOGNITION_MEAN_RGB } from './face-recognition-net.js';
import { readWeights } from './weights.js';

/** The npm package that holds the weights. */
export const FACE_API_PACKAGE = '@vladmandic/face-api';

/** dlib's 150x150 chip template (padding 0.25) for the five landmarks, in ArcFace order. */
export const DLIB_150_TEMPLATE = [
  [47.549, 46.599],
  [100.476, 46.599],
  [74.013, 76.563],
  [50.415, 103.023],
  [97.61, 103.023],
] as const;

/** An installed npm package: its directory and version. Throws, naming it, when it is not installed. */
export async function locatePackage(name: string): Promise<{ directory: string; version: string }> {
  const require = createRequire(import.meta.url);
  let packageJson: string;
  try {
    packageJson = require.resolve(`${name}/package.json`);
  } catch (error) {
    throw new Error(`the npm package ${name} is not installed (run npm ci)`, { cause: error });
  }
  const { version } = JSON.parse(await readFile(packageJson, 'utf8')) as { version: string };
  return { directory: dirname(packageJson), version };
}

/** The installed face-api package. */
export const locateFaceApiPackage = () => locatePackage(FACE_API_PACKAGE);

const PRODUCER_VERSION = '0.1.0';
const CONVERSION_STEP = 'TF.js layers (NHWC, HWIO) -> ONNX opset 17 (NCHW, OIHW) by faceprint-trainer';
const normalisedRgbInput = (size: number) => ({
  name: 'image',
  shape: [-1n, 3n, BigInt(size), BigInt(size)],
  dtype: 'float32',
  layout: 'NCHW',
  channelOrder: 'RGB',
  mean: [...FACE_RECOGNITION_MEAN_RGB],
  std: [255, 255, 255],
});

/** What differs between the face-api.js nets; the rest of an import is the same for all. */
interface FaceApiNetSpec {
  readonly name: string;
  readonly summary: string;
  /** The weight manifest inside the package. */
  readonly weightsPath: string;
  readonly inputSize: number;
  readonly convert: (weights: Awaited<ReturnType<typeof readWeights>>, producerVersion: string) => Uint8Array;
  /** Task, description, outputs, alignment, lineage and other manifest fields of this net. */
  readonly manifest: Omit<Exclude<BuiltModel['manifest'], { $typeName: string }>, 'source' | 'license' | 'inputs'>;
  /** A calibration measured on the converted file (embedders). */
  readonly calibration?: ShippedCalibration;
}

/** An importer that converts one face-api.js net from the installed npm package. */
function faceApiImporter(spec: FaceApiNetSpec): Importer {
  return {
    name: spec.name,
    summary: spec.summary,
    ...(spec.calibration ? { calibration: spec.calibration } : {}),
    async build() {
      const { directory, version } = await locateFaceApiPackage();
      const size = spec.inputSize;
      return {
        name: spec.name,
        model: spec.convert(await readWeights(join(directory, spec.weightsPath)), PRODUCER_VERSION),
        probeShape: [2, 3, size, size],
        manifest: {
          ...spec.manifest,
          source: { kind: 'npm', locator: `${FACE_API_PACKAGE}@${version}`, path: spec.weightsPath },
          license: 'MIT',
          inputs: [normalisedRgbInput(size)],
        },
      };
    },
  };
}

/**
 * FaceRecognitionNet's thresholds as measured on 2026-12-07 by
 * `npx faceprint eval calibrate --identities ../shared/datasets/lfw_gray/splits/ident_dev_view1_identities.tsv
 * --root ../shared/datasets/lfw_gray --face central` (the default services: YuNet-n at 640 px, the
 * dlib 150 px template, flip averaging in the graph): 4,921 grayscale LFW images of 1,357
 * identities, every pair: 10,470 genuine and 12,095,190 impostor pairs; 0 images without a face.
 * Recorded for this exact converted file; re-run the command with `--record` after any change to
 * the pipeline.
 */
const IMPOSTOR_PAIRS = 12_095_190;
const shipped = (far: number, threshold: number, tar: number, falseMatches: number, perComparison = false) => ({
  far,
  threshold,
  tar,
  dataset: 'lfw-gray ident_dev_view1 (every pair)',
  impostorPairs: BigInt(IMPOSTOR_PAIRS),
  falseMatches: BigInt(falseMatches),
  farUpper95: upperBound(falseMatches, IMPOSTOR_PAIRS),
  perComparison,
});
/**
 * The per-comparison rates of the same run, far / k for k = 2..10 (a verify over the best of k
 * templates holds each to one; fused-threshold.ts): [far, k, threshold, TAR, false matches].
 */
const PER_COMPARISON: readonly (readonly [number, number, number, number, number])[] = [
  [1e-3, 2, 0.9371254444122314, 0.8677172874880611, 6_047],
  [1e-3, 3, 0.9392558932304382, 0.8446991404011461, 4_031],
  [1e-3, 4, 0.9407185912132263, 0.8265520534861509, 3_023],
  [1e-3, 5, 0.9418004751205444, 0.8113658070678128, 2_419],
  [1e-3, 6, 0.9427182078361511, 0.7980897803247373, 2_015],
  [1e-3, 7, 0.9434858560562134, 0.7865329512893983, 1_727],
  [1e-3, 8, 0.9441719055175781, 0.7748806112702961, 1_511],
  [1e-3, 9, 0.9447683095932007, 0.7640878701050621, 1_343],
  [1e-4, 2, 0.9484655261039734, 0.6924546322827125, 604],
  [1e-4, 3, 0.9501953125, 0.6543457497612225, 403],
  [1e-4, 4, 0.9513484835624695, 0.6257879656160459, 302],
  [1e-4, 5, 0.9523344039916992, 0.6022922636103152, 241],
  [1e-4, 6, 0.9529644846916199, 0.5846227316141356, 201],
  [1e-4, 7, 0.953438937664032, 0.5739255014326647, 172],
  [1e-4, 8, 0.953961968421936, 0.5622731614135625, 151],
  [1e-4, 9, 0.9542278051376343, 0.5559694364851958, 134],
  [1e-5, 2, 0.9573733806610107, 0.4698185291308501, 60],
  [1e-5, 3, 0.9587904810905457, 0.4325692454632283, 40],
  [1e-5, 4, 0.9599558711051941, 0.39866284622731607, 30],
  [1e-5, 5, 0.9605840444564819, 0.3843361986628462, 24],
  [1e-5, 6, 0.9613060355186462, 0.36571155682903533, 20],
  [1e-5, 7, 0.9614977240562439, 0.36112702960840504, 17],
  [1e-5, 8, 0.9617705345153809, 0.3546322827125119, 15],
  [1e-5, 9, 0.9620068669319153, 0.3471824259789875, 13],
  [1e-5, 10, 0.9623579978942871, 0.3362941738299905, 12],
];
const FACE_RECOGNITION_NET_CALIBRATION: ShippedCalibration = {
  sha256: '0fde9d80537b2a4f67073d5e13951fdf46b6092e786306afd9751b306a426306',
  thresholds: [
    shipped(1e-3, 0.9331677556037903, 0.9085004775549188, 12_095),
    shipped(1e-4, 0.9452205300331116, 0.7558739255014326, 1_209),
    shipped(1e-5, 0.9546577334403992, 0.5445081184336199, 120),
    ...PER_COMPARISON.map(([far, k, threshold, tar, falseMatches]) => shipped(far / k, threshold, tar, falseMatches, true)),
  ],
  metrics: { calibration_genuine_pairs: 10_470, calibration_impostor_pairs: IMPOSTOR_PAIRS },
};

/** Imports FaceRecognitionNet (128-D embeddings). */
export const faceRecognitionNetImporter = faceApiImporter({
  name: 'face-recognition-net',
  summary: 'FaceRecognitionNet 128-D embedder (dlib ResNet), from @vladmandic/face-api, converted to ONNX',
  weightsPath: 'model/face_recognition_model-weights_manifest.json',
  inputSize: FACE_RECOGNITION_INPUT_SIZE,
  // Flip-averaged in the graph: on all LFW View 2 pairs it lifts TAR at FAR 1e-4 from 72.6% to 77.2% (docs/evaluation.md).
  convert: (weights, producerVersion) => buildFaceRecognitionNet(weights, producerVersion, { flipAverage: true }),
  manifest: {
    task: ModelTask.EMBEDDER,
    description:
      "FaceRecognitionNet: dlib's ResNet face recognition model (weights released to the public domain; packaged by face-api.js, MIT). " +
      'Published LFW accuracy 99.38% for the float dlib model; these weights are uint8-quantised. ' +
      'Each crop is embedded with its mirror image and the two unit embeddings summed (in the graph). Output: 128-D, not normalised.',
    outputs: [{ name: 'embedding', shape: [-1n, 128n], dtype: 'float32' }],
    alignment: { points: DLIB_150_TEMPLATE.map(([x, y]) => ({ x, y })), width: FACE_RECOGNITION_INPUT_SIZE, height: FACE_RECOGNITION_INPUT_SIZE },
    embeddingDim: 128,
    lineage: { steps: ['face-api.js weight manifest (uint8-quantised) -> float32', `${CONVERSION_STEP}; scale layers folded into convs`, 'test-time flip averaging added to the graph'] },
  },
  calibration: FACE_RECOGNITION_NET_CALIBRATION,
});

/** Imports the 68-point landmark net (for the aligner's optional refinement). */
export const faceLandmark68Importer = faceApiImporter({
  name: 'face-landmark-68',
  summary: '68-point face landmark net, from @vladmandic/face-api, converted to ONNX',
  weightsPath: 'model/face_landmark_68_model-weights_manifest.json',
  inputSize: FACE_LANDMARK_68_INPUT_SIZE,
  convert: buildFaceLandmark68Net,
  manifest: {
    task: ModelTask.LANDMARKS,
    description:
      'FaceLandmark68Net (face-api.js): the 68 iBUG landmarks of a face crop. Output: 136 values, x0, y0, x1, y1, ... as fractions of the 112x112 input.',
    outputs: [{ name: 'landmarks', shape: [-1n, 136n], dtype: 'float32' }],
    lineage: { steps: ['face-api.js weight manifest (uint8-quantised) -> float32', CONVERSION_STEP] },
  },
});
