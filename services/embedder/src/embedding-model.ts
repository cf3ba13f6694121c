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
import { imageInputOf } from '@faceprint/onnx';
import { WorkerSession } from './inference/worker-session.js';

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
  /** Runs a batch (its buffer is handed to the inference thread: do not reuse it) and returns one L2-normalised embedding per crop. */
  run(batch: Float32Array, count: number): Promise<Float32Array[]>;
  /** Releases the session. */
  release(): Promise<void>;
}

/** Session options shared by every load. */
export interface SessionSettings {
  readonly executionProviders: readonly string[];
  readonly ortThreads: number;
  /** Whether ONNX Runtime's threads spin while idle. Default: true (ONNX Runtime's own default). */
  readonly ortSpin?: boolean;
}

/** Loads `version` of `name` (current when omitted), verifies it and warms it up with one batch. */
export async function loadEmbeddingModel(registry: ModelRegistry, name: string, version: number | undefined, settings: SessionSettings): Promise<EmbeddingModel> {
  const { manifest, bytes } = await registry.loadModel(name, version);
  const output = manifest.outputs[0];
  if (!output || !manifest.embeddingDim) throw new Error(`${name} v${manifest.model?.version}: the manifest does not describe an embedding output`);
  const input = imageInputOf(manifest);
  const { width, height } = input;
  // On its own thread, so that gRPC keeps flowing (and the next batch forms) while a batch runs.
  const session = await WorkerSession.create(bytes, {
    executionProviders: [...settings.executionProviders],
    intraOpNumThreads: settings.ortThreads,
    graphOptimizationLevel: 'all',
    ...(settings.ortSpin === false ? { extra: { session: { intra_op: { allow_spinning: '0' }, inter_op: { allow_spinning: '0' } } } } : {}),
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
    preprocess: (faces) => input.toTensor(faces),
    async run(batch, count) {
      const values = await session.run(input.name, output.name, batch, [count, 3, height, width]);
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
