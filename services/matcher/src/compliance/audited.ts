/**
 * Running a gallery call with its audit event: the one place that decides what every audited rpc
 * records (who, which tenant, what, which subject, the outcome), for the matcher and compliance
 * services alike.
 */
import { AuditOutcome, type AuditAction, type CallerContext } from '@faceprint/contracts/common';
import { FaceprintError } from '@faceprint/service-kit';
import { status } from '@grpc/grpc-js';
import type { Gallery } from '../gallery/gallery.js';

/** Who did what, for the audit trail. */
export const auditBase = (context: CallerContext | undefined, action: AuditAction) => ({
  tenantId: context!.tenantId,
  actor: context?.callerId || 'unknown',
  action,
  requestId: context?.requestId ?? '',
});

/** What an audited call returns: its response, and the details (and subject) its event records. */
export interface AuditedResult<T> {
  readonly response: T;
  readonly details: Record<string, string>;
  /** The subject the event names, when the call found one (overrides the requested subject). */
  readonly subjectId?: string | undefined;
}

/**
 * Runs a validated call and records it in the audit trail: on success with the details the call
 * returns, on a refusal (NOT_FOUND, FAILED_PRECONDITION) with the status.
 */
export async function auditedCall<T>(
  gallery: Gallery,
  context: CallerContext | undefined,
  action: AuditAction,
  subjectId: string | undefined,
  work: () => Promise<AuditedResult<T>>,
): Promise<T> {
  try {
    const done = await work();
    await gallery.audit.record({ ...auditBase(context, action), subjectId: done.subjectId ?? subjectId, outcome: AuditOutcome.SUCCESS, details: done.details });
    return done.response;
  } catch (error) {
    if (error instanceof FaceprintError && (error.code === status.NOT_FOUND || error.code === status.FAILED_PRECONDITION)) {
      // A refused call names its subject only if the subject is known (has a pseudonym).
      await gallery.audit.record({ ...auditBase(context, action), subjectId, outcome: AuditOutcome.FAILURE, details: { status: status[error.code] } }, undefined, { linkOnly: true });
    }
    throw error;
  }
}
