/**
 * Limits that the protos document, in one place so that every service enforces the same ones.
 */

/** The largest encoded image accepted in `faceprint.common.v1.Image.content` (10 MiB). */
export const IMAGE_MAX_BYTES = 10 * 1024 * 1024;

/** The largest decoded image accepted, in pixels (a guard against decompression bombs). */
export const IMAGE_MAX_PIXELS = 40_000_000;

/** The default largest gRPC message a service receives or sends (32 MiB). */
export const GRPC_DEFAULT_MAX_MESSAGE_BYTES = 32 * 1024 * 1024;

/**
 * The gateway's default (64 MiB): the public edge reads an upload of up to 64 MiB, so that one over
 * the 10 MiB image limit (a 60 MB photo) is refused with that limit's own INVALID_ARGUMENT, not
 * grpc-js's "larger than max" below every handler. Its byte budget bounds how many it reads at once.
 */
export const GATEWAY_DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024;

/** The most images one gateway `Enroll` call accepts. */
export const ENROLL_MAX_IMAGES = 10;

/** The most frames of one capture the liveness service assesses together (a gateway `Verify`: its image and up to 9 more). */
export const LIVENESS_MAX_FRAMES = 10;

/** The most crops one embedder `Embed` call accepts. */
export const EMBED_MAX_FACES = 256;

/** The largest page a `List*` call returns. */
export const PAGE_SIZE_MAX = 1000;

/** The page size used when a `List*` call leaves `page_size` at 0. */
export const PAGE_SIZE_DEFAULT = 100;

/** A subject id: 1-128 of [A-Za-z0-9._:@-] (the gateway checks it before any image is processed, the matcher again). */
export const SUBJECT_ID = /^[A-Za-z0-9._:@-]{1,128}$/;

/** The roles an API key can hold: the face API, compliance (erasure, export, audit), key management. */
export const API_KEY_ROLES = ['operator', 'compliance', 'admin'] as const;

/** An API key id: 1-128 of [A-Za-z0-9._:@-] (it is the caller id in the audit trail). */
export const API_KEY_ID = /^[A-Za-z0-9._:@-]{1,128}$/;

/** The longest an API key's old secret stays valid after a rotation (30 days). */
export const API_KEY_ROTATION_GRACE_MAX_SECONDS = 30 * 24 * 3600;
