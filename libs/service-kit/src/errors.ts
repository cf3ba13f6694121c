/**
 * One error type for every faceprint service, mapped to gRPC status codes with google.rpc
 * error details. The message and details are what the client sees; `cause` is kept for the
 * server's logs and never sent. Neither may hold images or embeddings.
 */
import { create, createRegistry, fromBinary, toBinary } from '@bufbuild/protobuf';
import { anyPack, anyUnpack, durationFromMs } from '@bufbuild/protobuf/wkt';
import {
  BadRequestSchema,
  type BadRequest,
  type ErrorInfo,
  type PreconditionFailure,
  type QuotaFailure,
  type ResourceInfo,
  type RetryInfo,
  ErrorInfoSchema,
  PreconditionFailureSchema,
  QuotaFailureSchema,
  ResourceInfoSchema,
  RetryInfoSchema,
  StatusSchema,
} from '@faceprint/contracts/google-rpc';
import { Metadata, status, type ServiceError, type StatusObject } from '@grpc/grpc-js';

/** The trailer that carries a serialised google.rpc.Status (the gRPC rich error model). */
export const STATUS_DETAILS_TRAILER = 'grpc-status-details-bin';

/** The google.rpc.ErrorInfo domain of faceprint's errors. */
export const ERROR_DOMAIN = 'faceprint.dev';

/** One invalid request field, as in google.rpc.BadRequest.FieldViolation. */
export interface FieldViolation {
  /** Dot-separated path to the field, e.g. `image.content`. */
  readonly field: string;
  /** Why the value is invalid. Never echoes biometric data. */
  readonly description: string;
}

/** The error details faceprint sends, by google.rpc type. */
export type ErrorDetail = BadRequest | ErrorInfo | PreconditionFailure | QuotaFailure | ResourceInfo | RetryInfo;

const detailRegistry = createRegistry(
  BadRequestSchema,
  ErrorInfoSchema,
  PreconditionFailureSchema,
  QuotaFailureSchema,
  ResourceInfoSchema,
  RetryInfoSchema,
);

/** Options of a FaceprintError. */
export interface FaceprintErrorOptions {
  /** Typed details sent to the client. */
  readonly details?: readonly ErrorDetail[];
  /** The internal cause, logged by the server and never sent. */
  readonly cause?: unknown;
}

/**
 * The error every faceprint handler throws. Thrown values of any other type reach the client
 * as INTERNAL with a generic message (see {@link FaceprintError.from}).
 */
export class FaceprintError extends Error {
  override readonly name = 'FaceprintError';
  /** The gRPC status code. */
  readonly code: status;
  /** Typed details sent to the client. */
  readonly details: readonly ErrorDetail[];

  constructor(code: status, message: string, options: FaceprintErrorOptions = {}) {
    super(message, { cause: options.cause });
    this.code = code;
    this.details = options.details ?? [];
  }

  /** INVALID_ARGUMENT with a google.rpc.BadRequest listing every invalid field. */
  static invalidArgument(violations: readonly FieldViolation[], message?: string): FaceprintError {
    const summary = message ?? violations.map((v) => `${v.field}: ${v.description}`).join('; ');
    return new FaceprintError(status.INVALID_ARGUMENT, summary, {
      details: [create(BadRequestSchema, { fieldViolations: violations.map((v) => ({ ...v })) })],
    });
  }

  /** NOT_FOUND with a google.rpc.ResourceInfo naming the missing resource. */
  static notFound(resourceType: string, resourceName: string, owner = ''): FaceprintError {
    return new FaceprintError(status.NOT_FOUND, `${resourceType} "${resourceName}" not found`, {
      details: [create(ResourceInfoSchema, { resourceType, resourceName, owner, description: 'not found' })],
    });
  }

  /** FAILED_PRECONDITION with a google.rpc.PreconditionFailure. */
  static failedPrecondition(type: string, subject: string, description: string): FaceprintError {
    return new FaceprintError(status.FAILED_PRECONDITION, description, {
      details: [create(PreconditionFailureSchema, { violations: [{ type, subject, description }] })],
    });
  }

  /** RESOURCE_EXHAUSTED with a google.rpc.QuotaFailure and a retry hint. */
  static resourceExhausted(subject: string, description: string, retryAfterMs: number): FaceprintError {
    return new FaceprintError(status.RESOURCE_EXHAUSTED, description, {
      details: [
        create(QuotaFailureSchema, { violations: [{ subject, description }] }),
        create(RetryInfoSchema, { retryDelay: durationFromMs(retryAfterMs) }),
      ],
    });
  }

  /** PERMISSION_DENIED with a google.rpc.ErrorInfo naming the role the call needs. */
  static permissionDenied(role: string, description: string): FaceprintError {
    return new FaceprintError(status.PERMISSION_DENIED, description, {
      details: [create(ErrorInfoSchema, { reason: 'ROLE_REQUIRED', domain: ERROR_DOMAIN, metadata: { role } })],
    });
  }

  /** UNIMPLEMENTED for an rpc that a later release fills in. */
  static unimplemented(method: string): FaceprintError {
    return new FaceprintError(status.UNIMPLEMENTED, `${method} is not implemented yet`);
  }

  /** UNAVAILABLE: the service cannot serve now (loading, draining); the call may be retried. */
  static unavailable(message: string): FaceprintError {
    return new FaceprintError(status.UNAVAILABLE, message);
  }

  /**
   * Turns any thrown value into a FaceprintError. A gRPC error from a downstream call keeps its
   * code, message and details (they were made safe by the service that sent them); anything else
   * becomes INTERNAL with a generic message and the original kept as `cause`.
   */
  static from(error: unknown): FaceprintError {
    if (error instanceof FaceprintError) return error;
    if (isServiceError(error)) {
      return new FaceprintError(error.code, error.details, { details: readStatusDetails(error.metadata), cause: error });
    }
    return new FaceprintError(status.INTERNAL, 'internal error', { cause: error });
  }

  /** The field violations of the google.rpc.BadRequest details (empty when there is none). */
  get fieldViolations(): FieldViolation[] {
    return this.details.flatMap((detail) =>
      detail.$typeName === 'google.rpc.BadRequest' ? detail.fieldViolations.map(({ field, description }) => ({ field, description })) : [],
    );
  }

  /** The error with a machine-readable google.rpc.ErrorInfo reason added. */
  withReason(reason: string, metadata: Record<string, string> = {}): FaceprintError {
    return new FaceprintError(this.code, this.message, {
      details: [...this.details, create(ErrorInfoSchema, { reason, domain: ERROR_DOMAIN, metadata })],
      cause: this.cause,
    });
  }

  /** The grpc-js status object sent to the client: code, safe message, details trailer. */
  toStatus(): Partial<StatusObject> & { code: status; details: string; metadata: Metadata } {
    const metadata = new Metadata();
    const rpcStatus = create(StatusSchema, {
      code: this.code,
      message: this.message,
      details: this.details.map((detail) => anyPack(detailRegistry.getMessage(detail.$typeName)!, detail)),
    });
    metadata.set(STATUS_DETAILS_TRAILER, Buffer.from(toBinary(StatusSchema, rpcStatus)));
    return { code: this.code, details: this.message, metadata };
  }
}

/** True for the errors grpc-js clients reject with. */
export function isServiceError(error: unknown): error is ServiceError {
  return (
    error instanceof Error &&
    typeof (error as Partial<ServiceError>).code === 'number' &&
    (error as Partial<ServiceError>).metadata instanceof Metadata
  );
}

/** Decodes the google.rpc details of a gRPC error's trailers; unknown detail types are skipped. */
export function readStatusDetails(metadata: Metadata): ErrorDetail[] {
  const [raw] = metadata.get(STATUS_DETAILS_TRAILER);
  if (!(raw instanceof Buffer)) return [];
  const rpcStatus = fromBinary(StatusSchema, raw);
  return rpcStatus.details.flatMap((any) => {
    const detail = anyUnpack(any, detailRegistry);
    return detail ? [detail as ErrorDetail] : [];
  });
}
