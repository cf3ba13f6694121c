import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { seededRandom } from '@faceprint/evaluation';
import * as ort from 'onnxruntime-node';
import { buildColourTextureGraph, FEATURE_LENGTH, LBP_BINS, PAD_FEATURES, PAD_INPUT, PAD_SCORE, padCropTemplate, uniformPatternBins } from './colour-texture-graph.js';
import { trainLogisticHead } from './logistic-head.js';

const SIZE = 16;
const PRODUCER = { producerName: 'test', producerVersion: '0' };

/** HSV (0-255 scale) and YCbCr of one RGB pixel, as the graph defines them. */
function colourPlanes(r: number, g: number, b: number): number[] {
  const v = Math.max(r, g, b);
  const range = Math.max(v - Math.min(r, g, b), 1e-6);
  let hue = v === r ? (g - b) / range : v === g ? 2 + (b - r) / range : 4 + (r - g) / range;
  if (hue < 0) hue += 6;
  const s = (v - Math.min(r, g, b)) / Math.max(v, 1e-6);
  return [(hue * 255) / 6, s * 255, v, 0.299 * r + 0.587 * g + 0.114 * b, 128 - 0.168736 * r - 0.331264 * g + 0.5 * b, 128 + 0.5 * r - 0.418688 * g - 0.081312 * b];
}

/** The graph's histograms written plainly: per channel, uniform LBP(8,1) bins over the inner pixels. */
function referenceHistograms(rgb: Uint8Array, size: number): number[] {
  const planes = Array.from({ length: 6 }, () => new Float64Array(size * size));
  for (let i = 0; i < size * size; i++) colourPlanes(rgb[3 * i]!, rgb[3 * i + 1]!, rgb[3 * i + 2]!).forEach((value, c) => (planes[c]![i] = value));
  const bins = uniformPatternBins();
  const neighbours = [[-1, -1], [-1, 0], [-1, 1], [0, 1], [1, 1], [1, 0], [1, -1], [0, -1]];
  const inner = (size - 2) ** 2;
  return planes.flatMap((plane) => {
    const histogram = new Array<number>(LBP_BINS).fill(0);
    for (let y = 1; y < size - 1; y++) {
      for (let x = 1; x < size - 1; x++) {
        const centre = plane[y * size + x]!;
        const code = neighbours.reduce((sum, [dy, dx], bit) => sum + (plane[(y + dy!) * size + x + dx!]! >= centre ? 2 ** bit : 0), 0);
        histogram[bins[code]!]! += 1 / inner;
      }
    }
    return histogram;
  });
}

const crop = (random: () => number, levels: number) => Uint8Array.from({ length: SIZE * SIZE * 3 }, () => Math.floor(random() * levels) * Math.floor(255 / (levels - 1)));
const tensorOf = (rgb: Uint8Array) => {
  const t = new Float32Array(3 * SIZE * SIZE);
  for (let i = 0; i < SIZE * SIZE; i++) for (let c = 0; c < 3; c++) t[c * SIZE * SIZE + i] = rgb[3 * i + c]!;
  return new ort.Tensor('float32', t, [1, 3, SIZE, SIZE]);
};

describe('the colour-texture PAD graph', () => {
  it('maps the 58 uniform LBP patterns to bins 0-57 and every other code to 58', () => {
    const bins = uniformPatternBins();
    assert.equal(new Set(bins).size, LBP_BINS);
    assert.equal(bins.filter((b) => b < LBP_BINS - 1).length, 58);
    assert.equal(bins[0], 0); // flat
    assert.equal(bins[0b11111111], 57); // all neighbours at least the centre: the last uniform code
    assert.equal(bins[0b01010101], LBP_BINS - 1); // eight transitions
    assert.ok(bins[0b00000111]! < LBP_BINS - 1); // two transitions (an edge): uniform
  });

  it('computes the histograms a plain implementation does, ties included (neighbour >= centre)', async () => {
    const session = await ort.InferenceSession.create(buildColourTextureGraph(SIZE, undefined, PRODUCER));
    try {
      const random = seededRandom(7);
      // Few grey levels make many equal neighbours, where > and >= would differ.
      for (const levels of [3, 256]) {
        const rgb = crop(random, levels);
        const { [PAD_FEATURES]: features } = await session.run({ [PAD_INPUT]: tensorOf(rgb) });
        const histograms = Array.from(features!.data as Float32Array, (v) => v * v); // the graph square-roots them
        const reference = referenceHistograms(rgb, SIZE);
        assert.equal(histograms.length, FEATURE_LENGTH);
        // Each channel's histogram sums to 1.
        for (let c = 0; c < 6; c++) assert.ok(Math.abs(histograms.slice(c * LBP_BINS, (c + 1) * LBP_BINS).reduce((a, b) => a + b, 0) - 1) < 1e-4);
        const worst = (c: number) => Math.max(...histograms.slice(c * LBP_BINS, (c + 1) * LBP_BINS).map((h, i) => Math.abs(h - reference[c * LBP_BINS + i]!))) * (SIZE - 2) ** 2;
        // Codes that land in another bin, per channel. Exact, but for Cb and Cr among few grey levels: there colours
        // equal only in exact arithmetic (Cb of black and of mid-grey are both 128) are compared after the runtime's
        // float32 convolution, which rounds them apart.
        const allowed = (c: number) => (levels < 256 && c >= 4 ? 4 : 0);
        for (let c = 0; c < 6; c++) assert.ok(worst(c) <= allowed(c) + 1e-3, `levels ${levels}, channel ${c}: ${worst(c)} codes in another bin`);
      }
    } finally {
      await session.release();
    }
  });

  it('scores with the head it was built with: sigmoid(features . w + b)', async () => {
    const random = seededRandom(11);
    const head = { weights: Float32Array.from({ length: FEATURE_LENGTH }, () => random() - 0.5), bias: 0.25 };
    const session = await ort.InferenceSession.create(buildColourTextureGraph(SIZE, head, PRODUCER));
    try {
      const out = await session.run({ [PAD_INPUT]: tensorOf(crop(random, 256)) });
      const features = out[PAD_FEATURES]!.data as Float32Array;
      const logit = features.reduce((sum, f, i) => sum + f * head.weights[i]!, head.bias);
      assert.ok(Math.abs((out[PAD_SCORE]!.data as Float32Array)[0]! - 1 / (1 + Math.exp(-logit))) < 1e-5);
    } finally {
      await session.release();
    }
  });

  it('crops with the face at 70% of the embedder template, inside a 64 px square', () => {
    const template = padCropTemplate();
    assert.deepEqual([template.width, template.height], [64, 64]);
    const [leftEye, rightEye] = template.points;
    assert.ok(Math.abs(rightEye!.x - leftEye!.x - ((100.476 - 47.549) * 0.7 * 64) / 150) < 1e-9);
    assert.ok(template.points.every((p) => p.x > 0 && p.x < 64 && p.y > 0 && p.y < 64));
  });

  it('fits a logistic head that separates two kinds of crops, with the standardisation folded in', async () => {
    const random = seededRandom(3);
    const session = await ort.InferenceSession.create(buildColourTextureGraph(SIZE, undefined, PRODUCER));
    try {
      // "Bona fide": smooth gradients; "attack": coarse noise. Different textures, as the model is meant to see.
      const smooth = () => Uint8Array.from({ length: SIZE * SIZE * 3 }, (_, i) => Math.min(255, Math.floor(i / 3 / SIZE) * 12 + Math.floor(random() * 4)));
      const noisy = () => crop(random, 4);
      const crops = [...Array.from({ length: 20 }, smooth), ...Array.from({ length: 20 }, noisy)];
      const features = await Promise.all(crops.map(async (c) => (await session.run({ [PAD_INPUT]: tensorOf(c) }))[PAD_FEATURES]!.data as Float32Array));
      const labels = crops.map((_, i) => i < 20);
      const head = await trainLogisticHead(features, labels, FEATURE_LENGTH, { l2: 0.01, steps: 300, learningRate: 0.05 });
      const scores = features.map((f) => 1 / (1 + Math.exp(-f.reduce((sum, v, d) => sum + v * head.weights[d]!, head.bias))));
      assert.ok(scores.slice(0, 20).every((s) => s > 0.5) && scores.slice(20).every((s) => s < 0.5), scores.map((s) => s.toFixed(2)).join(' '));
      await assert.rejects(trainLogisticHead(features.slice(0, 5), labels.slice(0, 5), FEATURE_LENGTH), /bona fide and attack frames/);
    } finally {
      await session.release();
    }
  });
});
