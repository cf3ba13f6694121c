/**
 * A memory budget for the images a service is working on. A decoded image takes 3 bytes a pixel
 * (a 40-megapixel photo: 120 MB, from a JPEG of a few hundred KB), the detector adds its input
 * tensor (up to 4.9 MB at 640 px, whatever the image), and a service starts on every call it is
 * sent as soon as it arrives: measured, 16 such photos sent to the detector at once took it from
 * 250 MB to 2.1 GB, past its Kubernetes memory limit. Here a call first reads the image's header
 * (cheap, and where oversized or corrupt input is refused), reserves what the image and the
 * service's work on it will take, decodes, and gives the memory back when it answers. Calls that
 * do not fit wait, in order of arrival (a call larger than the whole budget waits until it can
 * run alone). A waiting call holds its encoded image, so the line is bounded too: with
 * `maxWaiting` calls waiting, or their encoded images adding up to the budget, the next gets
 * RESOURCE_EXHAUSTED at once.
 *
 * Written here rather than taken from a semaphore package: it is a few lines, and it has to weigh
 * each call by its image, follow the call's cancellation and answer with faceprint's errors.
 */
import { FaceprintError, int } from '@faceprint/service-kit';
import { decodeWithHeader, ImageDecodeError, readImageHeader, type RgbImage } from './decode.js';

/** Bytes a decoded pixel takes (8-bit RGB). */
const DECODED_BYTES_PER_PIXEL = 3;

/** A service's image memory settings. */
export interface ImageMemorySettings {
  /** Bytes the calls being worked on may take together. */
  readonly bytes: number;
  /** Calls that may wait for room; beyond it RESOURCE_EXHAUSTED. */
  readonly maxWaiting: number;
}

/** The variables' specs, for a service's `compileEnv` call (spread among its own). */
export const IMAGE_MEMORY_ENV = {
  FACEPRINT_IMAGE_MEMORY_MB: int(16, 1_048_576)({ default: 256 }),
  FACEPRINT_IMAGE_MAX_WAITING: int(0, 100_000)({ default: 256 }),
};

/** The settings of a compiled environment that includes {@link IMAGE_MEMORY_ENV}. */
export function imageMemorySettingsOf(compiled: { readonly FACEPRINT_IMAGE_MEMORY_MB: number; readonly FACEPRINT_IMAGE_MAX_WAITING: number }): ImageMemorySettings {
  return { bytes: compiled.FACEPRINT_IMAGE_MEMORY_MB * 1024 * 1024, maxWaiting: compiled.FACEPRINT_IMAGE_MAX_WAITING };
}

/** How a call is admitted. */
export interface AdmitOptions {
  /** The request field the image came in, for INVALID_ARGUMENT. Default: `image.content`. */
  readonly field?: string;
  /** Memory the service's work on the image takes besides the decoded image (tensors, crops). */
  readonly workingBytes?: number;
}

/** A request image admitted into the budget: decode it, and release its memory when the call is done. */
export interface AdmittedImage {
  /** Decodes the image; INVALID_ARGUMENT on the request's field when the body is corrupt. */
  decode(): Promise<RgbImage>;
  /** Gives the memory back (idempotent). */
  release(): void;
}

interface Waiter {
  /** What it will reserve. */
  readonly bytes: number;
  /** The size of its encoded image, held while it waits. */
  readonly encodedBytes: number;
  readonly admit: () => void;
}

/** The image memory budget of one service. */
export class ImageMemoryBudget {
  readonly #settings: ImageMemorySettings;
  #inUse = 0;
  readonly #waiting: Waiter[] = [];
  #waitingEncodedBytes = 0;

  constructor(settings: ImageMemorySettings) {
    this.#settings = settings;
  }

  /** Bytes reserved by calls now. */
  get bytesInUse(): number {
    return this.#inUse;
  }

  /** Calls waiting for room. */
  get waiting(): number {
    return this.#waiting.length;
  }

  /**
   * Checks the header of a request image (INVALID_ARGUMENT on the field when it is empty, too
   * large, corrupt or unsupported) and reserves its memory, waiting for room while `signal` allows.
   */
  async admit(bytes: Uint8Array, signal: AbortSignal | undefined, options: AdmitOptions = {}): Promise<AdmittedImage> {
    const field = options.field ?? 'image.content';
    const invalid = (error: unknown) => (error instanceof ImageDecodeError ? FaceprintError.invalidArgument([{ field, description: error.message }]) : error);
    const header = await readImageHeader(bytes).catch((error: unknown) => {
      throw invalid(error);
    });
    const reserved = Math.min(header.pixels * DECODED_BYTES_PER_PIXEL + (options.workingBytes ?? 0), this.#settings.bytes);
    await this.#reserve(reserved, bytes.byteLength, signal);
    let held = true;
    return {
      decode: () =>
        decodeWithHeader(bytes, header).catch((error: unknown) => {
          throw invalid(error);
        }),
      release: () => {
        if (!held) return;
        held = false;
        this.#inUse -= reserved;
        this.#admitWaiting();
      },
    };
  }

  #reserve(bytes: number, encodedBytes: number, signal: AbortSignal | undefined): Promise<void> {
    signal?.throwIfAborted();
    if (this.#waiting.length === 0 && this.#inUse + bytes <= this.#settings.bytes) {
      this.#inUse += bytes;
      return Promise.resolve();
    }
    if (this.#waiting.length >= this.#settings.maxWaiting || this.#waitingEncodedBytes + encodedBytes > this.#settings.bytes) {
      const mb = (this.#waitingEncodedBytes / 1024 / 1024).toFixed(1);
      return Promise.reject(
        FaceprintError.resourceExhausted('image-memory', `too many images are waiting for memory (${this.#waiting.length} calls, ${mb} MB); try again shortly`, 100),
      );
    }
    return new Promise<void>((resolve, reject) => {
      const onAbort = () => {
        this.#waiting.splice(this.#waiting.indexOf(waiter), 1);
        this.#waitingEncodedBytes -= encodedBytes;
        this.#admitWaiting(); // a large image leaving the head of the line may let smaller ones in
        reject(signal!.reason as Error); // a DOMException, or the FaceprintError a server call aborts with
      };
      const waiter: Waiter = {
        bytes,
        encodedBytes,
        admit: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        },
      };
      this.#waiting.push(waiter);
      this.#waitingEncodedBytes += encodedBytes;
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** Lets waiting calls in, first come first served, while they fit. */
  #admitWaiting(): void {
    while (this.#waiting.length > 0 && this.#inUse + this.#waiting[0]!.bytes <= this.#settings.bytes) {
      const next = this.#waiting.shift()!;
      this.#waitingEncodedBytes -= next.encodedBytes;
      this.#inUse += next.bytes;
      next.admit();
    }
  }
}
