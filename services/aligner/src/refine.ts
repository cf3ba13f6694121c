/**
 * Landmark refinement with the 68-point landmark net: a square crop around the five detector
 * landmarks, the net's 68 points, and five points derived from them (eye centres, nose tip,
 * mouth corners) for the alignment fit.
 */
import type { RgbImage } from '@faceprint/imaging';
import { warp, type Point } from './similarity.js';

/** The net's input side and its per-channel normalisation (from its manifest). */
export interface LandmarkNetInput {
  readonly size: number;
  readonly mean: readonly number[];
  readonly std: readonly number[];
}

/** Runs the net on one input tensor and returns its output: 68 (x, y) pairs as fractions of the crop. */
export type LandmarkInference = (input: Float32Array, dims: readonly number[]) => Promise<Float32Array>;

/** The 68 refined points and the five derived from them. */
export interface RefinedLandmarks {
  readonly five: readonly [Point, Point, Point, Point, Point];
  readonly sixtyEight: readonly Point[];
}

const average = (points: readonly Point[]): Point => [points.reduce((s, p) => s + p[0], 0) / points.length, points.reduce((s, p) => s + p[1], 0) / points.length];

/** Refines the landmarks of one face. */
export async function refineLandmarks(infer: LandmarkInference, net: LandmarkNetInput, image: RgbImage, five: readonly Point[]): Promise<RefinedLandmarks> {
  // A square around the face: centred between eyes and mouth, 2.4x the eye-to-mouth distance.
  const [leftEye, rightEye, , mouthLeft, mouthRight] = five as [Point, Point, Point, Point, Point];
  const eyes = average([leftEye, rightEye]);
  const mouth = average([mouthLeft, mouthRight]);
  const centre = average([eyes, mouth]);
  const side = Math.max(2.4 * Math.hypot(mouth[0] - eyes[0], mouth[1] - eyes[1]), 1.8 * Math.hypot(rightEye[0] - leftEye[0], rightEye[1] - leftEye[1]));
  const scale = net.size / side;
  const crop = { a: scale, b: 0, tx: net.size / 2 - scale * centre[0], ty: net.size / 2 - scale * centre[1] };
  const pixels = warp(image, crop, net.size, net.size);
  const plane = net.size * net.size;
  const input = new Float32Array(3 * plane);
  for (let i = 0; i < plane; i++) for (let c = 0; c < 3; c++) input[c * plane + i] = (pixels[i * 3 + c]! - net.mean[c]!) / net.std[c]!;
  const values = await infer(input, [1, 3, net.size, net.size]);
  const sixtyEight: Point[] = [];
  for (let k = 0; k < 68; k++) {
    // Fractions of the crop, back to image pixels.
    sixtyEight.push([(values[2 * k]! * net.size - crop.tx) / scale, (values[2 * k + 1]! * net.size - crop.ty) / scale]);
  }
  // iBUG 68: 36-41 and 42-47 are the eyes on the image's left and right, 30 the nose tip, 48 and 54 the mouth corners.
  return {
    five: [average(sixtyEight.slice(36, 42)), average(sixtyEight.slice(42, 48)), sixtyEight[30]!, sixtyEight[48]!, sixtyEight[54]!],
    sixtyEight,
  };
}
