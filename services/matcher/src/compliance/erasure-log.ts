/**
 * The erasure log: one append-only row per erasure, the evidence that it happened (Art. 5(2)).
 * It names the subject by a keyed digest and keeps the signed receipt sealed by the master key,
 * so a repeated request (which names the subject) gets its receipt back, while the database's
 * files, backups and WAL name no erased subject.
 */
import { fromBinary, toBinary } from '@bufbuild/protobuf';
import { ErasureReceiptSchema, type ErasureReceipt } from '@faceprint/contracts/common';
import type pg from 'pg';
import type { KeyWrapper } from './data-keys.js';

type Queryable = Pick<pg.PoolClient, 'query'>;

const DIGEST_PURPOSE = 'erasure-log.subject';
const receiptContext = (tenantId: string, digest: string) => `faceprint.erasure_receipt:${tenantId}:${digest}`;

/** The erasure log of one gallery. */
export class ErasureLog {
  readonly #keys: KeyWrapper;

  constructor(keys: KeyWrapper) {
    this.#keys = keys;
  }

  /** Records a receipt (in the erasure's transaction). */
  async append(on: Queryable, receipt: ErasureReceipt, reason: number, erasedAt: Date): Promise<void> {
    const digest = await this.#digest(receipt.tenantId, receipt.subjectId);
    const sealed = await this.#keys.wrap(Buffer.from(toBinary(ErasureReceiptSchema, receipt)), receiptContext(receipt.tenantId, digest));
    await on.query(
      'INSERT INTO erasure_log (receipt_id, tenant_id, subject_digest, reason, erased_at, sealed_receipt, master_key_id) VALUES ($1, $2, $3, $4, $5, $6, $7)',
      [receipt.receiptId, receipt.tenantId, digest, reason, erasedAt, sealed, this.#keys.masterKeyId],
    );
  }

  /** The subject's latest receipt, or undefined when it was never erased. */
  async latest(on: Queryable, tenantId: string, subjectId: string): Promise<ErasureReceipt | undefined> {
    const digest = await this.#digest(tenantId, subjectId);
    const { rows } = await on.query<{ sealed_receipt: Buffer; master_key_id: string }>(
      'SELECT sealed_receipt, master_key_id FROM erasure_log WHERE tenant_id = $1 AND subject_digest = $2 ORDER BY erasure_pk DESC LIMIT 1',
      [tenantId, digest],
    );
    if (!rows[0]) return undefined;
    return fromBinary(ErasureReceiptSchema, await this.#keys.unwrap(rows[0].sealed_receipt, rows[0].master_key_id, receiptContext(tenantId, digest)));
  }

  /** The tenant and subject id as one string (neither may hold a NUL). */
  #digest(tenantId: string, subjectId: string): Promise<string> {
    return this.#keys.digest(DIGEST_PURPOSE, `${tenantId}\0${subjectId}`);
  }
}
