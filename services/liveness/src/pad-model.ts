/**
 * One loaded presentation-attack detection model version: its ONNX Runtime session (on its own
 * thread), the crop size and template its manifest declares, and the operating point it decides
 * at. A crop goes in as RGB8 aligned to the template; out comes the model's bona fide score.
 */
import { create } from '@bufbuild/protobuf';
import { ModelRefSchema, PixelFormat, type AlignedFace, type AlignmentTemplate } from '@faceprint/contracts/common';
import { ModelTask, type ModelManifest, type PadOperatingPoint } from '@faceprint/contracts/trainer';
import type { ModelRegistry, ServedModel } from '@faceprint/model-registry';
import { imageInputOf, ortSessionOptions, WorkerSession, type ImageInput, type OrtSettings } from '@faceprint/onnx';

/** A loaded, warmed-up PAD model version. */
export interface PadModel extends ServedModel {
  readonly manifest: ModelManifest;
  /** The crop template and size it expects. */
  readonly template: AlignmentTemplate;
  /** The operating point it decides at unless a request asks for another. */
  readonly operatingPoint: PadOperatingPoint;
  /** Every operating point its manifest records. */
  readonly operatingPoints: readonly PadOperatingPoint[];
  /** Calls running on it. */
  pending: number;
  /** Each crop's bona fide score, in (0, 1). */
  score(crops: readonly AlignedFace[]): Promise<number[]>;
}

/** Loads `version` of `name` (current when omitted), checks it is a PAD model with an operating point at `targetBpcer`, warms it up. */
export async function loadPadModel(registry: ModelRegistry, name: string, version: number | undefined, targetBpcer: number, settings: OrtSettings): Promise<PadModel> {
  const { manifest, bytes } = await registry.loadModel(name, version);
  const label = `${name} v${manifest.model?.version}`;
  if (manifest.task !== ModelTask.PRESENTATION_ATTACK_DETECTION) throw new Error(`${label} is not a presentation-attack detection model`);
  const output = manifest.outputs[0];
  if (!output || !manifest.alignment) throw new Error(`${label}: the manifest does not describe a score output and a crop template`);
  const operatingPoint = operatingPointAt(manifest.padOperatingPoints, targetBpcer);
  if (!operatingPoint) {
    const known = manifest.padOperatingPoints.map((p) => p.targetBpcer).join(', ') || 'none';
    throw new Error(`${label} has no operating point at BPCER ${targetBpcer} (FACEPRINT_LIVENESS_TARGET_BPCER); it has: ${known}`);
  }
  const input: ImageInput = imageInputOf(manifest);
  const session = await WorkerSession.create(bytes, ortSessionOptions(settings));
  const run = async (tensor: Float32Array, count: number) => {
    const result = await session.run({ [input.name]: { data: tensor, dims: [count, 3, input.height, input.width] } }, [output.name]);
    return Array.from(result.outputs[output.name]!.data.subarray(0, count));
  };
  const model: PadModel = {
    ref: create(ModelRefSchema, manifest.model),
    manifest,
    template: manifest.alignment,
    operatingPoint,
    operatingPoints: manifest.padOperatingPoints,
    pending: 0,
    score: (crops) => run(input.toTensor(crops), crops.length),
    release: () => session.release(),
  };
  await run(new Float32Array(input.cropLength), 1); // warm-up: no request pays for the first run
  return model;
}

/** The operating point at `targetBpcer`, if the model has one. */
export const operatingPointAt = (points: readonly PadOperatingPoint[], targetBpcer: number): PadOperatingPoint | undefined =>
  points.find((p) => Math.abs(p.targetBpcer - targetBpcer) < 1e-9);

/** Checks that a crop fits a model; returns the problem, or undefined. */
export function cropProblem(face: AlignedFace, model: PadModel): string | undefined {
  const { width, height } = model.template;
  if (face.format !== PixelFormat.RGB8) return 'format must be PIXEL_FORMAT_RGB8';
  if (face.width !== width || face.height !== height) return `must be ${width}x${height} for ${model.ref.name} v${model.ref.version} (align to its template), got ${face.width}x${face.height}`;
  if (face.pixels.byteLength !== width * height * 3) return `pixels must be width*height*3 = ${width * height * 3} bytes, got ${face.pixels.byteLength}`;
  return undefined;
}
