/**
 * Quality hints for a detected face: size, sharpness and a head-pose estimate from the five
 * landmarks. These are cheap heuristics for gating enrolment, not calibrated measurements.
 */
import type { RgbImage } from '@faceprint/imaging';
import type { Detection, Point } from './yunet.js';

/** Quality hints of one face. */
export interface FaceQualityHints {
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
}

const SAMPLES = 96;

function luma(image: RgbImage, x: number, y: number): number {
  const xi = Math.min(image.width - 1, Math.max(0, Math.round(x)));
  const yi = Math.min(image.height - 1, Math.max(0, Math.round(y)));
  const i = (yi * image.width + xi) * 3;
  return 0.299 * image.data[i]! + 0.587 * image.data[i + 1]! + 0.114 * image.data[i + 2]!;
}

/** Variance of the 4-neighbour Laplacian over a grid of the box, at the grid's own spacing. */
function sharpness(image: RgbImage, box: Detection['box']): number {
  const n = Math.max(3, Math.min(SAMPLES, Math.floor(Math.min(box.width, box.height))));
  const stepX = box.width / n;
  const stepY = box.height / n;
  const values: number[] = [];
  for (let j = 1; j < n - 1; j++) {
    for (let i = 1; i < n - 1; i++) {
      const x = box.x + i * stepX;
      const y = box.y + j * stepY;
      values.push(luma(image, x - stepX, y) + luma(image, x + stepX, y) + luma(image, x, y - stepY) + luma(image, x, y + stepY) - 4 * luma(image, x, y));
    }
  }
  const mean = values.reduce((a, b) => a + b, 0) / values.length;
  return values.reduce((a, b) => a + (b - mean) ** 2, 0) / values.length;
}

const degrees = (radians: number) => (radians * 180) / Math.PI;
const clamp = (v: number, limit: number) => Math.max(-limit, Math.min(limit, v));

/** The quality hints of one detection. */
export function faceQuality(image: RgbImage, detection: Detection): FaceQualityHints {
  const [leftEye, rightEye, nose, mouthLeft, mouthRight] = detection.landmarks;
  const roll = Math.atan2(rightEye[1] - leftEye[1], rightEye[0] - leftEye[0]);
  // Undo the roll around the eye midpoint, then compare the nose with the eye and mouth lines.
  const eyeMid: Point = [(leftEye[0] + rightEye[0]) / 2, (leftEye[1] + rightEye[1]) / 2];
  const unroll = ([x, y]: Point): Point => {
    const dx = x - eyeMid[0];
    const dy = y - eyeMid[1];
    return [dx * Math.cos(-roll) - dy * Math.sin(-roll), dx * Math.sin(-roll) + dy * Math.cos(-roll)];
  };
  const eyeDistance = Math.hypot(rightEye[0] - leftEye[0], rightEye[1] - leftEye[1]) || 1;
  const [noseX, noseY] = unroll(nose);
  const mouthY = (unroll(mouthLeft)[1] + unroll(mouthRight)[1]) / 2 || 1;
  // Frontal faces put the nose about 55% of the way from the eye line to the mouth line.
  const yaw = degrees(Math.asin(clamp((2 * noseX) / eyeDistance, 1)));
  const pitch = clamp(((noseY / mouthY) - 0.55) * 180, 90);
  return {
    faceSize: Math.min(detection.box.width, detection.box.height),
    sharpness: sharpness(image, detection.box),
    yawDegrees: yaw,
    pitchDegrees: pitch,
    rollDegrees: degrees(roll),
  };
}
