/**
 * Decodes caller images with sharp into upright 8-bit RGB: EXIF orientation applied, alpha
 * flattened onto white, grayscale expanded, the first frame of an animation. A pixel-count limit
 * is checked from the header before decoding, against decompression bombs; the services read the
 * header first and decode within their memory budget (image-memory-budget.ts).
 */
import { IMAGE_MAX_BYTES, IMAGE_MAX_PIXELS } from '@faceprint/contracts';
import sharp, { type Metadata } from 'sharp';

/** Formats the services accept. */
export const ACCEPTED_FORMATS: readonly string[] = ['jpeg', 'png', 'webp', 'gif'];

/** An upright RGB image. */
export interface RgbImage {
  /** Interleaved RGB bytes, row-major, `width * height * 3`. */
  readonly data: Uint8Array;
  /** Width in pixels. */
  readonly width: number;
  /** Height in pixels. */
  readonly height: number;
  /** The source format, e.g. "jpeg". */
  readonly format: string;
}

/** Why an image was refused; the message is safe to send to the caller (no image content). */
export class ImageDecodeError extends Error {
  override readonly name = 'ImageDecodeError';
}

/** Options of {@link decodeImage}. */
export interface DecodeOptions {
  /** The largest decoded size in pixels. Default: {@link IMAGE_MAX_PIXELS}. */
  readonly maxPixels?: number;
}

/** What an image's header says, checked: an accepted format within the pixel limit. */
export interface ImageHeader {
  /** The format, e.g. "jpeg". */
  readonly format: string;
  /** Width in pixels (of the first frame, before EXIF rotation). */
  readonly width: number;
  /** Height in pixels (of the first frame, before EXIF rotation). */
  readonly height: number;
  /** `width * height`: what the decoded image will hold. */
  readonly pixels: number;
  /** The limit it was checked against. */
  readonly maxPixels: number;
}

/** Reads and checks an image's header without decoding it; throws ImageDecodeError for empty, oversized, corrupt or unsupported input. */
export async function readImageHeader(bytes: Uint8Array, options: DecodeOptions = {}): Promise<ImageHeader> {
  const maxPixels = options.maxPixels ?? IMAGE_MAX_PIXELS;
  if (bytes.byteLength === 0) throw new ImageDecodeError('the image is empty');
  if (bytes.byteLength > IMAGE_MAX_BYTES) throw new ImageDecodeError(`the image is ${bytes.byteLength} bytes; the limit is ${IMAGE_MAX_BYTES}`);
  let metadata: Metadata;
  try {
    // The header only, without sharp's own pixel limit: ours is checked just below, with its own message.
    metadata = await sharp(bytes, { limitInputPixels: false }).metadata();
  } catch {
    throw new ImageDecodeError(`the image is corrupt, truncated or not a ${ACCEPTED_FORMATS.join(', ')} file`);
  }
  if (!metadata.format || !ACCEPTED_FORMATS.includes(metadata.format)) {
    throw new ImageDecodeError(`unsupported image format ${metadata.format ?? 'unknown'}; accepted: ${ACCEPTED_FORMATS.join(', ')}`);
  }
  const width = metadata.width ?? 0;
  const height = metadata.pageHeight ?? metadata.height ?? 0;
  const pixels = width * height;
  if (pixels > maxPixels) throw new ImageDecodeError(`the image is ${width}x${height} (${pixels} pixels); the limit is ${maxPixels} pixels`);
  return { format: metadata.format, width, height, pixels, maxPixels };
}

/** Decodes an image whose header {@link readImageHeader} has checked; throws ImageDecodeError when its body is corrupt. */
export async function decodeWithHeader(bytes: Uint8Array, header: ImageHeader): Promise<RgbImage> {
  try {
    const { data, info } = await sharp(bytes, { limitInputPixels: header.maxPixels, failOn: 'error', pages: 1 })
      .rotate() // EXIF orientation
      .flatten({ background: '#ffffff' })
      .toColourspace('srgb')
      .removeAlpha()
      .raw()
      .toBuffer({ resolveWithObject: true });
    if (info.channels !== 3) throw new Error(`${info.channels} channels after conversion`);
    return { data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength), width: info.width, height: info.height, format: header.format };
  } catch (error) {
    throw new ImageDecodeError(`the ${header.format} image is corrupt or truncated and cannot be decoded`, { cause: error });
  }
}

/** Decodes an encoded image; throws ImageDecodeError for empty, oversized, corrupt or unsupported input. */
export async function decodeImage(bytes: Uint8Array, options: DecodeOptions = {}): Promise<RgbImage> {
  return decodeWithHeader(bytes, await readImageHeader(bytes, options));
}
