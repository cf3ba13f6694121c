/**
 * The colour-texture presentation-attack detector as one ONNX graph (after Boulkenafet, Komulainen
 * and Hadid, "Face anti-spoofing based on color texture analysis", ICIP 2015): an aligned RGB face
 * crop goes to the HSV and YCbCr colour spaces; each of the six channels gets uniform LBP(8,1)
 * codes, and a 59-bin histogram of them over the crop; the square roots of the 354 histogram
 * values feed a logistic model whose output is the probability that the face is bona fide.
 *
 * A recaptured face (a print, a phone or tablet screen) loses and gains texture in its chrominance
 * that a live face does not have (printing dots, screen pixels, moiré, a narrower gamut). Built as
 * a graph, not code in the service, so that the features the trainer fits on are exactly the ones
 * served, and a model version is one file like every other model in the registry.
 */
import { create } from '@bufbuild/protobuf';
import type { AlignmentTemplate } from '@faceprint/contracts/common';
import { ModelManifestSchema, ModelTask } from '@faceprint/contracts/trainer';
import { imageInputOf, int, ints, OnnxGraphBuilder, serializeModel, type BuildOptions, type ImageInput } from '@faceprint/onnx';
import { DLIB_150_TEMPLATE } from '../../importers/face-api/importers.js';

/** Histogram bins of uniform LBP(8,1): 58 uniform patterns and one for all the others. */
export const LBP_BINS = 59;
/** Colour channels the histograms are taken in: H, S, V, Y, Cb, Cr. */
export const COLOUR_CHANNELS = 6;
/** Length of the feature vector. */
export const FEATURE_LENGTH = LBP_BINS * COLOUR_CHANNELS;

/** The crop side in pixels (the paper's 64 x 64 face). */
export const PAD_CROP_SIZE = 64;

/**
 * How much of the crop the face spans, against the embedder's template: 0.7 leaves a margin of
 * hair, ears and background, where a print's or a screen's edge and texture show. Chosen on the
 * Replay-Attack devel split (per video APCER at BPCER 5%: 8.0% at 1.0, 0.3% at 0.7, 3.7% at 0.55).
 */
export const PAD_FACE_SCALE = 0.7;

/** The crop template: the face landmarks of the embedder's 150 px template, scaled about its centre into a {@link PAD_CROP_SIZE} crop. */
export function padCropTemplate(size = PAD_CROP_SIZE, faceScale = PAD_FACE_SCALE): AlignmentTemplate {
  const at = (v: number) => ((75 + (v - 75) * faceScale) * size) / 150;
  return { $typeName: 'faceprint.common.v1.AlignmentTemplate', width: size, height: size, points: DLIB_150_TEMPLATE.map(([x, y]) => ({ $typeName: 'faceprint.common.v1.Point', x: at(x), y: at(y) })) };
}

/** Names of the graph's input and outputs. */
export const PAD_INPUT = 'crop';
export const PAD_FEATURES = 'features';
export const PAD_SCORE = 'bona_fide';

/**
 * What a manifest says of the graph: its task, input (RGB 0-255, NCHW), score output and crop
 * template. One place for the trainer's job, the benchmark and, through the manifest, the
 * liveness service.
 */
export function colourTextureManifestFields() {
  return {
    task: ModelTask.PRESENTATION_ATTACK_DETECTION,
    inputs: [{ name: PAD_INPUT, shape: [-1n, 3n, BigInt(PAD_CROP_SIZE), BigInt(PAD_CROP_SIZE)], dtype: 'float32', layout: 'NCHW', channelOrder: 'RGB', mean: [0, 0, 0], std: [1, 1, 1] }],
    outputs: [{ name: PAD_SCORE, shape: [-1n, 1n], dtype: 'float32' }],
    alignment: padCropTemplate(),
  };
}

/** How crops become the graph's input tensor: the same preprocessing the liveness service applies (libs/onnx image-input.ts). */
export function colourTextureInput(): ImageInput {
  return imageInputOf(create(ModelManifestSchema, colourTextureManifestFields()));
}

/** The logistic model on the features: score = sigmoid(features · weights + bias). */
export interface LinearHead {
  readonly weights: Float32Array;
  readonly bias: number;
}

/**
 * For each 8-bit LBP code, its uniform-pattern bin: codes with at most two 0/1 transitions around
 * the circle get bins 0..57 in ascending code order, every other code bin 58.
 */
export function uniformPatternBins(): number[] {
  const transitions = (code: number) => {
    let count = 0;
    for (let bit = 0; bit < 8; bit++) if (((code >> bit) & 1) !== ((code >> ((bit + 1) % 8)) & 1)) count++;
    return count;
  };
  const bins: number[] = [];
  let next = 0;
  for (let code = 0; code < 256; code++) bins.push(transitions(code) <= 2 ? next++ : LBP_BINS - 1);
  if (next !== LBP_BINS - 1) throw new Error(`expected ${LBP_BINS - 1} uniform patterns, found ${next}`);
  return bins;
}

/** The 8 neighbours of LBP(8,1), clockwise from the top-left, as (dy, dx). */
const NEIGHBOURS = [
  [-1, -1],
  [-1, 0],
  [-1, 1],
  [0, 1],
  [1, 1],
  [1, 0],
  [1, -1],
  [0, -1],
] as const;

/** The crop's H, S, V planes scaled to 0-255: [N, 3, H, W]. */
function hsv(g: OnnxGraphBuilder, rgb: string): string {
  const channel = (c: number) => g.node('Slice', [rgb, g.int64s(`start_${c}`, [c]), g.int64s(`end_${c}`, [c + 1]), g.int64s(`axis_${c}`, [1])]);
  const [r, gr, b] = [channel(0), channel(1), channel(2)];
  const value = g.node('ReduceMax', [rgb], { axes: ints([1]), keepdims: int(1) });
  const least = g.node('ReduceMin', [rgb], { axes: ints([1]), keepdims: int(1) });
  const epsilon = g.weight('hsv_epsilon', new Float32Array([1e-6]), []);
  const range = g.node('Max', [g.node('Sub', [value, least]), epsilon]);
  const saturation = g.node('Div', [g.node('Sub', [value, least]), g.node('Max', [value, epsilon])]);
  const scalar = (name: string, v: number) => g.weight(name, new Float32Array([v]), []);
  // Hue in sixths of the circle: which formula depends on which channel is the largest.
  const hueRed = g.node('Div', [g.node('Sub', [gr, b]), range]);
  const hueGreen = g.node('Add', [g.node('Div', [g.node('Sub', [b, r]), range]), scalar('two', 2)]);
  const hueBlue = g.node('Add', [g.node('Div', [g.node('Sub', [r, gr]), range]), scalar('four', 4)]);
  const sixths = g.node('Where', [g.node('Equal', [value, r]), hueRed, g.node('Where', [g.node('Equal', [value, gr]), hueGreen, hueBlue])]);
  const wrapped = g.node('Where', [g.node('Less', [sixths, scalar('zero', 0)]), g.node('Add', [sixths, scalar('six', 6)]), sixths]);
  const hue = g.node('Mul', [wrapped, scalar('hue_scale', 255 / 6)]);
  return g.node('Concat', [hue, g.node('Mul', [saturation, scalar('saturation_scale', 255)]), value], { axis: int(1) });
}

/** The crop's Y, Cb, Cr planes (ITU-R BT.601, full range): [N, 3, H, W]. */
function ycbcr(g: OnnxGraphBuilder, rgb: string): string {
  const matrix = new Float32Array([0.299, 0.587, 0.114, -0.168736, -0.331264, 0.5, 0.5, -0.418688, -0.081312]);
  const weights = g.weight('ycbcr_weights', matrix, [3, 3, 1, 1]);
  return g.node('Conv', [rgb, weights, g.weight('ycbcr_offset', new Float32Array([0, 128, 128]), [3])], { kernel_shape: ints([1, 1]) });
}

/**
 * Uniform LBP(8,1) histograms of every channel of `planes` [N, C, H, W]: [N, C * 59], each
 * channel's 59 values summing to 1. Neighbours are compared by slicing shifted views (exact, unlike
 * a difference convolution whose arithmetic the runtime may reorder).
 */
function lbpHistograms(g: OnnxGraphBuilder, planes: string, height: number, width: number): string {
  const view = (dy: number, dx: number) =>
    g.node('Slice', [planes, g.int64s('view_starts', [1 + dy, 1 + dx]), g.int64s('view_ends', [height - 1 + dy, width - 1 + dx]), g.int64s('view_axes', [2, 3])]);
  const centre = view(0, 0);
  const bits = NEIGHBOURS.map(([dy, dx], bit) => {
    const set = g.node('Cast', [g.node('GreaterOrEqual', [view(dy, dx), centre])], { to: int(1) });
    return g.node('Mul', [set, g.weight(`bit_${bit}`, new Float32Array([2 ** bit]), [])]);
  });
  const codes = g.node('Cast', [g.node('Sum', bits)], { to: int(7) });
  const bins = g.node('Gather', [g.int64s('uniform_bins', uniformPatternBins()), codes]);
  const oneHot = g.node('OneHot', [bins, g.int64s('bin_count', [LBP_BINS]), g.weight('one_hot_values', new Float32Array([0, 1]), [2])], { axis: int(-1) });
  const histograms = g.node('ReduceMean', [oneHot], { axes: ints([2, 3]), keepdims: int(0) });
  return g.node('Flatten', [histograms], { axis: int(1) });
}

/**
 * The graph for crops of `size` x `size`: input `crop` [N, 3, size, size] (RGB, 0-255), outputs
 * `features` [N, 354] (square-rooted histograms) and, with a head, `bona_fide` [N, 1] in (0, 1).
 * Without a head it computes the features alone (the trainer fits the head on them).
 */
export function buildColourTextureGraph(size: number, head: LinearHead | undefined, options: BuildOptions): Uint8Array {
  const g = new OnnxGraphBuilder('colour_texture_pad');
  const crop = g.input(PAD_INPUT, ['batch', 3, size, size]);
  const planes = g.node('Concat', [hsv(g, crop), ycbcr(g, crop)], { axis: int(1) });
  const features = g.node('Sqrt', [lbpHistograms(g, planes, size, size)]);
  g.output(features, PAD_FEATURES, ['batch', FEATURE_LENGTH]);
  if (head) {
    if (head.weights.length !== FEATURE_LENGTH) throw new Error(`the head needs ${FEATURE_LENGTH} weights, got ${head.weights.length}`);
    const logit = g.node('Add', [g.node('MatMul', [features, g.weight('head_weights', head.weights, [FEATURE_LENGTH, 1])]), g.weight('head_bias', new Float32Array([head.bias]), [1])]);
    g.output(g.node('Sigmoid', [logit]), PAD_SCORE, ['batch', 1]);
  }
  return serializeModel(g.build(options));
}
