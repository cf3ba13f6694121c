/**
 * The audit trail's SQL: append an event, list a tenant's events. Events name subjects by
 * pseudonym (see migrations/0002_audit.sql); listing shows the subject id while the subject
 * exists and `pseudonym:<uuid>` once its link is gone. Never embeddings or images.
 */
import { randomUUID } from 'node:crypto';
import type { AuditAction, AuditOutcome } from '@faceprint/contracts/common';
import type pg from 'pg';

/** What one audit event records. */
export interface AuditEntry {
  readonly tenantId: string;
  /** The caller id (API key id or JWT subject) the gateway authenticated. */
  readonly actor: string;
  readonly action: AuditAction;
  /** The subject concerned, if any. */
  readonly subjectId?: string | undefined;
  readonly requestId: string;
  readonly outcome: AuditOutcome;
  /** Non-biometric context, e.g. `{ decision: 'match' }`. */
  readonly details: Readonly<Record<string, string>>;
}

/** A stored audit event. */
export interface AuditRecord extends AuditEntry {
  readonly eventPk: bigint;
  readonly eventId: string;
  readonly time: Date;
}

/** Which events to list. */
export interface AuditFilter {
  readonly subjectId?: string | undefined;
  readonly actions: readonly AuditAction[];
  readonly start?: Date | undefined;
  readonly end?: Date | undefined;
}

/** Something that runs SQL: the pool, or a transaction's client. */
type Queryable = Pick<pg.Pool, 'query'> | Pick<pg.PoolClient, 'query'>;

/** The audit trail of one gallery database. */
export class AuditLog {
  readonly #pool: pg.Pool;

  constructor(pool: pg.Pool) {
    this.#pool = pool;
  }

  /**
   * Appends an event, on `on` (a transaction, so that the event commits with the action) or the
   * pool. The subject is named only while it exists; with `linkOnly`, only if it already has a
   * pseudonym (a refused call may name a subject that does not exist; an erasure's own event is
   * written after the subject's row is gone).
   */
  async record(entry: AuditEntry, on: Queryable = this.#pool, { linkOnly = false } = {}): Promise<void> {
    const values: unknown[] = [randomUUID(), entry.tenantId, entry.actor, entry.action, entry.requestId, entry.outcome, JSON.stringify(entry.details)];
    // One statement (one round trip on every audited call); the pseudonym comes from one of three places.
    let link = '';
    let pseudonym = 'NULL';
    if (entry.subjectId && linkOnly) {
      values.push(entry.subjectId);
      pseudonym = '(SELECT pseudonym FROM subject_pseudonyms WHERE tenant_id = $2 AND subject_id = $8)';
    } else if (entry.subjectId) {
      // A pseudonym is made only for a subject that exists, under a share lock on its row: an
      // event recorded after an erasure committed (a search that read the subject just before)
      // must not link the erased id again; an erasure in progress waits for this statement.
      values.push(entry.subjectId, randomUUID());
      link = `WITH subject AS (SELECT 1 FROM subjects WHERE tenant_id = $2 AND subject_id = $8 FOR SHARE),
        link AS (INSERT INTO subject_pseudonyms (tenant_id, subject_id, pseudonym) SELECT $2, $8, $9 FROM subject
                 ON CONFLICT (tenant_id, subject_id) DO UPDATE SET pseudonym = subject_pseudonyms.pseudonym RETURNING pseudonym)`;
      pseudonym = '(SELECT pseudonym FROM link)';
    }
    await on.query(
      `${link} INSERT INTO audit_events (event_id, tenant_id, actor, action, subject_pseudonym, request_id, outcome, details)
       VALUES ($1, $2, $3, $4, ${pseudonym}, $5, $6, $7)`,
      values,
    );
  }

  /**
   * Removes the subject's pseudonym link: its events stay, and can no longer be tied to the subject
   * id. Runs in the erasure's transaction. Returns how many links it removed (0 or 1).
   */
  async unlinkSubject(tenantId: string, subjectId: string, on: Queryable): Promise<number> {
    const { rowCount } = await on.query('DELETE FROM subject_pseudonyms WHERE tenant_id = $1 AND subject_id = $2', [tenantId, subjectId]);
    return rowCount ?? 0;
  }

  /** Up to `limit` of the tenant's events matching `filter`, newest first, before `beforePk` (0: from the newest). */
  async list(tenantId: string, filter: AuditFilter, beforePk: bigint, limit: number): Promise<AuditRecord[]> {
    const { rows } = await this.#pool.query<{
      event_pk: string;
      event_id: string;
      event_time: Date;
      actor: string;
      action: number;
      subject_id: string | null;
      subject_pseudonym: string | null;
      request_id: string;
      outcome: number;
      details: Record<string, string>;
    }>(
      `SELECT a.event_pk, a.event_id, a.event_time, a.actor, a.action, p.subject_id, a.subject_pseudonym, a.request_id, a.outcome, a.details
       FROM audit_events a LEFT JOIN subject_pseudonyms p ON p.pseudonym = a.subject_pseudonym
       WHERE a.tenant_id = $1
         AND ($2::text IS NULL OR a.subject_pseudonym = (SELECT pseudonym FROM subject_pseudonyms WHERE tenant_id = $1 AND subject_id = $2))
         AND (cardinality($3::smallint[]) = 0 OR a.action = ANY($3::smallint[]))
         AND ($4::timestamptz IS NULL OR a.event_time >= $4)
         AND ($5::timestamptz IS NULL OR a.event_time < $5)
         AND ($6::bigint = 0 OR a.event_pk < $6)
       ORDER BY a.event_pk DESC LIMIT $7`,
      [tenantId, filter.subjectId ?? null, filter.actions, filter.start ?? null, filter.end ?? null, String(beforePk), limit],
    );
    return rows.map((row) => ({
      eventPk: BigInt(row.event_pk),
      eventId: row.event_id,
      time: row.event_time,
      tenantId,
      actor: row.actor,
      action: row.action,
      subjectId: row.subject_id ?? (row.subject_pseudonym ? `pseudonym:${row.subject_pseudonym}` : undefined),
      requestId: row.request_id,
      outcome: row.outcome,
      details: row.details,
    }));
  }
}
