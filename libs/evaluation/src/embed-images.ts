/** Image files through the detector, aligner and embedder over gRPC, as the eval commands run them. */
import type { ModelRef } from '@faceprint/contracts/common';
import { FacePipeline, type FaceChoice } from '@faceprint/face-pipeline';
import { acquireServices, forEachConcurrently } from '@faceprint/mesh';
import { readImageForServices } from './image-files.js';

/** gRPC's INVALID_ARGUMENT: the services refused the image itself. */
const INVALID_ARGUMENT = 3;

/** How to embed. */
export interface EmbedImagesOptions {
  /** Which face of an image to use. */
  readonly face: FaceChoice;
  /** Refine landmarks with the 68-point net before aligning. */
  readonly refine: boolean;
  /** Average the embeddings of the crop and its mirror image. */
  readonly flip: boolean;
  /** Running services at this host's default ports; undefined starts them for the run. */
  readonly target: string | undefined;
  /** The detector input size for services started for the run. */
  readonly detectorInputSize: string;
  /** Images in flight. */
  readonly concurrency: number;
  /** More settings for services started for the run, e.g. `FACEPRINT_EMBEDDER_MODEL: 'name@3'` to evaluate one version. */
  readonly serviceEnv?: Readonly<Record<string, string>>;
  /** Called with the number of images done, now and then. Default: a line on standard error every 500. */
  readonly onProgress?: (done: number, total: number) => void;
  /** Stops embedding (the images left are not embedded) when aborted. */
  readonly signal?: AbortSignal;
}

/** The embeddings (undefined where no face was found) and the models that made them. */
export interface EmbeddedImages {
  readonly embeddings: Map<string, Float32Array | undefined>;
  /** The unified quality score (0-100) of each embedded face, as the detector measured it. */
  readonly qualities: Map<string, number>;
  /**
   * Images that could not be read or decoded, with why: counted and reported (their comparisons
   * fail), never the end of the run. Also in `embeddings`, as undefined.
   */
  readonly unreadable: Map<string, string>;
  /** `name vN` of the detector and embedder, for reports. */
  readonly models: Record<string, string>;
  /** The embedder model that served. */
  readonly embedder: ModelRef | undefined;
  /** Whether the services were started for the run (else: as deployed at the target). */
  readonly startedServices: boolean;
}

/** Embeds every image once, reporting progress (by default on standard error). */
export async function embedImages(images: readonly string[], options: EmbedImagesOptions): Promise<EmbeddedImages> {
  const services = await acquireServices(['detector', 'aligner', 'embedder'], options.target, { FACEPRINT_DETECTOR_INPUT_SIZE: options.detectorInputSize, ...options.serviceEnv });
  const progress = options.onProgress ?? ((done: number, total: number) => done % 500 === 0 && process.stderr.write(`  ${done}/${total} images\n`));
  const pipeline = new FacePipeline(services.addresses as { detector: string; aligner: string; embedder: string });
  const embeddings = new Map<string, Float32Array | undefined>();
  const qualities = new Map<string, number>();
  const unreadable = new Map<string, string>();
  let models: Record<string, string> = {};
  let embedder: ModelRef | undefined;
  try {
    await forEachConcurrently(images, options.concurrency, async (path, i) => {
      if (options.signal?.aborted) return;
      let result: Awaited<ReturnType<FacePipeline['embedImage']>>;
      try {
        result = await pipeline.embedImage(await readImageForServices(path), { choice: options.face, refineLandmarks: options.refine, flipAverage: options.flip });
      } catch (error) {
        // A bad file or an image the services refuse is this image's failure; anything else
        // (a service down) ends the run.
        const code = (error as { code?: unknown }).code;
        if (typeof code === 'number' && code !== INVALID_ARGUMENT) throw error;
        unreadable.set(path, error instanceof Error ? error.message : String(error));
        embeddings.set(path, undefined);
        progress(i + 1, images.length);
        return;
      }
      embeddings.set(path, result.found ? result.embedding : undefined);
      if (result.found && result.face.quality) qualities.set(path, result.face.quality.unifiedScore);
      if (result.found && !embedder) {
        embedder = result.models.embedder;
        models = { detector: `${result.models.detector?.name} v${result.models.detector?.version}`, embedder: `${result.models.embedder?.name} v${result.models.embedder?.version}` };
      }
      progress(i + 1, images.length);
    });
  } finally {
    pipeline.close();
    await services.stop();
  }
  return { embeddings, qualities, unreadable, models, embedder, startedServices: services.started };
}
