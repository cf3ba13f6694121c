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
import { imageInputOf, ortSessionOptions, WorkerSession, type OrtSettings } from '@faceprint/onnx';

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
  /** A batch tensor with room for `capacity` crops: one an earlier batch handed back when it has room. */
  batchTensor(capacity: number): Float32Array;
  /** Preprocesses a (checked) crop into slot `index` of a batch tensor. */
  writeCrop(face: AlignedFace, tensor: Float32Array, index: number): void;
  /**
   * Runs the first `count` crops of a batch tensor and returns one L2-normalised embedding per crop.
   * The tensor's buffer goes to the inference thread and is kept for a later batch: do not use it again.
   */
  run(batch: Float32Array, count: number): Promise<Float32Array[]>;
  /** Releases the session. */
  release(): Promise<void>;
}

/** Loads `version` of `name` (current when omitted), verifies it and warms it up with one batch. */
export async function loadEmbeddingModel(registry: ModelRegistry, name: string, version: number | undefined, settings: OrtSettings): Promise<EmbeddingModel> {
  const { manifest, bytes } = await registry.loadModel(name, version);
  const output = manifest.outputs[0];
  if (!output || !manifest.embeddingDim) throw new Error(`${name} v${manifest.model?.version}: the manifest does not describe an embedding output`);
  const input = imageInputOf(manifest);
  const { width, height } = input;
  // On its own thread, so that gRPC keeps flowing (and the next batch forms) while a batch runs.
  const session = await WorkerSession.create(bytes, ortSessionOptions(settings));
  const dim = manifest.embeddingDim;
  // Batch tensors handed back by the inference thread: a full one is 17 MB at 64 crops of
  // 150x150, so reusing it spares an allocation and its garbage every batch. Two are in use at
  // most (one running, one being filled).
  const spare: Float32Array[] = [];

  const model: EmbeddingModel = {
    ref: create(ModelRefSchema, manifest.model),
    manifest,
    width,
    height,
    dim,
    loadedAt: new Date(),
    pending: 0,
    batchTensor(capacity) {
      const reused = spare.pop();
      return reused && reused.length >= capacity * input.cropLength ? reused : new Float32Array(capacity * input.cropLength);
    },
    writeCrop: (face, tensor, index) => input.writeCrop(face.pixels, tensor, index),
    async run(batch, count) {
      const result = await session.run({ [input.name]: { data: batch.subarray(0, count * input.cropLength), dims: [count, 3, height, width] } }, [output.name]);
      if (spare.length < 2) spare.push(new Float32Array(result.inputs[input.name]!.data.buffer));
      const values = result.outputs[output.name]!.data;
      return Array.from({ length: count }, (_, n) => {
        const row = values.slice(n * dim, (n + 1) * dim);
        const norm = Math.hypot(...row) || 1;
        return row.map((v) => v / norm);
      });
    },
    release: () => session.release(),
  };
  // Warm-up: the first run allocates and optimises; no request should pay for it.
  await model.run(new Float32Array(2 * input.cropLength), 2);
  return model;
}

/** Checks that a crop fits a model; returns the problem, or undefined. */
export function cropProblem(face: AlignedFace, model: EmbeddingModel): string | undefined {
  if (face.format !== PixelFormat.RGB8) return 'format must be PIXEL_FORMAT_RGB8';
  if (face.width !== model.width || face.height !== model.height) return `must be ${model.width}x${model.height} for ${model.ref.name} v${model.ref.version}, got ${face.width}x${face.height}`;
  if (face.pixels.byteLength !== face.width * face.height * 3) return `pixels must be width*height*3 = ${face.width * face.height * 3} bytes, got ${face.pixels.byteLength}`;
  return undefined;
}
