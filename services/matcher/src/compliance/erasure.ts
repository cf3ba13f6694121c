/**
 * Erasure (GDPR Art. 17): one transaction removes a subject's templates, consent records, stored
 * responses, data key and audit link (the gallery's part is GalleryStore.eraseSubject), records
 * the audit event and stores a signed receipt; then this replica's index evicts the templates
 * before the call is acknowledged. A subject already erased gets its latest receipt again.
 * Consent withdrawal and the retention sweeper erase through here too.
 */
import { createHash, randomUUID, sign, type KeyObject } from 'node:crypto';
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import { encodeReceiptPayload, ERASURE_RECEIPT_TYPE, signingKeyId } from '@faceprint/contracts';
import { AuditAction, AuditOutcome, ErasureReason, ErasureReceiptSchema, type ErasureReceipt } from '@faceprint/contracts/common';
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

/** Signs erasure receipts with the matcher's Ed25519 key. */
export class ReceiptSigner {
  readonly keyId: string;
  readonly #privateKey: KeyObject;

  constructor(keys: { privateKey: KeyObject; publicKey: KeyObject }) {
    this.#privateKey = keys.privateKey;
    this.keyId = signingKeyId(keys.publicKey);
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
  async erase(request: ErasureRequest): Promise<{ receipt: ErasureReceipt; replayed: boolean } | undefined> {
    const { store, audit, sync, db } = this.#gallery;
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
      await client.query(
        'INSERT INTO erasures (receipt_id, tenant_id, subject_id, request_ref, reason, erased_at, receipt) VALUES ($1, $2, $3, $4, $5, $6, $7)',
        [receiptId, request.tenantId, request.subjectId, request.requestRef, request.reason, erasedAt, Buffer.from(toBinary(ErasureReceiptSchema, signed))],
      );
      return signed;
    });
    if (receipt) {
      // Evicted from this replica's index before the erasure is acknowledged.
      await sync.catchUp();
      return { receipt, replayed: false };
    }
    const { rows } = await db.pool.query<{ receipt: Buffer }>(
      'SELECT receipt FROM erasures WHERE tenant_id = $1 AND subject_id = $2 ORDER BY erasure_pk DESC LIMIT 1',
      [request.tenantId, request.subjectId],
    );
    return rows[0] ? { receipt: fromBinary(ErasureReceiptSchema, rows[0].receipt), replayed: true } : undefined;
  }
}
