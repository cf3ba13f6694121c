/**
 * The face pipeline over gRPC: detect the faces of an image, choose one, align it to the
 * embedder's template and embed it. One place for the sequence, so the gateway and the eval
 * tools run exactly the same steps.
 */
import { decodeEmbedding } from '@faceprint/contracts';
import { AlignerService } from '@faceprint/contracts/aligner';
import type { AlignedFace, DetectedFace, DetectOptions, ModelRef, StageTiming } from '@faceprint/contracts/common';
import { DetectorService } from '@faceprint/contracts/detector';
import { EmbedderService } from '@faceprint/contracts/embedder';
import { createClient, type CallContext, type ClientOptions, type ServiceClient } from '@faceprint/service-kit';

/** Which face to use when an image has several. */
export type FaceChoice = 'largest' | 'central';

/** Where the vision services are. */
export interface PipelineEndpoints {
  readonly detector: string;
  readonly aligner: string;
  readonly embedder: string;
}

/** Options of one embedding. */
export interface EmbedOptions {
  /** How to pick among several faces. Default: `largest`. */
  readonly choice?: FaceChoice;
  /** Detection options. */
  readonly detect?: DetectOptions;
  /** Refine landmarks with the 68-point net before aligning. */
  readonly refineLandmarks?: boolean;
  /** Also embed the mirrored crop and average the two (test-time augmentation). */
  readonly flipAverage?: boolean;
  /** The server call this work is for (deadline and cancellation propagate). */
  readonly parent?: CallContext;
}

/** The embedding of the chosen face, or why there is none. */
export type FaceEmbedding =
  | {
      readonly found: true;
      readonly face: DetectedFace;
      readonly faceCount: number;
      readonly embedding: Float32Array;
      readonly models: { readonly detector: ModelRef | undefined; readonly embedder: ModelRef | undefined };
      readonly timings: readonly StageTiming[];
    }
  | { readonly found: false; readonly faceCount: 0; readonly timings: readonly StageTiming[] };

/** Picks the largest face, or the one whose centre is nearest the image centre. */
export function chooseFace(faces: readonly DetectedFace[], choice: FaceChoice, image: { width: number; height: number }): DetectedFace | undefined {
  const area = (f: DetectedFace) => f.box!.width * f.box!.height;
  const offCentre = (f: DetectedFace) => Math.hypot(f.box!.x + f.box!.width / 2 - image.width / 2, f.box!.y + f.box!.height / 2 - image.height / 2);
  const better = choice === 'largest' ? (a: DetectedFace, b: DetectedFace) => area(b) - area(a) : (a: DetectedFace, b: DetectedFace) => offCentre(a) - offCentre(b);
  return [...faces].sort(better)[0];
}

/** Clients of the three vision services and the sequence that uses them. */
export class FacePipeline {
  readonly detector: ServiceClient<typeof DetectorService>;
  readonly aligner: ServiceClient<typeof AlignerService>;
  readonly embedder: ServiceClient<typeof EmbedderService>;
  #embedderModel: ModelRef | undefined;

  constructor(endpoints: PipelineEndpoints, options: ClientOptions = {}) {
    this.detector = createClient(DetectorService, endpoints.detector, options);
    this.aligner = createClient(AlignerService, endpoints.aligner, options);
    this.embedder = createClient(EmbedderService, endpoints.embedder, options);
  }

  /** The embedder's serving model (asked once, then refreshed whenever a response names another). */
  async embedderModel(parent?: CallContext): Promise<ModelRef> {
    if (!this.#embedderModel) {
      const status = await this.embedder.modelStatus({}, parent ? { parent } : {});
      if (!status.serving) throw new Error('the embedder has no serving model');
      this.#embedderModel = status.serving;
    }
    return this.#embedderModel;
  }

  /** Detects, chooses, aligns and embeds one face of an image. */
  async embedImage(image: Uint8Array, options: EmbedOptions = {}): Promise<FaceEmbedding> {
    const call = options.parent ? { parent: options.parent } : {};
    const detected = await this.detector.detect({ image: { content: image }, options: options.detect }, call);
    const face = chooseFace(detected.faces, options.choice ?? 'largest', detected.image!);
    if (!face) return { found: false, faceCount: 0, timings: detected.timings };
    const embedded = await this.embedFace(image, face, options);
    return {
      found: true,
      face,
      faceCount: detected.faces.length,
      embedding: embedded.embedding,
      models: { detector: detected.model, embedder: embedded.model },
      timings: [...detected.timings, ...embedded.timings],
    };
  }

  /** Aligns and embeds a face already detected in `image` (the caller chose it). */
  async embedFace(
    image: Uint8Array,
    face: DetectedFace,
    options: Omit<EmbedOptions, 'choice' | 'detect'> = {},
  ): Promise<{ embedding: Float32Array; model: ModelRef | undefined; crop: AlignedFace; timings: StageTiming[] }> {
    const call = options.parent ? { parent: options.parent } : {};
    const model = await this.embedderModel(options.parent);
    const aligned = await this.aligner.align(
      { image: { content: image }, faces: [{ five: face.landmarks }], target: { case: 'model', value: { name: model.name, version: model.version } }, refineLandmarks: options.refineLandmarks ?? false },
      call,
    );
    const crop = aligned.faces[0]!.face!;
    const crops = options.flipAverage ? [crop, { ...crop, pixels: mirror(crop.pixels, crop.width, crop.height) }] : [crop];
    const embedded = await this.embedder.embed({ faces: crops }, call);
    if (embedded.model?.version !== model.version) this.#embedderModel = embedded.model; // a hot swap happened
    const vectors = embedded.embeddings.map((e) => decodeEmbedding(e.vector, e.dim));
    return {
      embedding: vectors.length === 1 ? vectors[0]! : normalise(vectors[0]!.map((v, i) => v + vectors[1]![i]!)),
      model: embedded.model,
      crop,
      timings: [...aligned.timings, ...embedded.timings],
    };
  }

  /** Closes the channels. */
  close(): void {
    this.detector.close();
    this.aligner.close();
    this.embedder.close();
  }
}

/** Cosine similarity of two L2-normalised embeddings (kept where embeddings are defined). */
export { cosine } from '@faceprint/contracts';

/** An RGB8 image flipped left to right. */
export function mirror(pixels: Uint8Array, width: number, height: number): Uint8Array {
  const out = new Uint8Array(pixels.length);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) out.set(pixels.subarray((y * width + x) * 3, (y * width + x) * 3 + 3), (y * width + (width - 1 - x)) * 3);
  }
  return out;
}

/** The vector scaled to unit length. */
export function normalise(vector: Float32Array): Float32Array {
  const norm = Math.hypot(...vector) || 1;
  return vector.map((v) => v / norm);
}
