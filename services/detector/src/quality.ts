/**
 * Quality measures of a detected face, modelled on the measures of ISO/IEC 29794-5 (OFIQ) that
 * need no model beyond the detector: inter-eye distance, head pose from the five landmarks,
 * sharpness, under- and over-exposure, mean luminance and illumination uniformity, and a unified
 * 0-100 score that combines them (its rule is in @faceprint/contracts' face-quality.ts). Each
 * measure is computed on a grid of luma samples over the face box (at most 96 x 96), so its cost
 * does not grow with the image.
 */
import { unifiedQualityScore } from '@faceprint/contracts';
import type { RgbImage } from '@faceprint/imaging';
import type { Detection, Point } from './face-detection.js';

/** The quality measures of one face. */
export interface FaceQualityMeasures {
  /** Shorter side of the box in pixels. */
  readonly faceSize: number;
  /** Variance of the Laplacian of luma over the box (sampled on at most 96x96 points). */
  readonly sharpness: number;
  /** Yaw in degrees: 0 frontal, positive when the face turns to the image's right. */
  readonly yawDegrees: number;
  /** Pitch in degrees: positive when looking down. */
  readonly pitchDegrees: number;
  /** Roll in degrees: the eye line's angle, positive clockwise in the image. */
  readonly rollDegrees: number;
  /** Distance between the eye centres in pixels. */
  readonly interEyeDistance: number;
  /** Mean luma of the face box in [0, 1]. */
  readonly luminanceMean: number;
  /** Share of the face box darker than `DARK_LUMA`: crushed shadows. */
  readonly underExposure: number;
  /** Share of the face box brighter than `BRIGHT_LUMA`: blown highlights. */
  readonly overExposure: number;
  /** Similarity of the luma histograms of the face's two halves (split at the eyes' midpoint), in [0, 1]: 1 is even light, low is light from one side. */
  readonly illuminationUniformity: number;
  /** All of the above in one score, 0 (unusable) to 100 (`unifiedQualityScore`). */
  readonly unifiedScore: number;
}

const SAMPLES = 96;
/** Luma levels (of 255) below and above which a pixel holds little detail. */
const DARK_LUMA = 25;
const BRIGHT_LUMA = 245;
const HISTOGRAM_BINS = 32;

function luma(image: RgbImage, x: number, y: number): number {
  const xi = Math.min(image.width - 1, Math.max(0, Math.round(x)));
  const yi = Math.min(image.height - 1, Math.max(0, Math.round(y)));
  const i = (yi * image.width + xi) * 3;
  return 0.299 * image.data[i]! + 0.587 * image.data[i + 1]! + 0.114 * image.data[i + 2]!;
}

/** Luma on an n x n grid over the box (row-major), with the grid spacing. */
function lumaGrid(image: RgbImage, box: Detection['box']): { values: Float32Array; n: number; stepX: number; stepY: number } {
  const n = Math.max(3, Math.min(SAMPLES, Math.floor(Math.min(box.width, box.height))));
  const stepX = box.width / n;
  const stepY = box.height / n;
  const values = new Float32Array(n * n);
  for (let j = 0; j < n; j++) for (let i = 0; i < n; i++) values[j * n + i] = luma(image, box.x + (i + 0.5) * stepX, box.y + (j + 0.5) * stepY);
  return { values, n, stepX, stepY };
}

/** Variance of the 4-neighbour Laplacian over the grid, at the grid's own spacing. */
function sharpness(grid: { values: Float32Array; n: number }): number {
  const { values, n } = grid;
  const laplacian: number[] = [];
  for (let j = 1; j < n - 1; j++) {
    for (let i = 1; i < n - 1; i++) {
      const at = j * n + i;
      laplacian.push(values[at - 1]! + values[at + 1]! + values[at - n]! + values[at + n]! - 4 * values[at]!);
    }
  }
  const mean = laplacian.reduce((a, b) => a + b, 0) / laplacian.length;
  return laplacian.reduce((a, b) => a + (b - mean) ** 2, 0) / laplacian.length;
}

/** Histogram intersection of the grid's columns left and right of `splitColumn`. */
function halvesSimilarity(grid: { values: Float32Array; n: number }, splitColumn: number): number {
  const { values, n } = grid;
  const split = Math.min(n - 1, Math.max(1, Math.round(splitColumn)));
  const left = new Float64Array(HISTOGRAM_BINS);
  const right = new Float64Array(HISTOGRAM_BINS);
  for (let j = 0; j < n; j++) {
    for (let i = 0; i < n; i++) {
      const bin = Math.min(HISTOGRAM_BINS - 1, Math.floor((values[j * n + i]! / 256) * HISTOGRAM_BINS));
      (i < split ? left : right)[bin]! += 1;
    }
  }
  const leftTotal = split * n;
  const rightTotal = (n - split) * n;
  let intersection = 0;
  for (let b = 0; b < HISTOGRAM_BINS; b++) intersection += Math.min(left[b]! / leftTotal, right[b]! / rightTotal);
  return intersection;
}

const degrees = (radians: number) => (radians * 180) / Math.PI;
const clamp = (v: number, limit: number) => Math.max(-limit, Math.min(limit, v));

/** The quality measures of one detection. */
export function faceQuality(image: RgbImage, detection: Detection): FaceQualityMeasures {
  const [leftEye, rightEye, nose, mouthLeft, mouthRight] = detection.landmarks;
  const roll = Math.atan2(rightEye[1] - leftEye[1], rightEye[0] - leftEye[0]);
  // Undo the roll around the eye midpoint, then compare the nose with the eye and mouth lines.
  const eyeMid: Point = [(leftEye[0] + rightEye[0]) / 2, (leftEye[1] + rightEye[1]) / 2];
  const unroll = ([x, y]: Point): Point => {
    const dx = x - eyeMid[0];
    const dy = y - eyeMid[1];
    return [dx * Math.cos(-roll) - dy * Math.sin(-roll), dx * Math.sin(-roll) + dy * Math.cos(-roll)];
  };
  const interEyeDistance = Math.hypot(rightEye[0] - leftEye[0], rightEye[1] - leftEye[1]);
  const eyeDistance = interEyeDistance || 1;
  const [noseX, noseY] = unroll(nose);
  const mouthY = (unroll(mouthLeft)[1] + unroll(mouthRight)[1]) / 2 || 1;
  // Frontal faces put the nose about 55% of the way from the eye line to the mouth line.
  const yaw = degrees(Math.asin(clamp((2 * noseX) / eyeDistance, 1)));
  const pitch = clamp(((noseY / mouthY) - 0.55) * 180, 90);

  const grid = lumaGrid(image, detection.box);
  let dark = 0;
  let bright = 0;
  let total = 0;
  for (const v of grid.values) {
    if (v < DARK_LUMA) dark++;
    if (v > BRIGHT_LUMA) bright++;
    total += v;
  }
  const samples = grid.values.length;
  const measures = {
    faceSize: Math.min(detection.box.width, detection.box.height),
    sharpness: sharpness(grid),
    yawDegrees: yaw,
    pitchDegrees: pitch,
    rollDegrees: degrees(roll),
    interEyeDistance,
    luminanceMean: total / samples / 255,
    underExposure: dark / samples,
    overExposure: bright / samples,
    illuminationUniformity: halvesSimilarity(grid, (eyeMid[0] - detection.box.x) / grid.stepX),
  };
  return { ...measures, unifiedScore: unifiedQualityScore(measures) };
}
