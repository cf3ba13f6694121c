/**
 * Face detection on an RGB image: context padding for small images, a letterbox to the model's
 * input (longer side = input size, both sides multiples of 32) preprocessed as the manifest says,
 * the model's output decoding (@faceprint/onnx detector-heads), non-maximum suppression, and boxes and
 * landmarks mapped back to the image's pixel coordinates.
 */
import type { ModelManifest } from '@faceprint/contracts/trainer';
import type { RgbImage } from '@faceprint/imaging';
import { headDecoderOf, imageInputOf, type HeadDecoder } from '@faceprint/onnx';
import sharp from 'sharp';

/** A point in image pixels. */
export type Point = readonly [x: number, y: number];

/** Left eye, right eye, nose tip, left mouth corner, right mouth corner (image left/right). */
export type FivePoints = readonly [Point, Point, Point, Point, Point];

/** One detection in image pixel coordinates. */
export interface Detection {
  /** Left, top, width, height. */
  readonly box: { x: number; y: number; width: number; height: number };
  /** The five landmarks. */
  readonly landmarks: FivePoints;
  /** The model's face score, in [0, 1]. */
  readonly score: number;
}

/** Detection settings. */
export interface DetectSettings {
  /** Longer side of the model input in pixels (a multiple of 32). */
  readonly inputSize: number;
  /** Minimum score. */
  readonly scoreThreshold: number;
  /** IoU above which the weaker of two overlapping detections is dropped. */
  readonly nmsIou: number;
  /** Faces whose shorter box side is below this many pixels are dropped. */
  readonly minFaceSize: number;
  /** At most this many faces, best first. */
  readonly maxFaces: number;
  /**
   * Images whose longer side is below `inputSize` get this fraction of their longer side added as
   * a black border on every side, so that a tight face crop has the context a detector expects.
   */
  readonly smallImagePadding: number;
}

/** The letterboxed model input and how to map its coordinates back. */
interface Letterbox {
  readonly tensor: Float32Array;
  readonly width: number;
  readonly height: number;
  readonly scaleX: number;
  readonly scaleY: number;
  readonly padding: number;
}

async function letterbox(image: RgbImage, settings: DetectSettings, manifest: ModelManifest): Promise<Letterbox> {
  const longer = Math.max(image.width, image.height);
  const padding = longer < settings.inputSize ? Math.round(settings.smallImagePadding * longer) : 0;
  const canvasWidth = image.width + 2 * padding;
  const canvasHeight = image.height + 2 * padding;
  const scale = settings.inputSize / Math.max(canvasWidth, canvasHeight);
  const resizedWidth = Math.max(1, Math.round(canvasWidth * scale));
  const resizedHeight = Math.max(1, Math.round(canvasHeight * scale));
  const width = Math.ceil(resizedWidth / 32) * 32;
  const height = Math.ceil(resizedHeight / 32) * 32;
  const black = { r: 0, g: 0, b: 0 };
  // extend() and resize() in one sharp pipeline run in a fixed order (resize first); pad, then
  // resize, then pad again in two passes to keep the order this mapping assumes.
  const padded = padding > 0
    ? await sharp(image.data, { raw: { width: image.width, height: image.height, channels: 3 } })
        .extend({ top: padding, bottom: padding, left: padding, right: padding, background: black })
        .raw()
        .toBuffer()
    : Buffer.from(image.data.buffer, image.data.byteOffset, image.data.byteLength);
  const rgb = await sharp(padded, { raw: { width: canvasWidth, height: canvasHeight, channels: 3 } })
    .resize(resizedWidth, resizedHeight, { fit: 'fill' })
    .extend({ right: width - resizedWidth, bottom: height - resizedHeight, background: black })
    .raw()
    .toBuffer();
  // NCHW, in the channel order and normalisation of the model's input.
  const tensor = imageInputOf(manifest, { width, height }).toTensor([{ pixels: rgb }]);
  return { tensor, width, height, scaleX: resizedWidth / canvasWidth, scaleY: resizedHeight / canvasHeight, padding };
}

function iou(a: Detection['box'], b: Detection['box']): number {
  const x1 = Math.max(a.x, b.x);
  const y1 = Math.max(a.y, b.y);
  const x2 = Math.min(a.x + a.width, b.x + b.width);
  const y2 = Math.min(a.y + a.height, b.y + b.height);
  const intersection = Math.max(0, x2 - x1) * Math.max(0, y2 - y1);
  const union = a.width * a.height + b.width * b.height - intersection;
  return union > 0 ? intersection / union : 0;
}

/** Greedy non-maximum suppression over detections sorted by score. */
export function nonMaximumSuppression(detections: readonly Detection[], threshold: number): Detection[] {
  const sorted = [...detections].sort((a, b) => b.score - a.score);
  const kept: Detection[] = [];
  for (const candidate of sorted) {
    if (kept.every((k) => iou(k.box, candidate.box) <= threshold)) kept.push(candidate);
  }
  return kept;
}

/** Runs the detector graph on one NCHW float tensor; resolves with each output's data by name. */
export type DetectorInference = (input: Float32Array, dims: readonly number[]) => Promise<Readonly<Record<string, Float32Array>>>;

/** A loaded detector: how to run it, how its input is made, how its outputs decode. */
export interface DetectorModel {
  readonly infer: DetectorInference;
  readonly manifest: ModelManifest;
  readonly head: HeadDecoder;
}

/** A detector model from its manifest and a way to run it; throws when the manifest's head cannot be decoded. */
export const detectorModel = (manifest: ModelManifest, infer: DetectorInference): DetectorModel => ({ infer, manifest, head: headDecoderOf(manifest) });

/** Runs the detector on one image. */
export async function detectFaces(model: DetectorModel, image: RgbImage, settings: DetectSettings): Promise<Detection[]> {
  const input = await letterbox(image, settings, model.manifest);
  const outputs = await model.infer(input.tensor, [1, 3, input.height, input.width]);
  const toImage = (x: number, y: number): Point => [x / input.scaleX - input.padding, y / input.scaleY - input.padding];
  const candidates: Detection[] = [];
  for (const candidate of model.head.decode(outputs, input.width, input.height, settings.scoreThreshold)) {
    const [x1, y1] = toImage(candidate.x1, candidate.y1);
    const [x2, y2] = toImage(candidate.x2, candidate.y2);
    const landmark = (k: number) => toImage(candidate.landmarks[2 * k]!, candidate.landmarks[2 * k + 1]!);
    const landmarks: FivePoints = [landmark(0), landmark(1), landmark(2), landmark(3), landmark(4)];
    // Clip to the image: a face cut by the border still has its visible part.
    const left = Math.max(0, x1);
    const top = Math.max(0, y1);
    const box = { x: left, y: top, width: Math.min(image.width, x2) - left, height: Math.min(image.height, y2) - top };
    if (box.width <= 0 || box.height <= 0) continue;
    candidates.push({ box, landmarks, score: Math.min(1, Math.max(0, candidate.score)) });
  }
  return nonMaximumSuppression(candidates, settings.nmsIou)
    .filter((d) => Math.min(d.box.width, d.box.height) >= settings.minFaceSize)
    .slice(0, settings.maxFaces);
}
