/**
 * Checks of the matcher's request fields, each adding field violations to a RequestValidator so
 * that one INVALID_ARGUMENT lists everything wrong. Messages never echo vectors.
 */
import { decodeEmbedding } from '@faceprint/contracts';
import type { AlignedFace, CallerContext, Consent, Embedding } from '@faceprint/contracts/common';
import { LegalBasis, PixelFormat } from '@faceprint/contracts/common';
import { timestampDate } from '@bufbuild/protobuf/wkt';
import type { RequestValidator } from '@faceprint/service-kit';

/** Largest embedding dimension accepted. */
export const MAX_DIM = 4096;
/** How far from 1 an embedding's L2 norm may be. */
export const NORM_TOLERANCE = 1e-3;
/** Templates per enrolment. */
export const MAX_TEMPLATES_PER_ENROLL = 32;
/** Metadata entries per subject. */
export const MAX_METADATA_ENTRIES = 32;
/** How far in the future a consent time may be (clock skew between systems). */
const CLOCK_SKEW_MS = 5 * 60_000;
/** The longest retention accepted (100 years). */
const MAX_RETENTION_DAYS = 36_500;

export const TENANT_ID = /^[A-Za-z0-9._-]{1,64}$/;
const PURPOSE = /^[a-z][a-z0-9_]{0,63}$/;
const SHA256 = /^[0-9a-f]{64}$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** The tenant of a call: required, 1-64 of [A-Za-z0-9._-]. Returns the tenant id. */
export function checkContext(v: RequestValidator, context: CallerContext | undefined): string {
  const tenantId = context?.tenantId ?? '';
  v.check(TENANT_ID.test(tenantId), 'context.tenant_id', tenantId ? 'must be 1-64 of [A-Za-z0-9._-]' : 'is required');
  return tenantId;
}

/** A template id: a UUID. */
export function checkTemplateId(v: RequestValidator, field: string, templateId: string): void {
  v.check(UUID.test(templateId), field, templateId ? 'must be a template id (a lower-case UUID)' : 'is required');
}

/**
 * An embedding: a model ref with name and version, `dim` in 1..4096, `4 * dim` bytes of finite
 * float32 values with an L2 norm of 1 (within 1e-3). Returns the vector when it is valid.
 */
export function checkEmbedding(v: RequestValidator, field: string, embedding: Embedding | undefined): Float32Array | undefined {
  if (!embedding) {
    v.add(field, 'is required');
    return undefined;
  }
  const before = v.violations.length;
  v.check(Boolean(embedding.model?.name), `${field}.model.name`, 'is required: embeddings of different models are never compared');
  v.check((embedding.model?.version ?? 0) > 0, `${field}.model.version`, 'is required');
  if (embedding.dim < 1 || embedding.dim > MAX_DIM) {
    v.add(`${field}.dim`, `must be between 1 and ${MAX_DIM}`);
    return undefined;
  }
  if (embedding.vector.byteLength !== embedding.dim * 4) {
    v.add(`${field}.vector`, `must hold ${embedding.dim} float32 values (${embedding.dim * 4} bytes) for dim ${embedding.dim}, got ${embedding.vector.byteLength} bytes`);
    return undefined;
  }
  const vector = decodeEmbedding(embedding.vector, embedding.dim);
  let squares = 0;
  for (const value of vector) squares += value * value;
  if (!Number.isFinite(squares)) {
    v.add(`${field}.vector`, 'must hold finite values (found NaN or Infinity)');
  } else if (Math.abs(Math.sqrt(squares) - 1) > NORM_TOLERANCE) {
    v.add(`${field}.vector`, `must be L2-normalised (norm 1 within ${NORM_TOLERANCE}), got norm ${Math.sqrt(squares).toFixed(4)}`);
  }
  return v.violations.length === before ? vector : undefined;
}

/** A consent record: every field the ledger needs, `given_at` not in the future, retention not yet over. */
export function checkConsent(v: RequestValidator, field: string, consent: Consent | undefined): void {
  if (!consent) {
    v.add(field, 'is required: biometric templates need a legal basis (GDPR Art. 9)');
    return;
  }
  v.check(consent.legalBasis !== LegalBasis.UNSPECIFIED && LegalBasis[consent.legalBasis] !== undefined, `${field}.legal_basis`, 'is required');
  v.check(PURPOSE.test(consent.purpose), `${field}.purpose`, consent.purpose ? 'must be lower_snake_case, at most 64 characters' : 'is required');
  v.check(consent.collectionPoint.length >= 1 && consent.collectionPoint.length <= 256, `${field}.collection_point`, 'is required (at most 256 characters)');
  v.check(consent.evidenceRef.length <= 256, `${field}.evidence_ref`, 'must be at most 256 characters');
  const retentionOk = consent.retentionDays >= 1 && consent.retentionDays <= MAX_RETENTION_DAYS;
  v.check(retentionOk, `${field}.retention_days`, `is required: between 1 and ${MAX_RETENTION_DAYS} days`);
  if (!consent.givenAt) {
    v.add(`${field}.given_at`, 'is required');
    return;
  }
  const givenAt = timestampDate(consent.givenAt).getTime();
  if (givenAt > Date.now() + CLOCK_SKEW_MS) v.add(`${field}.given_at`, 'must not be in the future');
  else if (retentionOk && givenAt + consent.retentionDays * 86_400_000 <= Date.now()) {
    v.add(`${field}.retention_days`, 'the retention period has already ended: such templates may not be enrolled');
  }
}

/** Subject metadata: at most 32 entries, keys 1-64 characters, values at most 1024. */
export function checkMetadata(v: RequestValidator, field: string, metadata: Record<string, string>): void {
  const entries = Object.entries(metadata);
  v.check(entries.length <= MAX_METADATA_ENTRIES, field, `at most ${MAX_METADATA_ENTRIES} entries`);
  for (const [key, value] of entries) {
    v.check(key.length >= 1 && key.length <= 64, `${field}[${JSON.stringify(key.slice(0, 64))}]`, 'keys must be 1-64 characters');
    v.check(value.length <= 1024, `${field}[${JSON.stringify(key.slice(0, 64))}]`, 'values must be at most 1024 characters');
  }
}

/** A quality score in [0, 1] and an optional lower-case hex sha256. */
export function checkTemplateExtras(v: RequestValidator, field: string, quality: number, sourceImageSha256: string): void {
  v.check(Number.isFinite(quality) && quality >= 0 && quality <= 1, `${field}.quality`, 'must be between 0 and 1');
  v.check(sourceImageSha256 === '' || SHA256.test(sourceImageSha256), `${field}.source_image_sha256`, 'must be a lower-case hex sha256');
}

/** The largest side of an aligned crop the matcher keeps. */
export const CROP_SIDE_MAX = 1024;

/**
 * An aligned crop to keep with a template: only when the consent allows it, RGB8, of a sane size
 * with as many bytes as its size says.
 */
export function checkAlignedCrop(v: RequestValidator, field: string, crop: AlignedFace | undefined, consent: Consent | undefined): void {
  if (!crop) return;
  if (!consent?.retainAlignedCrops) {
    v.add(field, 'the consent does not allow keeping aligned crops (retain_aligned_crops); send none');
    return;
  }
  v.check(crop.format === PixelFormat.RGB8, `${field}.format`, 'must be PIXEL_FORMAT_RGB8');
  v.check(crop.width >= 1 && crop.width <= CROP_SIDE_MAX && crop.height >= 1 && crop.height <= CROP_SIDE_MAX, field, `must be 1-${CROP_SIDE_MAX} pixels a side`);
  v.check(crop.pixels.byteLength === crop.width * crop.height * 3, `${field}.pixels`, `must be width*height*3 = ${crop.width * crop.height * 3} bytes, got ${crop.pixels.byteLength}`);
}

/** A reference to the caller's own request record (ticket or case number): 1-128 printable characters. */
export function checkRequestRef(v: RequestValidator, field: string, requestRef: string): void {
  v.check(/^[\x20-\x7e]{1,128}$/.test(requestRef), field, requestRef ? 'must be 1-128 printable ASCII characters' : 'is required: the reference of the request this answers (ticket or case number)');
}
