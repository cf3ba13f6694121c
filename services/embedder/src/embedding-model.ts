/**
 * One loaded embedder model version: its ONNX Runtime session, the preprocessing its manifest
 * describes, and a count of the crops queued or running on it (so that a retired version is
 * released only once its last batch is done).
 */
import { create } from '@bufbuild/protobuf';
import { ModelRefSchema, type AlignedFace, type ModelRef } from '@faceprint/contracts/common';
import { PixelFormat } from '@faceprint/contracts/common';
import type { ModelManifest } from '@faceprint/contracts/trainer';
import type { ModelRegistry } from '@faceprint/model-registry';
import * as ort from 'onnxruntime-node';

/** A loaded, warmed-up embedder version. */
export interface EmbeddingModel {
  /** The version. */
  readonly ref: ModelRef;
  /** Its manifest. */
  readonly manifest: ModelManifest;
  /** The crop size it expects. */
  readonly width: number;
  readonly height: number;
  /** The embedding dimension. */
  readonly dim: number;
  /** When it was loaded. */
  readonly loadedAt: Date;
  /** Crops queued or running on it. */
  pending: number;
  /** Turns crops into one NCHW float tensor. */
  preprocess(faces: readonly AlignedFace[]): Float32Array;
  /** Runs a batch and returns one L2-normalised embedding per crop. */
  run(batch: Float32Array, count: number): Promise<Float32Array[]>;
  /** Releases the session. */
  release(): Promise<void>;
}

/** Session options shared by every load. */
export interface SessionSettings {
  readonly executionProviders: readonly string[];
  readonly ortThreads: number;
}

/** Loads `version` of `name` (current when omitted), verifies it and warms it up with one batch. */
export async function loadEmbeddingModel(registry: ModelRegistry, name: string, version: number | undefined, settings: SessionSettings): Promise<EmbeddingModel> {
  const { manifest, bytes } = await registry.loadModel(name, version);
  const input = manifest.inputs[0];
  const output = manifest.outputs[0];
  if (!input || !output || input.shape.length !== 4 || !manifest.embeddingDim) {
    throw new Error(`${name} v${manifest.model?.version}: the manifest does not describe an NCHW image input and an embedding output`);
  }
  const [, channels, height, width] = input.shape.map(Number) as [number, number, number, number];
  if (channels !== 3) throw new Error(`${name}: ${channels}-channel input is not supported`);
  const bgr = input.channelOrder === 'BGR';
  const mean = input.mean.length === 3 ? input.mean : [0, 0, 0];
  const std = input.std.length === 3 ? input.std : [1, 1, 1];
  const session = await ort.InferenceSession.create(bytes, {
    executionProviders: [...settings.executionProviders],
    intraOpNumThreads: settings.ortThreads,
    graphOptimizationLevel: 'all',
  });
  const plane = width * height;
  const dim = manifest.embeddingDim;

  const model: EmbeddingModel = {
    ref: create(ModelRefSchema, manifest.model),
    manifest,
    width,
    height,
    dim,
    loadedAt: new Date(),
    pending: 0,
    preprocess(faces) {
      // One plain loop per channel: this runs for every pixel of every crop.
      const tensor = new Float32Array(faces.length * 3 * plane);
      faces.forEach((face, n) => {
        const pixels = face.pixels;
        for (let c = 0; c < 3; c++) {
          const offset = mean[c]!;
          const scale = 1 / std[c]!;
          const out = n * 3 * plane + c * plane;
          for (let i = 0, j = bgr ? 2 - c : c; i < plane; i++, j += 3) tensor[out + i] = (pixels[j]! - offset) * scale;
        }
      });
      return tensor;
    },
    async run(batch, count) {
      const results = await session.run({ [input.name]: new ort.Tensor('float32', batch, [count, 3, height, width]) });
      const values = results[output.name]!.data as Float32Array;
      return Array.from({ length: count }, (_, n) => {
        const row = values.slice(n * dim, (n + 1) * dim);
        const norm = Math.hypot(...row) || 1;
        return row.map((v) => v / norm);
      });
    },
    release: () => session.release(),
  };
  // Warm-up: the first run allocates and optimises; no request should pay for it.
  await model.run(new Float32Array(2 * 3 * plane), 2);
  return model;
}

/** Checks that a crop fits a model; returns the problem, or undefined. */
export function cropProblem(face: AlignedFace, model: EmbeddingModel): string | undefined {
  if (face.format !== PixelFormat.RGB8) return 'format must be PIXEL_FORMAT_RGB8';
  if (face.width !== model.width || face.height !== model.height) return `must be ${model.width}x${model.height} for ${model.ref.name} v${model.ref.version}, got ${face.width}x${face.height}`;
  if (face.pixels.byteLength !== face.width * face.height * 3) return `pixels must be width*height*3 = ${face.width * face.height * 3} bytes, got ${face.pixels.byteLength}`;
  return undefined;
}
