/**
 * Erasure (GDPR Art. 17): one transaction removes a subject's templates, consent records, stored
 * responses and audit link and marks its data key for destruction (the gallery's part is
 * GalleryStore.eraseSubject), records the audit event and appends the signed receipt to the
 * erasure log. Then, before the call is acknowledged, the data key is destroyed in the key store,
 * this replica's index evicts the templates, and the deleted rows are scrubbed from the database's
 * files. A subject already erased gets its latest receipt again. Consent withdrawal and the
 * retention sweeper erase through here too.
 */
import { createHash, randomUUID, sign, type KeyObject } from 'node:crypto';
import { create } from '@bufbuild/protobuf';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import { DECISION_RECORD_TYPE, encodeDecisionRecordPayload, encodeReceiptPayload, ERASURE_RECEIPT_TYPE, signingKeyId, type DecisionRecordPayload } from '@faceprint/contracts';
import { AuditAction, AuditOutcome, DecisionRecordSchema, ErasureReason, ErasureReceiptSchema, SigningKeySchema, type DecisionRecord, type SigningKey, type ErasureReceipt } from '@faceprint/contracts/common';
import type { Gallery } from '../gallery/gallery.js';

/** One erasure to carry out. */
export interface ErasureRequest {
  readonly tenantId: string;
  readonly subjectId: string;
  /** The caller's reference to the erasure request (ticket or case number). */
  readonly requestRef: string;
  readonly reason: ErasureReason;
  /** Free text for the audit trail. */
  readonly note: string;
  /** Who asked (the caller id, or the sweeper). */
  readonly actor: string;
  /** The call's request id, for the audit trail. */
  readonly requestId: string;
}

/** Signs erasure receipts and 1:1 decision records with the matcher's Ed25519 key. */
export class ReceiptSigner {
  readonly keyId: string;
  readonly #privateKey: KeyObject;
  /** The active public key first, then the retired ones (without the active one, should it be among them). */
  readonly publicKeys: readonly SigningKey[];

  constructor(keys: { privateKey: KeyObject; publicKey: KeyObject }, retired: readonly KeyObject[] = []) {
    this.#privateKey = keys.privateKey;
    this.keyId = signingKeyId(keys.publicKey);
    const described = (key: KeyObject, active: boolean) => create(SigningKeySchema, { keyId: signingKeyId(key), publicKeyPem: key.export({ type: 'spki', format: 'pem' }).toString(), active });
    const others = new Map(retired.map((key) => [signingKeyId(key), key]));
    others.delete(this.keyId);
    this.publicKeys = [described(keys.publicKey, true), ...[...others.values()].map((key) => described(key, false))];
  }

  /** A signed record of a 1:1 decision (decision-record.ts in @faceprint/contracts). */
  signDecision(payload: Omit<DecisionRecordPayload, 'type' | 'record_id' | 'signing_key_id'>): DecisionRecord {
    const recordId = randomUUID();
    const signed = encodeDecisionRecordPayload({ type: DECISION_RECORD_TYPE, record_id: recordId, ...payload, signing_key_id: this.keyId });
    return create(DecisionRecordSchema, {
      recordId,
      signedPayload: signed,
      signature: sign(null, signed, this.#privateKey),
      signingKeyId: this.keyId,
      digestSha256: createHash('sha256').update(signed).digest('hex'),
    });
  }

  /** A signed receipt for what an erasure removed. */
  sign(request: ErasureRequest, receiptId: string, erasedAt: Date, counts: Readonly<Record<string, number>>): ErasureReceipt {
    const payload = encodeReceiptPayload({
      type: ERASURE_RECEIPT_TYPE,
      receipt_id: receiptId,
      tenant_id: request.tenantId,
      subject_id: request.subjectId,
      request_ref: request.requestRef,
      reason: `ERASURE_REASON_${ErasureReason[request.reason]}`,
      erased_at: erasedAt.toISOString(),
      counts,
      signing_key_id: this.keyId,
    });
    return create(ErasureReceiptSchema, {
      receiptId,
      tenantId: request.tenantId,
      subjectId: request.subjectId,
      requestRef: request.requestRef,
      reason: request.reason,
      erasedAt: timestampFromDate(erasedAt),
      counts: Object.entries(counts)
        .sort(([a], [b]) => (a < b ? -1 : 1))
        .map(([kind, count]) => ({ kind, count: BigInt(count) })),
      digestSha256: createHash('sha256').update(payload).digest('hex'),
      signedPayload: payload,
      signature: sign(null, payload, this.#privateKey),
      signingKeyId: this.keyId,
    });
  }
}

/** Erases subjects of one gallery. */
export class SubjectEraser {
  readonly #gallery: Gallery;
  readonly #signer: ReceiptSigner;

  constructor(gallery: Gallery, signer: ReceiptSigner) {
    this.#gallery = gallery;
    this.#signer = signer;
  }

  /**
   * Erases the subject and returns the signed receipt; for a subject already erased, its latest
   * receipt with `replayed`; undefined when the tenant never had the subject.
   */
  async erase(request: ErasureRequest, options: { deferScrub?: boolean } = {}): Promise<{ receipt: ErasureReceipt; replayed: boolean } | undefined> {
    const { store, audit, sync, db, erasureLog } = this.#gallery;
    const receipt = await store.eraseSubject(request.tenantId, request.subjectId, async (client, erased) => {
      const receiptId = randomUUID();
      const erasedAt = new Date();
      // The event is written while the subject still has its pseudonym; then the link goes, and
      // the subject's events stay, no longer tied to its id.
      await audit.record(
        {
          tenantId: request.tenantId,
          actor: request.actor,
          action: AuditAction.ERASE,
          subjectId: request.subjectId,
          requestId: request.requestId,
          outcome: AuditOutcome.SUCCESS,
          details: { reason: ErasureReason[request.reason], request_ref: request.requestRef, receipt_id: receiptId, ...(request.note ? { note: request.note } : {}) },
        },
        client,
        { linkOnly: true },
      );
      const auditLinks = await audit.unlinkSubject(request.tenantId, request.subjectId, client);
      // Index entries go from every replica's index through the change log; searches confirm
      // their results against the database, so none returns them once this commits.
      const signed = this.#signer.sign(request, receiptId, erasedAt, { ...erased, index_entry: erased.template, audit_link: auditLinks });
      await erasureLog.append(client, signed, request.reason, erasedAt);
      return signed;
    });
    if (receipt) {
      // The key goes first: from then on no copy of the templates anywhere can be opened.
      const destroyed = await store.destroyErasedKeys();
      // Evicted from this replica's index before the erasure is acknowledged.
      await sync.catchUp();
      if (!options.deferScrub) await this.scrubStorage(destroyed);
      return { receipt, replayed: false };
    }
    const previous = await erasureLog.latest(db.pool, request.tenantId, request.subjectId);
    return previous ? { receipt: previous, replayed: true } : undefined;
  }

  /**
   * Scrubs erased rows from the database's files (each erasure does, unless deferred: the
   * retention sweeper scrubs once per sweep), then settles the key destructions it covers.
   */
  async scrubStorage(destroyedKeyIds?: readonly string[]): Promise<void> {
    const { store, scrubber } = this.#gallery;
    const keyIds = destroyedKeyIds ?? (await store.destroyErasedKeys());
    await scrubber.scrub();
    await store.settleKeyDestructions(keyIds);
  }
}
