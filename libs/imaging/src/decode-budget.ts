/**
 * A memory budget for the images a service holds decoded. A decoded image takes about 3 bytes a
 * pixel (a 40-megapixel photo: 120 MB, from a JPEG of a few hundred KB), and a service decodes
 * every request it is sent as soon as it arrives: measured, 16 such photos sent to the detector
 * at once took it from 250 MB to 2.1 GB, past its Kubernetes memory limit, so a burst of large
 * photos would have it killed. Here a call first reads the image's header (cheap, and where
 * oversized or corrupt input is refused), reserves the image's pixels, decodes and keeps them
 * until it releases them at the end of the call. Calls that do not fit wait, in order of arrival;
 * more than `maxWaiting` waiting calls and the next gets RESOURCE_EXHAUSTED at once.
 *
 * Written here rather than taken from a semaphore package: it is a few lines, and it has to weigh
 * each call by its pixels, follow the call's cancellation and answer with faceprint's errors.
 */
import { IMAGE_MAX_PIXELS } from '@faceprint/contracts';
import { FaceprintError, int } from '@faceprint/service-kit';
import { decodeWithHeader, ImageDecodeError, readImageHeader, type ImageHeader, type RgbImage } from './decode.js';

/** A service's decode budget settings. */
export interface DecodeBudgetSettings {
  /** Pixels that may be decoded at once, over all calls; at least one image of the largest size. */
  readonly pixels: number;
  /** Calls that may wait for room; beyond it RESOURCE_EXHAUSTED. */
  readonly maxWaiting: number;
}

/** The variables' specs, for a service's `compileEnv` call (spread among its own). */
export const DECODE_BUDGET_ENV = {
  FACEPRINT_DECODE_BUDGET_PIXELS: int(IMAGE_MAX_PIXELS, 100 * IMAGE_MAX_PIXELS)({ default: 2 * IMAGE_MAX_PIXELS }),
  FACEPRINT_DECODE_MAX_WAITING: int(0, 100_000)({ default: 256 }),
};

/** The settings of a compiled environment that includes {@link DECODE_BUDGET_ENV}. */
export function decodeBudgetSettingsOf(compiled: { readonly FACEPRINT_DECODE_BUDGET_PIXELS: number; readonly FACEPRINT_DECODE_MAX_WAITING: number }): DecodeBudgetSettings {
  return { pixels: compiled.FACEPRINT_DECODE_BUDGET_PIXELS, maxWaiting: compiled.FACEPRINT_DECODE_MAX_WAITING };
}

/** A request image admitted into the budget: decode it, and release its pixels when the call is done. */
export interface AdmittedImage {
  /** The image's header (format, size). */
  readonly header: ImageHeader;
  /** Decodes the image; INVALID_ARGUMENT on the request's field when the body is corrupt. */
  decode(): Promise<RgbImage>;
  /** Gives the pixels back (idempotent). */
  release(): void;
}

interface Waiter {
  readonly pixels: number;
  readonly admit: () => void;
}

/** The decode budget of one service. */
export class DecodeBudget {
  readonly #settings: DecodeBudgetSettings;
  #inUse = 0;
  readonly #waiting: Waiter[] = [];

  constructor(settings: DecodeBudgetSettings) {
    this.#settings = settings;
  }

  /** Pixels reserved by calls now. */
  get pixelsInUse(): number {
    return this.#inUse;
  }

  /** Calls waiting for room. */
  get waiting(): number {
    return this.#waiting.length;
  }

  /**
   * Checks the header of a request image (INVALID_ARGUMENT on `field` when it is empty, too large,
   * corrupt or unsupported) and reserves its pixels, waiting for room while `signal` allows.
   */
  async admit(bytes: Uint8Array, signal: AbortSignal | undefined, field = 'image.content'): Promise<AdmittedImage> {
    const invalid = (error: unknown) => (error instanceof ImageDecodeError ? FaceprintError.invalidArgument([{ field, description: error.message }]) : error);
    const header = await readImageHeader(bytes).catch((error: unknown) => {
      throw invalid(error);
    });
    const pixels = Math.min(header.pixels, this.#settings.pixels);
    await this.#reserve(pixels, signal);
    let held = true;
    return {
      header,
      decode: () =>
        decodeWithHeader(bytes, header).catch((error: unknown) => {
          throw invalid(error);
        }),
      release: () => {
        if (!held) return;
        held = false;
        this.#inUse -= pixels;
        this.#admitWaiting();
      },
    };
  }

  #reserve(pixels: number, signal: AbortSignal | undefined): Promise<void> {
    signal?.throwIfAborted();
    if (this.#waiting.length === 0 && this.#inUse + pixels <= this.#settings.pixels) {
      this.#inUse += pixels;
      return Promise.resolve();
    }
    if (this.#waiting.length >= this.#settings.maxWaiting) {
      return Promise.reject(
        FaceprintError.resourceExhausted('decode-budget', `too many images are being decoded (${this.#waiting.length} calls waiting for room); try again shortly`, 100),
      );
    }
    return new Promise<void>((resolve, reject) => {
      const onAbort = () => {
        this.#waiting.splice(this.#waiting.indexOf(waiter), 1);
        this.#admitWaiting(); // a large image leaving the head of the line may let smaller ones in
        reject(signal!.reason as Error); // a DOMException, or the FaceprintError a server call aborts with
      };
      const waiter: Waiter = {
        pixels,
        admit: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        },
      };
      this.#waiting.push(waiter);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** Lets waiting calls in, first come first served, while they fit. */
  #admitWaiting(): void {
    while (this.#waiting.length > 0 && this.#inUse + this.#waiting[0]!.pixels <= this.#settings.pixels) {
      const next = this.#waiting.shift()!;
      this.#inUse += next.pixels;
      next.admit();
    }
  }
}
