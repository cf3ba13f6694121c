/**
 * The image input of an embedding model as its manifest describes it: the crop size, channel
 * order and per-channel mean/std that turn RGB8 crops into one NCHW float tensor. One place, so
 * that the embedder and the trainer's jobs (quantisation calibrates on these tensors) feed a
 * model exactly the same numbers.
 */
import type { ModelManifest } from '@faceprint/contracts/trainer';

/** How crops become a model's input tensor. */
export interface ImageInput {
  /** The input's name in the graph. */
  readonly name: string;
  /** The crop size the model expects. */
  readonly width: number;
  readonly height: number;
  /** Turns RGB8 crops (width x height x 3 bytes each) into one NCHW float tensor. */
  toTensor(crops: readonly { readonly pixels: Uint8Array }[]): Float32Array;
}

/** The image input `manifest` declares; throws when it is not a 3-channel NCHW image. */
export function imageInputOf(manifest: ModelManifest): ImageInput {
  const input = manifest.inputs[0];
  const label = `${manifest.model?.name} v${manifest.model?.version}`;
  if (!input || input.shape.length !== 4) throw new Error(`${label}: the manifest does not describe an NCHW image input`);
  const [, channels, height, width] = input.shape.map(Number) as [number, number, number, number];
  if (channels !== 3) throw new Error(`${label}: ${channels}-channel input is not supported`);
  const bgr = input.channelOrder === 'BGR';
  const mean = input.mean.length === 3 ? input.mean : [0, 0, 0];
  const std = input.std.length === 3 ? input.std : [1, 1, 1];
  const plane = width * height;
  return {
    name: input.name,
    width,
    height,
    toTensor(crops) {
      // One plain loop per channel: this runs for every pixel of every crop.
      const tensor = new Float32Array(crops.length * 3 * plane);
      crops.forEach((crop, n) => {
        const pixels = crop.pixels;
        for (let c = 0; c < 3; c++) {
          const offset = mean[c]!;
          const scale = 1 / std[c]!;
          const out = n * 3 * plane + c * plane;
          for (let i = 0, j = bgr ? 2 - c : c; i < plane; i++, j += 3) tensor[out + i] = (pixels[j]! - offset) * scale;
        }
      });
      return tensor;
    },
  };
}
