/** Gallery records as protobuf messages. */
import { create } from '@bufbuild/protobuf';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import { ConsentSchema, ModelRefSchema, type Consent } from '@faceprint/contracts/common';
import { SubjectSchema, TemplateSchema, type Subject, type Template } from '@faceprint/contracts/matcher';
import type { ConsentRecord, SubjectRecord, TemplateRecord } from './gallery-store.js';

export function consentMessage(consent: ConsentRecord): Consent {
  return create(ConsentSchema, {
    legalBasis: consent.legalBasis,
    purpose: consent.purpose,
    givenAt: timestampFromDate(consent.givenAt),
    collectionPoint: consent.collectionPoint,
    retentionDays: consent.retentionDays,
    evidenceRef: consent.evidenceRef,
    retainAlignedCrops: consent.retainAlignedCrops ?? false,
  });
}

export function subjectMessage(subject: SubjectRecord): Subject {
  return create(SubjectSchema, {
    subjectId: subject.subjectId,
    metadata: subject.metadata,
    createTime: timestampFromDate(subject.createTime),
    updateTime: timestampFromDate(subject.updateTime),
    templateCount: subject.templateCount,
    consent: subject.consent && consentMessage(subject.consent),
    retainUntil: subject.consent && timestampFromDate(subject.consent.retainUntil),
  });
}

export function templateMessage(template: TemplateRecord): Template {
  return create(TemplateSchema, {
    templateId: template.templateId,
    model: create(ModelRefSchema, template.model),
    dim: template.dim,
    quality: template.quality,
    sourceImageSha256: template.sourceImageSha256,
    createTime: timestampFromDate(template.createTime),
    alignedCropRetained: template.alignedCropRetained,
  });
}
