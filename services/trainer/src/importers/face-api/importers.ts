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
const shipped = (far: number, threshold: number, tar: number, falseMatches: number) => ({
  far,
  threshold,
  tar,
  dataset: 'lfw-gray ident_dev_view1 (every pair)',
  impostorPairs: BigInt(IMPOSTOR_PAIRS),
  falseMatches: BigInt(falseMatches),
  farUpper95: upperBound(falseMatches, IMPOSTOR_PAIRS),
});
const FACE_RECOGNITION_NET_CALIBRATION: ShippedCalibration = {
  sha256: '0fde9d80537b2a4f67073d5e13951fdf46b6092e786306afd9751b306a426306',
  thresholds: [shipped(1e-3, 0.9331677556037903, 0.9085004775549188, 12_095), shipped(1e-4, 0.9452205300331116, 0.7558739255014326, 1_209), shipped(1e-5, 0.9546577334403992, 0.5445081184336199, 120)],
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
