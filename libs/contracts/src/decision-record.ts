/**
 * The signed payload of a 1:1 decision record (DecisionRecord.signed_payload): one JSON document
 * signed with the matcher's Ed25519 key (the erasure receipts' key), verifiable offline with its
 * public key (`faceprint receipt verify`). It says what was decided, at which threshold and rate,
 * on what evidence (digests of the probe images, never the images; the models with their sha256;
 * the probe's quality; the purpose, the consent checked against it and the presentation-attack
 * check, when there were) and when. Written with keys in a fixed order, so equal records are equal bytes.
 */
import { createHash } from 'node:crypto';
import type { DecisionRecord } from './gen/faceprint/common/v1/compliance_pb.js';
import type { PresentationAssessment } from './gen/faceprint/common/v1/liveness_pb.js';
import { fieldChecker, openSignedPayload, signingKeyId, type PublicKeys } from './signed-payload.js';

/**
 * The payload's `type`: names this format and its version. v2 names the subject by its audit
 * pseudonym (`pseudonym:<uuid>`, the form the audit trail shows) instead of its id; v1 records
 * (subject_id) still verify.
 */
export const DECISION_RECORD_TYPE = 'faceprint.decision_record.v2';
const EARLIER_DECISION_RECORD_TYPES = ['faceprint.decision_record.v1'];

/** A model as a record names it. */
export interface RecordedModel {
  readonly name: string;
  readonly version: number;
  readonly sha256: string;
}

/** A presentation-attack check as a record states it (scores as float32, as on the wire). */
export interface RecordedLiveness {
  readonly model: RecordedModel;
  readonly frames: number;
  readonly score: number;
  readonly threshold: number;
  readonly target_bpcer: number;
  readonly decision: 'bona_fide' | 'attack';
}

/** The consent a verification for a purpose was checked against (it names the purpose and is in force, or the verify is refused). */
export interface RecordedConsentCheck {
  /** The purpose the subject's latest consent names. */
  readonly purpose: string;
  /** When that consent's retention ends (ISO 8601, UTC). */
  readonly retain_until: string;
  readonly checked: 'purpose_matches_and_in_force';
}

/** The record's form of a PresentationAssessment. */
export function livenessFields(a: PresentationAssessment): RecordedLiveness {
  return {
    model: { name: a.model?.name ?? '', version: a.model?.version ?? 0, sha256: a.model?.sha256 ?? '' },
    frames: a.frameScores.length,
    score: Math.fround(a.score),
    threshold: Math.fround(a.threshold),
    target_bpcer: a.targetBpcer,
    decision: a.isBonaFide ? 'bona_fide' : 'attack',
  };
}

/** What a decision record states. */
export interface DecisionRecordPayload {
  readonly type: typeof DECISION_RECORD_TYPE;
  readonly record_id: string;
  /** The caller's request id ('' when none was given). */
  readonly request_id: string;
  readonly tenant_id: string;
  /** What was decided: a 1:1 verify against a subject, or a comparison of two images (no gallery). */
  readonly decision_of: 'verify' | 'compare';
  /**
   * For a verify: the subject's audit pseudonym, `pseudonym:<uuid>`; ListAuditEvents ties it to the
   * subject id while the subject exists, after an erasure it ties to no one.
   */
  readonly subject_pseudonym?: string;
  /** Lower-case hex sha256 of each probe image (a compare: both; empty when the caller sent embeddings). */
  readonly probe_image_sha256: readonly string[];
  readonly models: { readonly embedder: RecordedModel; readonly detector?: RecordedModel };
  readonly score: number;
  readonly threshold: number;
  readonly target_far: number;
  readonly far_upper_95: number;
  readonly calibration_impostor_pairs: number;
  readonly templates_compared: number;
  /** The probe face's quality measures (FaceQuality's fields), when the caller measured them. */
  readonly probe_quality?: Readonly<Record<string, number>>;
  /** What the verification was for, when the caller said. */
  readonly purpose?: string;
  /** The presentation-attack check of the capture, when one ran. */
  readonly liveness?: RecordedLiveness;
  /** The consent check, when the verification named a purpose. */
  readonly consent?: RecordedConsentCheck;
  readonly decision: 'match' | 'no_match';
  /** ISO 8601, UTC. */
  readonly decided_at: string;
  readonly signing_key_id: string;
}

/** The payload's bytes: UTF-8 JSON, keys in a fixed order. */
export function encodeDecisionRecordPayload(p: DecisionRecordPayload): Uint8Array {
  const model = (m: RecordedModel) => ({ name: m.name, version: m.version, sha256: m.sha256 });
  const ordered = {
    type: p.type,
    record_id: p.record_id,
    request_id: p.request_id,
    tenant_id: p.tenant_id,
    decision_of: p.decision_of,
    ...(p.subject_pseudonym ? { subject_pseudonym: p.subject_pseudonym } : {}),
    probe_image_sha256: [...p.probe_image_sha256],
    models: { embedder: model(p.models.embedder), ...(p.models.detector ? { detector: model(p.models.detector) } : {}) },
    score: p.score,
    threshold: p.threshold,
    target_far: p.target_far,
    far_upper_95: p.far_upper_95,
    calibration_impostor_pairs: p.calibration_impostor_pairs,
    templates_compared: p.templates_compared,
    ...(p.probe_quality ? { probe_quality: Object.fromEntries(Object.entries(p.probe_quality).sort(([a], [b]) => (a < b ? -1 : 1))) } : {}),
    ...(p.purpose ? { purpose: p.purpose } : {}),
    ...(p.liveness
      ? { liveness: { model: model(p.liveness.model), frames: p.liveness.frames, score: p.liveness.score, threshold: p.liveness.threshold, target_bpcer: p.liveness.target_bpcer, decision: p.liveness.decision } }
      : {}),
    ...(p.consent ? { consent: { purpose: p.consent.purpose, retain_until: p.consent.retain_until, checked: p.consent.checked } } : {}),
    decision: p.decision,
    decided_at: p.decided_at,
    signing_key_id: p.signing_key_id,
  };
  return new TextEncoder().encode(JSON.stringify(ordered));
}

/** The outcome of {@link verifyDecisionRecord}. */
export type DecisionRecordVerification =
  | { readonly valid: true; readonly payload: DecisionRecordPayload }
  | { readonly valid: false; readonly problems: readonly string[] };

/** Checks a record against the matcher's public key (a KeyObject or PEM): the signature, the key id, the digest and the repeated fields. */
export function verifyDecisionRecord(record: Pick<DecisionRecord, 'recordId' | 'signedPayload' | 'signature' | 'signingKeyId' | 'digestSha256'>, publicKeys: PublicKeys): DecisionRecordVerification {
  const opened = openSignedPayload<DecisionRecordPayload>(record.signedPayload, record.signature, publicKeys, record.signingKeyId);
  if ('problems' in opened) return { valid: false, problems: opened.problems };
  const { payload, key } = opened;
  const { expect, problems } = fieldChecker('record');
  expect('type', EARLIER_DECISION_RECORD_TYPES.includes(payload.type) ? payload.type : DECISION_RECORD_TYPE, payload.type);
  expect('signing_key_id', signingKeyId(key), payload.signing_key_id);
  expect('signing key', record.signingKeyId, payload.signing_key_id);
  expect('record_id', record.recordId, payload.record_id);
  expect('digest_sha256', record.digestSha256, createHash('sha256').update(record.signedPayload).digest('hex'));
  return problems.length === 0 ? { valid: true, payload } : { valid: false, problems };
}
