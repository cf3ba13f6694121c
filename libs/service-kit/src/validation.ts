/**
 * Request validation: collect every invalid field, then fail once with INVALID_ARGUMENT and a
 * google.rpc.BadRequest, so that a caller can fix all of them in one round trip.
 */
import type { DetectOptions, Image, ModelRef } from '@faceprint/contracts/common';
import { IMAGE_MAX_BYTES, SUBJECT_ID } from '@faceprint/contracts';
import { FaceprintError, type FieldViolation } from './errors.js';

/** Collects field violations of one request. */
export class RequestValidator {
  readonly #violations: FieldViolation[] = [];

  /** Records a violation on `field`. */
  add(field: string, description: string): this {
    this.#violations.push({ field, description });
    return this;
  }

  /** Records a violation on `field` unless `ok` holds. */
  check(ok: boolean, field: string, description: string): this {
    if (!ok) this.add(field, description);
    return this;
  }

  /** The violations recorded so far. */
  get violations(): readonly FieldViolation[] {
    return this.#violations;
  }

  /** Throws INVALID_ARGUMENT listing every violation, if there is any. */
  throwIfInvalid(): void {
    if (this.#violations.length > 0) throw FaceprintError.invalidArgument(this.#violations);
  }
}

/**
 * Checks an encoded image against the contract: present, non-empty, at most
 * {@link IMAGE_MAX_BYTES}. Decoding checks (format, pixel count) belong to the decoder.
 */
export function validateImage(v: RequestValidator, field: string, image: Image | undefined): void {
  if (!image) {
    v.add(field, 'required');
    return;
  }
  if (image.content.byteLength === 0) {
    v.add(`${field}.content`, 'must not be empty');
  } else if (image.content.byteLength > IMAGE_MAX_BYTES) {
    v.add(`${field}.content`, `is ${image.content.byteLength} bytes; the limit is ${IMAGE_MAX_BYTES} bytes (${IMAGE_MAX_BYTES / 1024 / 1024} MiB)`);
  }
}

/** Checks detection options against their documented ranges. Unset options are fine. */
export function validateDetectOptions(v: RequestValidator, field: string, options: DetectOptions | undefined): void {
  if (!options) return;
  const { scoreThreshold, maxFaces } = options;
  if (scoreThreshold !== undefined) {
    v.check(
      Number.isFinite(scoreThreshold) && scoreThreshold > 0 && scoreThreshold <= 1,
      `${field}.score_threshold`,
      'must be in (0, 1]',
    );
  }
  if (maxFaces !== undefined) {
    v.check(maxFaces >= 1 && maxFaces <= 1000, `${field}.max_faces`, 'must be between 1 and 1000');
  }
}

/**
 * Checks the image and options of a detection request (the detector's and the gateway's share
 * these fields); throws INVALID_ARGUMENT listing every bad field.
 */
export function validateDetectRequest(request: { readonly image?: Image | undefined; readonly options?: DetectOptions | undefined }): void {
  const v = new RequestValidator();
  validateImage(v, 'image', request.image);
  validateDetectOptions(v, 'options', request.options);
  v.throwIfInvalid();
}

/** A subject id as the gallery stores it: required, 1-128 of [A-Za-z0-9._:@-] (the gateway and the matcher check it alike). */
export function validateSubjectId(v: RequestValidator, field: string, subjectId: string): void {
  v.check(SUBJECT_ID.test(subjectId), field, subjectId ? 'must be 1-128 of [A-Za-z0-9._:@-]' : 'is required');
}

/** An optional target false-match rate: in (0, 0.5] (the model must then have a threshold calibrated for it). */
export function validateTargetFar(v: RequestValidator, field: string, targetFar: number | undefined): void {
  if (targetFar === undefined) return;
  v.check(Number.isFinite(targetFar) && targetFar > 0 && targetFar <= 0.5, field, 'must be a false-match rate in (0, 0.5], e.g. 1e-4');
}

/**
 * Fails with FAILED_PRECONDITION (MODEL_VERSION) unless the model a caller pinned (a name, a
 * version, or both; unset: any) is the one `service` serves: a crop made for one model version
 * must not run on another after a hot swap.
 */
export function checkModelPin(pin: ModelRef | undefined, serving: ModelRef, service: string, hint = ''): void {
  if (!pin || (!pin.name && !pin.version)) return;
  if ((pin.name !== '' && pin.name !== serving.name) || (pin.version !== 0 && pin.version !== serving.version)) {
    throw FaceprintError.failedPrecondition('MODEL_VERSION', `${pin.name}:${pin.version}`, `the ${service} serves ${serving.name} v${serving.version}, not the requested ${pin.name || serving.name} v${pin.version || 'any'}${hint}`);
  }
}
