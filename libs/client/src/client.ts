/** The gateway client: one method per public rpc, with the defaults a caller expects. */
import { randomUUID } from 'node:crypto';
import { create } from '@bufbuild/protobuf';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import { ConsentSchema, ErasureReason, LegalBasis, type Box, type Consent, type SigningKey } from '@faceprint/contracts/common';
import {
  ApiKeyService,
  ComplianceService,
  FaceService,
  type CreateApiKeyResponse,
  type ListApiKeysResponse,
  type RevokeApiKeyResponse,
  type RotateApiKeyResponse,
  type CompareResponse,
  type DetectResponse,
  type GetGalleryStatusResponse,
  type ReembedGalleryResponse,
  type EnrollResponse,
  type EraseSubjectResponse,
  type IdentifyResponse,
  type VerifyResponse,
  VerifyPurpose,
} from '@faceprint/contracts/gateway';
import { createClient, DEFAULT_GRPC_PORTS, type ServiceClient } from '@faceprint/service-kit/clients';
import type { ChannelCredentials } from '@grpc/grpc-js';

/** The local mesh's gateway. */
export const DEFAULT_TARGET = `127.0.0.1:${DEFAULT_GRPC_PORTS.gateway}`;

/** Where the gateway is and who is calling. */
export interface FaceprintClientOptions {
  /** `host:port` of the gateway. Default: the local mesh, 127.0.0.1:50050. */
  readonly target?: string;
  /** The API key (sent as `authorization: Bearer <key>`). */
  readonly apiKey?: string;
  /** Deadline of each call, in ms. Default: 60000. */
  readonly timeoutMs?: number;
  /** Channel credentials (TLS). Default: plaintext, as on loopback. */
  readonly credentials?: ChannelCredentials;
}

/** The consent an enrolment records; unset fields take the defaults of {@link consentRecord}. */
export interface ConsentInput {
  /** Default: explicit consent (GDPR Art. 9(2)(a)). */
  readonly basis?: LegalBasis;
  /** Default: `access_control`. */
  readonly purpose?: string;
  /** Default: now. */
  readonly givenAt?: Date;
  /** Default: `faceprint-client`. */
  readonly collectionPoint?: string;
  /** Default: 365. */
  readonly retentionDays?: number;
  readonly evidenceRef?: string;
  /** The subject agreed that aligned crops be kept to re-create templates for a new model. Default: false. */
  readonly retainAlignedCrops?: boolean;
}

/** A Consent message from {@link ConsentInput}. */
export function consentRecord(input: ConsentInput = {}): Consent {
  return create(ConsentSchema, {
    legalBasis: input.basis ?? LegalBasis.EXPLICIT_CONSENT,
    purpose: input.purpose ?? 'access_control',
    givenAt: timestampFromDate(input.givenAt ?? new Date()),
    collectionPoint: input.collectionPoint ?? 'faceprint-client',
    retentionDays: input.retentionDays ?? 365,
    evidenceRef: input.evidenceRef ?? '',
    retainAlignedCrops: input.retainAlignedCrops ?? false,
  });
}

/** An image, and the face to use when it holds several. */
export type ImageInput = Uint8Array | { readonly content: Uint8Array; readonly faceRegion?: Box };
const faceImage = (input: ImageInput) => (input instanceof Uint8Array ? { image: { content: input } } : { image: { content: input.content }, faceRegion: input.faceRegion });

/** A client of one gateway. */
export class FaceprintClient {
  readonly #faces: ServiceClient<typeof FaceService>;
  readonly #compliance: ServiceClient<typeof ComplianceService>;
  readonly #apiKeys: ServiceClient<typeof ApiKeyService>;
  readonly #metadata: Record<string, string>;

  constructor(options: FaceprintClientOptions = {}) {
    const target = options.target ?? DEFAULT_TARGET;
    const clientOptions = { defaultTimeoutMs: options.timeoutMs ?? 60_000, ...(options.credentials ? { credentials: options.credentials } : {}) };
    this.#faces = createClient(FaceService, target, clientOptions);
    this.#compliance = createClient(ComplianceService, target, clientOptions);
    this.#apiKeys = createClient(ApiKeyService, target, clientOptions);
    this.#metadata = options.apiKey ? { authorization: `Bearer ${options.apiKey}` } : {};
  }

  #call(requestId?: string) {
    return { metadata: { ...this.#metadata, 'x-request-id': requestId ?? randomUUID() } };
  }

  /** Enrols a subject from 1-10 images, one face each. Idempotent under `requestId` (default: a new one). */
  enroll(input: { subjectId: string; images: readonly ImageInput[]; consent?: ConsentInput; metadata?: Record<string, string>; requestId?: string }): Promise<EnrollResponse> {
    const requestId = input.requestId ?? randomUUID();
    return this.#faces.enroll(
      { requestId, subjectId: input.subjectId, images: input.images.map(faceImage), consent: consentRecord(input.consent), subjectMetadata: input.metadata ?? {} },
      this.#call(requestId),
    );
  }

  /**
   * 1:1: does the face in `image` belong to `subjectId`? At `far` (default: the tenant's). With
   * `purpose` 'payment_verification' (or `frames`: more frames of the same capture) the gateway
   * also checks for a presentation attack; an attack is never a match (`liveness` says why).
   */
  verify(subjectId: string, image: ImageInput, options: { far?: number; purpose?: 'payment_verification' | 'login'; frames?: readonly ImageInput[] } = {}): Promise<VerifyResponse> {
    const purpose = options.purpose === 'payment_verification' ? VerifyPurpose.PAYMENT_VERIFICATION : options.purpose === 'login' ? VerifyPurpose.LOGIN : VerifyPurpose.UNSPECIFIED;
    return this.#faces.verify({ subjectId, image: faceImage(image), targetFar: options.far, purpose, frames: (options.frames ?? []).map(faceImage) }, this.#call());
  }

  /** Compares the faces of two images, without the gallery. */
  compare(first: ImageInput, second: ImageInput, options: { far?: number; signDecision?: boolean } = {}): Promise<CompareResponse> {
    return this.#faces.compare({ first: faceImage(first), second: faceImage(second), targetFar: options.far, signDecision: options.signDecision ?? false }, this.#call());
  }

  /** 1:N: the `top` (default 5) enrolled subjects most like the face in `image`. */
  identify(image: ImageInput, options: { top?: number; far?: number } = {}): Promise<IdentifyResponse> {
    return this.#faces.identify({ image: faceImage(image), topK: options.top ?? 5, targetFar: options.far }, this.#call());
  }

  /** Every face in `image`. */
  detect(image: Uint8Array): Promise<DetectResponse> {
    return this.#faces.detect({ image: { content: image } }, this.#call());
  }

  /** The gallery's model versions, and how many subjects need re-enrolment after a promotion. */
  galleryStatus(): Promise<GetGalleryStatusResponse> {
    return this.#faces.getGalleryStatus({}, this.#call());
  }

  /** After a model promotion: re-creates templates from kept crops with the serving model, yielding progress. */
  reembedGallery(): AsyncIterable<ReembedGalleryResponse> {
    return this.#faces.reembedGallery({}, this.#call());
  }

  /** The public keys erasure receipts and decision records are signed with: the active one first, then retired ones (any role). */
  async publicKeys(): Promise<SigningKey[]> {
    return (await this.#compliance.getPublicKeys({}, this.#call())).keys;
  }

  /** Erases a subject everywhere (compliance role); returns the signed receipt. */
  erase(subjectId: string, requestRef: string, options: { reason?: ErasureReason; note?: string } = {}): Promise<EraseSubjectResponse> {
    return this.#compliance.eraseSubject({ subjectId, requestRef, reason: options.reason ?? ErasureReason.SUBJECT_REQUEST, note: options.note ?? '' }, this.#call());
  }

  /** Everything held about a subject as a parsed JSON document (compliance role). */
  async export(subjectId: string, requestRef: string, options: { includeVectors?: boolean } = {}): Promise<unknown> {
    const exported = await this.#compliance.exportSubject({ subjectId, requestRef, includeVectors: options.includeVectors ?? false }, this.#call());
    return JSON.parse(new TextDecoder().decode(exported.document)) as unknown;
  }

  /** Closes the channels. */
  /** Makes an API key in the caller's tenant (admin role); the response holds its secret, shown only then. */
  createApiKey(keyId: string, roles: readonly string[]): Promise<CreateApiKeyResponse> {
    return this.#apiKeys.createApiKey({ keyId, roles: [...roles] }, this.#call());
  }

  /** The tenant's API keys, without secrets (admin role). */
  listApiKeys(): Promise<ListApiKeysResponse> {
    return this.#apiKeys.listApiKeys({}, this.#call());
  }

  /** Gives a key a new secret (admin role); the old one stays valid for `graceSeconds` (default 0). */
  rotateApiKey(keyId: string, options: { graceSeconds?: number } = {}): Promise<RotateApiKeyResponse> {
    return this.#apiKeys.rotateApiKey({ keyId, graceSeconds: options.graceSeconds ?? 0 }, this.#call());
  }

  /** Revokes a key (admin role). Idempotent. */
  revokeApiKey(keyId: string): Promise<RevokeApiKeyResponse> {
    return this.#apiKeys.revokeApiKey({ keyId }, this.#call());
  }

  close(): void {
    this.#faces.close();
    this.#compliance.close();
    this.#apiKeys.close();
  }
}
