/**
 * The ComplianceService handlers: erasure (Art. 17) with signed receipts, access export (Art. 15)
 * and the audit trail, which need the compliance role (from the gateway's authenticated caller
 * context); and the templates of subjects who consented to model improvement, for the trainer
 * (the model_training role). Erasures, exports and training use are themselves audited.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { timestampDate, timestampFromDate } from '@bufbuild/protobuf/wkt';
import { PAGE_SIZE_DEFAULT, PAGE_SIZE_MAX } from '@faceprint/contracts';
import { AuditAction, AuditOutcome, ErasureReason, LegalBasis, type CallerContext } from '@faceprint/contracts/common';
import { ComplianceService } from '@faceprint/contracts/matcher';
import { FaceprintError, implement, RequestValidator, validateSubjectId } from '@faceprint/service-kit';
import { fromDatabaseError, withDatabaseErrors } from '../database/database-errors.js';
import type { Gallery } from '../gallery/gallery.js';
import { decodePageToken, encodePageToken } from '../gallery/page-token.js';
import { checkContext, checkRequestRef } from '../matching/request-checks.js';
import type { AuditRecord } from './audit-log.js';
import { auditBase, auditedCall } from './audited.js';
import type { ReceiptSigner, SubjectEraser } from './erasure.js';

/** The role that may erase, export and read the audit trail. */
export const COMPLIANCE_ROLE = 'compliance';
/** The role that may take consented templates for model training (the trainer's). */
export const MODEL_TRAINING_ROLE = 'model_training';
/** The `type` of an export document: names its format and version. */
export const SUBJECT_EXPORT_TYPE = 'faceprint.subject_export.v1';
/** An export holds at most this many of the subject's audit events, newest first (ListAuditEvents pages through all). */
const EXPORT_AUDIT_EVENTS_MAX = 10_000;
const NOTE_MAX = 1024;

/** PERMISSION_DENIED unless the caller (as the gateway authenticated it) holds `role`. */
function requireRole(context: CallerContext | undefined, role: string): void {
  if (!context?.roles.includes(role)) throw FaceprintError.permissionDenied(role, `this call needs the "${role}" role`);
}

/** The export document (ExportSubjectResponse.document): everything held about one subject. */
export interface SubjectExportDocument {
  readonly type: typeof SUBJECT_EXPORT_TYPE;
  readonly exported_at: string;
  readonly tenant_id: string;
  readonly subject_id: string;
  readonly request_ref: string;
  readonly subject: { readonly metadata: Record<string, string>; readonly create_time: string; readonly update_time: string; readonly retain_until: string | null };
  readonly consents: readonly {
    readonly legal_basis: string;
    readonly purpose: string;
    readonly given_at: string;
    readonly collection_point: string;
    readonly retention_days: number;
    readonly evidence_ref: string;
    readonly retain_until: string;
    readonly retain_aligned_crops: boolean;
    readonly record_time: string;
  }[];
  readonly templates: readonly {
    readonly template_id: string;
    readonly model: { readonly name: string; readonly version: number; readonly sha256: string };
    readonly dim: number;
    readonly quality: number;
    readonly source_image_sha256: string;
    readonly create_time: string;
    /** Whether the aligned crop it was made from is kept (sealed). */
    readonly aligned_crop_retained: boolean;
    /** The kept crop itself, only when the export asked for the biometric data (include_vectors). */
    readonly aligned_crop?: { readonly width: number; readonly height: number; readonly format: 'RGB8'; readonly pixels_base64: string };
    /** Only when the export asked for vectors. */
    readonly vector?: number[];
  }[];
  /** The subject's audit events, newest first (at most 10,000: `audit_events_complete` says whether that is all). */
  readonly audit_events: readonly ReturnType<typeof auditEventJson>[];
  readonly audit_events_complete: boolean;
}

const auditEventJson = (e: AuditRecord) => ({
  event_id: e.eventId,
  time: e.time.toISOString(),
  actor: e.actor,
  action: AuditAction[e.action] ?? String(e.action),
  request_id: e.requestId,
  outcome: AuditOutcome[e.outcome] ?? String(e.outcome),
  details: e.details,
});

/** The compliance service over the gallery that `ready` returns once loaded. */
export function complianceService(ready: () => { gallery: Gallery; eraser: SubjectEraser; signer: ReceiptSigner }, callers: { gatewayIdentity: string; trainerIdentity: string }) {
  return implement(
    ComplianceService,
    withDatabaseErrors({
      async eraseSubject(request) {
        const v = new RequestValidator();
        const tenantId = checkContext(v, request.context);
        v.throwIfInvalid();
        requireRole(request.context, COMPLIANCE_ROLE);
        // Never "all": the subject is always named.
        validateSubjectId(v, 'subject_id', request.subjectId);
        checkRequestRef(v, 'request_ref', request.requestRef);
        v.check(request.reason !== ErasureReason.UNSPECIFIED && ErasureReason[request.reason] !== undefined, 'reason', 'is required: why the subject is erased');
        v.check(request.note.length <= NOTE_MAX, 'note', `must be at most ${NOTE_MAX} characters`);
        v.throwIfInvalid();
        const { gallery, eraser } = ready();
        const base = auditBase(request.context, AuditAction.ERASE);
        const outcome = await eraser.erase({ tenantId, subjectId: request.subjectId, requestRef: request.requestRef, reason: request.reason, note: request.note, actor: base.actor, requestId: base.requestId });
        if (!outcome) {
          await gallery.audit.record({ ...base, subjectId: request.subjectId, outcome: AuditOutcome.FAILURE, details: { status: 'NOT_FOUND', request_ref: request.requestRef } }, undefined, { linkOnly: true });
          throw FaceprintError.notFound('subject', request.subjectId, tenantId);
        }
        if (outcome.replayed) {
          // The first erasure's event names the (now unlinked) subject; the repeat names the receipt.
          await gallery.audit.record({ ...base, outcome: AuditOutcome.SUCCESS, details: { replayed: 'true', request_ref: request.requestRef, receipt_id: outcome.receipt.receiptId } });
        }
        return outcome;
      },

      async exportSubject(request) {
        const v = new RequestValidator();
        const tenantId = checkContext(v, request.context);
        v.throwIfInvalid();
        requireRole(request.context, COMPLIANCE_ROLE);
        validateSubjectId(v, 'subject_id', request.subjectId);
        checkRequestRef(v, 'request_ref', request.requestRef);
        v.throwIfInvalid();
        const { gallery } = ready();
        return auditedCall(gallery, request.context, AuditAction.EXPORT, request.subjectId, async () => {
          const held = await gallery.store.exportSubject(tenantId, request.subjectId, request.includeVectors);
          if (!held) throw FaceprintError.notFound('subject', request.subjectId, tenantId);
          const events: AuditRecord[] = [];
          let before = 0n;
          while (events.length < EXPORT_AUDIT_EVENTS_MAX) {
            const page = await gallery.audit.list(tenantId, { subjectId: request.subjectId, actions: [] }, before, Math.min(PAGE_SIZE_MAX, EXPORT_AUDIT_EVENTS_MAX - events.length));
            events.push(...page);
            if (page.length === 0) break;
            before = page[page.length - 1]!.eventPk;
          }
          const { subject, consents, templates } = held;
          const document: SubjectExportDocument = {
            type: SUBJECT_EXPORT_TYPE,
            exported_at: new Date().toISOString(),
            tenant_id: tenantId,
            subject_id: subject.subjectId,
            request_ref: request.requestRef,
            subject: {
              metadata: subject.metadata,
              create_time: subject.createTime.toISOString(),
              update_time: subject.updateTime.toISOString(),
              retain_until: subject.consent?.retainUntil.toISOString() ?? null,
            },
            consents: consents.map((c) => ({
              legal_basis: LegalBasis[c.legalBasis] ?? String(c.legalBasis),
              purpose: c.purpose,
              given_at: c.givenAt.toISOString(),
              collection_point: c.collectionPoint,
              retention_days: c.retentionDays,
              evidence_ref: c.evidenceRef,
              retain_until: c.retainUntil.toISOString(),
              retain_aligned_crops: c.retainAlignedCrops ?? false,
              record_time: c.recordTime.toISOString(),
            })),
            templates: templates.map((t) => ({
              template_id: t.templateId,
              model: { name: t.model.name, version: t.model.version, sha256: t.model.sha256 },
              dim: t.dim,
              quality: t.quality,
              source_image_sha256: t.sourceImageSha256,
              create_time: t.createTime.toISOString(),
              aligned_crop_retained: t.alignedCropRetained,
              ...(t.crop ? { aligned_crop: { width: t.crop.width, height: t.crop.height, format: 'RGB8' as const, pixels_base64: Buffer.from(t.crop.pixels).toString('base64') } } : {}),
              ...(t.vector ? { vector: Array.from(t.vector) } : {}),
            })),
            // This export's own event is recorded after the document is made.
            audit_events: events.map(auditEventJson),
            audit_events_complete: events.length < EXPORT_AUDIT_EVENTS_MAX,
          };
          return {
            response: { document: new TextEncoder().encode(JSON.stringify(document)), contentType: 'application/json' },
            details: { request_ref: request.requestRef, include_vectors: String(request.includeVectors) },
          };
        });
      },

      getPublicKeys() {
        return Promise.resolve({ keys: [...ready().signer.publicKeys] });
      },

      async listAuditEvents(request) {
        const v = new RequestValidator();
        const tenantId = checkContext(v, request.context);
        v.throwIfInvalid();
        requireRole(request.context, COMPLIANCE_ROLE);
        if (request.subjectId) validateSubjectId(v, 'subject_id', request.subjectId);
        v.check(request.pageSize <= PAGE_SIZE_MAX, 'page_size', `must be at most ${PAGE_SIZE_MAX}`);
        v.check(request.actions.every((a) => a !== AuditAction.UNSPECIFIED && AuditAction[a] !== undefined), 'actions', 'must name known actions');
        const start = request.startTime && timestampDate(request.startTime);
        const end = request.endTime && timestampDate(request.endTime);
        v.check(!start || !end || start < end, 'end_time', 'must be after start_time');
        v.throwIfInvalid();
        const filter = { subjectId: request.subjectId || undefined, actions: request.actions, start, end };
        const query = `audit:${JSON.stringify([filter.subjectId, [...filter.actions].sort(), start?.toISOString(), end?.toISOString()])}`;
        const before = decodePageToken(request.pageToken, tenantId, query);
        const pageSize = request.pageSize || PAGE_SIZE_DEFAULT;
        const events = await ready().gallery.audit.list(tenantId, filter, before ? BigInt(before) : 0n, pageSize + 1);
        const page = events.slice(0, pageSize);
        return {
          events: page.map((e) => ({
            eventId: e.eventId,
            time: timestampFromDate(e.time),
            tenantId: e.tenantId,
            actor: e.actor,
            action: e.action,
            subjectId: e.subjectId ?? '',
            requestId: e.requestId,
            outcome: e.outcome,
            details: e.details,
          })),
          nextPageToken: events.length > pageSize ? encodePageToken(tenantId, query, String(page[page.length - 1]!.eventPk)) : '',
        };
      },

      async *exportTrainingTemplates(request) {
        const v = new RequestValidator();
        const tenantId = checkContext(v, request.context);
        v.throwIfInvalid();
        requireRole(request.context, MODEL_TRAINING_ROLE);
        v.check(Boolean(request.model?.name), 'model.name', 'is required: templates of different models never train together');
        v.check((request.model?.version ?? 0) > 0, 'model.version', 'is required');
        checkRequestRef(v, 'request_ref', request.requestRef);
        v.throwIfInvalid();
        const { gallery } = ready();
        const model = { name: request.model!.name, version: request.model!.version };
        // Each subject's use is recorded before its templates leave: an interrupted stream is
        // over-reported, never under-reported.
        const base = auditBase(request.context, AuditAction.TRAINING_EXPORT);
        const subjects = await (async () => {
          try {
            const consented = await gallery.store.trainingSubjects(tenantId, model);
            for (const subject of consented) {
              await gallery.audit.record({ ...base, subjectId: subject.subjectId, outcome: AuditOutcome.SUCCESS, details: { request_ref: request.requestRef, model: `${model.name}@${model.version}`, template_count: String(subject.vectors.length) } });
            }
            return consented;
          } catch (error) {
            throw fromDatabaseError(error);
          }
        })();
        // Labels hold within this call only: a random key, so no two exports (and no subject id) can be linked through them.
        const labelKey = randomBytes(32);
        for (const subject of subjects) {
          const label = createHmac('sha256', labelKey).update(subject.subjectId).digest('hex').slice(0, 16);
          for (const vector of subject.vectors) yield { label, vector, dim: vector.byteLength / 4 };
        }
      },
    }),
    // The gateway's calls carry its callers' context; the trainer's only ask for consented training data.
    { callers: (method) => [method.localName === 'exportTrainingTemplates' ? callers.trainerIdentity : callers.gatewayIdentity] },
  );
}
