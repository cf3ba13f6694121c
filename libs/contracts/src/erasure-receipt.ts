/**
 * The signed payload of an erasure receipt (ErasureReceipt.signed_payload): one JSON document,
 * signed with the matcher's Ed25519 key. The matcher signs it; anyone holding the public key
 * verifies it offline (`faceprint receipt verify`). The signature covers the exact bytes, so the
 * verifier needs no canonical form; the writer still emits keys in a fixed order, so that equal
 * receipts are equal bytes.
 */
import { createHash } from 'node:crypto';
import { timestampDate } from '@bufbuild/protobuf/wkt';
import { ErasureReason, type ErasureReceipt } from './gen/faceprint/common/v1/compliance_pb.js';
import { fieldChecker, openSignedPayload, signingKeyId, type PublicKeys } from './signed-payload.js';

/** The payload's `type`: names this format and its version. */
export const ERASURE_RECEIPT_TYPE = 'faceprint.erasure_receipt.v1';

/** What an erasure receipt states. */
export interface ErasureReceiptPayload {
  readonly type: typeof ERASURE_RECEIPT_TYPE;
  readonly receipt_id: string;
  readonly tenant_id: string;
  readonly subject_id: string;
  readonly request_ref: string;
  /** The ErasureReason name, e.g. `ERASURE_REASON_SUBJECT_REQUEST`. */
  readonly reason: string;
  /** ISO 8601, UTC. */
  readonly erased_at: string;
  /** Records removed, by kind (`template`, `subject`, `consent`, `data_key`, ...). */
  readonly counts: Readonly<Record<string, number>>;
  readonly signing_key_id: string;
}

/** The payload's bytes: UTF-8 JSON, keys in a fixed order (counts sorted by kind). */
export function encodeReceiptPayload(payload: ErasureReceiptPayload): Uint8Array {
  const ordered = {
    type: payload.type,
    receipt_id: payload.receipt_id,
    tenant_id: payload.tenant_id,
    subject_id: payload.subject_id,
    request_ref: payload.request_ref,
    reason: payload.reason,
    erased_at: payload.erased_at,
    counts: Object.fromEntries(Object.entries(payload.counts).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))),
    signing_key_id: payload.signing_key_id,
  };
  return new TextEncoder().encode(JSON.stringify(ordered));
}

/** The outcome of {@link verifyErasureReceipt}. */
export type ReceiptVerification =
  | { readonly valid: true; readonly payload: ErasureReceiptPayload }
  | { readonly valid: false; readonly problems: readonly string[] };

/**
 * Checks a receipt against the matcher's public key (a KeyObject or PEM): the signature over the
 * payload, the payload's digest and key id, and that the receipt's fields say what the signed
 * payload says.
 */
export function verifyErasureReceipt(receipt: ErasureReceipt, publicKeys: PublicKeys): ReceiptVerification {
  const opened = openSignedPayload<ErasureReceiptPayload>(receipt.signedPayload, receipt.signature, publicKeys, receipt.signingKeyId);
  if ('problems' in opened) return { valid: false, problems: opened.problems };
  const { payload, key } = opened;
  const { expect, problems } = fieldChecker('receipt');
  expect('type', ERASURE_RECEIPT_TYPE, payload.type);
  expect('signing_key_id', signingKeyId(key), payload.signing_key_id);
  expect('digest_sha256', receipt.digestSha256, createHash('sha256').update(receipt.signedPayload).digest('hex'));
  expect('receipt_id', receipt.receiptId, payload.receipt_id);
  expect('tenant_id', receipt.tenantId, payload.tenant_id);
  expect('subject_id', receipt.subjectId, payload.subject_id);
  expect('request_ref', receipt.requestRef, payload.request_ref);
  expect('reason', ErasureReason[receipt.reason] && `ERASURE_REASON_${ErasureReason[receipt.reason]}`, payload.reason);
  expect('signing key', receipt.signingKeyId, payload.signing_key_id);
  const erasedAt = receipt.erasedAt && timestampDate(receipt.erasedAt).toISOString();
  expect('erased_at', erasedAt, payload.erased_at);
  const stated = Object.fromEntries(receipt.counts.map((c) => [c.kind, Number(c.count)]));
  expect('counts', JSON.stringify(Object.entries(stated).sort()), JSON.stringify(Object.entries(payload.counts ?? {}).sort()));
  return problems.length === 0 ? { valid: true, payload } : { valid: false, problems };
}
