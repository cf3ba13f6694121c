/**
 * The gallery's SQL: every read and write of tenants, subjects, consents and templates, each
 * scoped by tenant. Writes that add or remove templates also append to the change log (in commit
 * order, under an advisory lock) and notify the other matcher replicas, in the same transaction.
 */
import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import { inTransaction, type Database } from '../database/database.js';

/** A model version as templates record it. */
export interface ModelKey {
  readonly name: string;
  readonly version: number;
  readonly sha256: string;
}

/** A consent record (or other legal basis). */
export interface ConsentRecord {
  readonly legalBasis: number;
  readonly purpose: string;
  readonly givenAt: Date;
  readonly collectionPoint: string;
  readonly retentionDays: number;
  readonly evidenceRef: string;
  readonly retainUntil: Date;
}

/** A subject with its latest consent. */
export interface SubjectRecord {
  readonly subjectId: string;
  readonly metadata: Record<string, string>;
  readonly createTime: Date;
  readonly updateTime: Date;
  readonly templateCount: number;
  readonly consent: ConsentRecord | undefined;
}

/** A template's metadata (never its vector). */
export interface TemplateRecord {
  readonly templateId: string;
  readonly model: ModelKey;
  readonly dim: number;
  readonly quality: number;
  readonly sourceImageSha256: string;
  readonly createTime: Date;
}

/** A template to store. */
export interface NewTemplate {
  readonly model: ModelKey;
  readonly dim: number;
  readonly vector: Uint8Array;
  readonly quality: number;
  readonly sourceImageSha256: string;
}

/** An enrolment, with the request's digest for idempotency. */
export interface EnrollInput {
  readonly tenantId: string;
  readonly defaultTargetFar: number;
  readonly requestId: string;
  readonly requestSha256: string;
  readonly subjectId: string;
  readonly metadata: Record<string, string>;
  readonly consent: Omit<ConsentRecord, 'retainUntil'>;
  readonly templates: readonly NewTemplate[];
}

/** What an enrolment did. */
export type EnrollOutcome =
  | { readonly kind: 'created'; readonly response: Uint8Array }
  | { readonly kind: 'replayed'; readonly response: Uint8Array }
  | { readonly kind: 'request-id-reused' };

/** A template's vector, for comparison. */
export interface StoredVector {
  readonly templatePk: bigint;
  readonly templateId: string;
  readonly model: ModelKey;
  readonly dim: number;
  readonly vector: Uint8Array;
}

/** A template as the index holds it. */
export interface IndexedTemplate {
  readonly templatePk: bigint;
  readonly tenantId: string;
  readonly modelName: string;
  readonly modelVersion: number;
  readonly dim: number;
  readonly vector: Uint8Array;
}

/** How many templates one partition (tenant and model version) holds. */
export interface PartitionCount {
  readonly tenantId: string;
  readonly modelName: string;
  readonly modelVersion: number;
  readonly dim: number;
  readonly count: number;
}

/** Receives a snapshot: the partitions' sizes, then the templates page by page. */
export interface SnapshotReader {
  onCounts(counts: readonly PartitionCount[]): void;
  onPage(templates: readonly IndexedTemplate[]): void;
}

/** One entry of the change log. */
export interface TemplateChange {
  readonly seq: bigint;
  readonly op: 'add' | 'remove';
  readonly templatePk: bigint;
  readonly tenantId: string;
  readonly modelName: string;
  readonly modelVersion: number;
  readonly changeTime: Date;
}

/** How many templates of one model version a tenant or subject holds. */
export interface ModelInventory {
  readonly modelName: string;
  readonly modelVersion: number;
  readonly count: number;
}

const DAY_MS = 86_400_000;

const SUBJECT_COLUMNS = `s.subject_pk, s.subject_id, s.metadata, s.create_time, s.update_time,
  (SELECT count(*) FROM templates t WHERE t.subject_pk = s.subject_pk)::integer AS template_count,
  c.legal_basis, c.purpose, c.given_at, c.collection_point, c.retention_days, c.evidence_ref, c.retain_until
FROM subjects s
LEFT JOIN LATERAL (SELECT * FROM consents c WHERE c.subject_pk = s.subject_pk ORDER BY c.consent_pk DESC LIMIT 1) c ON true`;

const TEMPLATE_COLUMNS = 'template_id, model_name, model_version, model_sha256, dim, quality, source_image_sha256, create_time';

/** A row of SUBJECT_COLUMNS (bigint columns arrive as strings; the consent columns are null without a consent). */
interface SubjectRow {
  subject_pk: string;
  subject_id: string;
  metadata: Record<string, string>;
  create_time: Date;
  update_time: Date;
  template_count: number;
  legal_basis: number | null;
  purpose: string;
  given_at: Date;
  collection_point: string;
  retention_days: number;
  evidence_ref: string;
  retain_until: Date;
}

/** A row of TEMPLATE_COLUMNS. */
interface TemplateRow {
  template_id: string;
  model_name: string;
  model_version: number;
  model_sha256: string;
  dim: number;
  quality: number;
  source_image_sha256: string;
  create_time: Date;
}

/** A row of INDEX_COLUMNS. */
interface IndexRow {
  template_pk: string;
  tenant_id: string;
  model_name: string;
  model_version: number;
  dim: number;
  vector: Buffer;
}

const INDEX_COLUMNS = 'template_pk, tenant_id, model_name, model_version, dim, vector';

function subjectFromRow(row: SubjectRow): SubjectRecord {
  return {
    subjectId: row.subject_id,
    metadata: row.metadata,
    createTime: row.create_time,
    updateTime: row.update_time,
    templateCount: row.template_count,
    consent:
      row.legal_basis === null
        ? undefined
        : {
            legalBasis: row.legal_basis,
            purpose: row.purpose,
            givenAt: row.given_at,
            collectionPoint: row.collection_point,
            retentionDays: row.retention_days,
            evidenceRef: row.evidence_ref,
            retainUntil: row.retain_until,
          },
  };
}

function templateFromRow(row: TemplateRow): TemplateRecord {
  return {
    templateId: row.template_id,
    model: { name: row.model_name, version: row.model_version, sha256: row.model_sha256 },
    dim: row.dim,
    quality: row.quality,
    sourceImageSha256: row.source_image_sha256,
    createTime: row.create_time,
  };
}

function indexedFromRow(row: IndexRow): IndexedTemplate {
  return {
    templatePk: BigInt(row.template_pk),
    tenantId: row.tenant_id,
    modelName: row.model_name,
    modelVersion: row.model_version,
    dim: row.dim,
    vector: row.vector,
  };
}

/** The gallery tables of one database schema. */
export class GalleryStore {
  readonly #db: Database;
  readonly #changeLock: string;
  /** The NOTIFY channel that announces new change-log entries. */
  readonly changeChannel: string;

  constructor(db: Database) {
    this.#db = db;
    this.#changeLock = `${db.schema}.template_changes`;
    this.changeChannel = `${db.schema}_template_changes`;
  }

  /**
   * Enrols templates for a subject in one transaction. A request id seen before replays the
   * stored response (or reports reuse with a different request); `encodeResponse` makes the
   * response from what was written, and it is stored with it. `beforeCommit` runs in the same
   * transaction for a created or replayed enrolment (the audit event commits with it).
   */
  async enroll(
    input: EnrollInput,
    encodeResponse: (subject: SubjectRecord, templates: TemplateRecord[]) => Uint8Array,
    beforeCommit: (client: pg.PoolClient, kind: 'created' | 'replayed') => Promise<void> = async () => {},
  ): Promise<EnrollOutcome> {
    return inTransaction(this.#db.pool, async (client) => {
      await client.query('INSERT INTO tenants (tenant_id, default_target_far) VALUES ($1, $2) ON CONFLICT DO NOTHING', [input.tenantId, input.defaultTargetFar]);
      const claimed = await client.query(
        'INSERT INTO enroll_requests (tenant_id, request_id, request_sha256) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING',
        [input.tenantId, input.requestId, input.requestSha256],
      );
      if (claimed.rowCount === 0) {
        // Seen before; a concurrent first attempt has committed by now (the insert waited for it).
        const { rows } = await client.query<{ request_sha256: string; response: Buffer | null }>('SELECT request_sha256, response FROM enroll_requests WHERE tenant_id = $1 AND request_id = $2', [input.tenantId, input.requestId]);
        const stored = rows[0]!;
        if (stored.request_sha256 !== input.requestSha256 || stored.response === null) return { kind: 'request-id-reused' };
        await beforeCommit(client, 'replayed');
        return { kind: 'replayed', response: new Uint8Array(stored.response) };
      }
      const subject = await client.query<{ subject_pk: string }>(
        `INSERT INTO subjects (tenant_id, subject_id, metadata) VALUES ($1, $2, $3)
         ON CONFLICT (tenant_id, subject_id) DO UPDATE SET metadata = EXCLUDED.metadata, update_time = now()
         RETURNING subject_pk`,
        [input.tenantId, input.subjectId, JSON.stringify(input.metadata)],
      );
      const subjectPk = subject.rows[0]!.subject_pk;
      const consent = input.consent;
      await client.query(
        `INSERT INTO consents (subject_pk, legal_basis, purpose, given_at, collection_point, retention_days, evidence_ref, retain_until)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
        [subjectPk, consent.legalBasis, consent.purpose, consent.givenAt, consent.collectionPoint, consent.retentionDays, consent.evidenceRef, new Date(consent.givenAt.getTime() + consent.retentionDays * DAY_MS)],
      );
      const added: { template: TemplateRecord; templatePk: string }[] = [];
      for (const template of input.templates) {
        const { rows } = await client.query<TemplateRow & { template_pk: string }>(
          `INSERT INTO templates (template_id, tenant_id, subject_pk, model_name, model_version, model_sha256, dim, vector, quality, source_image_sha256)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING template_pk, ${TEMPLATE_COLUMNS}`,
          [randomUUID(), input.tenantId, subjectPk, template.model.name, template.model.version, template.model.sha256, template.dim, Buffer.from(template.vector), template.quality, template.sourceImageSha256],
        );
        added.push({ template: templateFromRow(rows[0]!), templatePk: rows[0]!.template_pk });
      }
      await this.#recordChanges(client, 'add', input.tenantId, added.map(({ template, templatePk }) => ({ templatePk, model: template.model })));
      const { rows } = await client.query<SubjectRow>(`SELECT ${SUBJECT_COLUMNS} WHERE s.subject_pk = $1`, [subjectPk]);
      const response = encodeResponse(subjectFromRow(rows[0]!), added.map((a) => a.template));
      await client.query('UPDATE enroll_requests SET subject_pk = $3, response = $4 WHERE tenant_id = $1 AND request_id = $2', [input.tenantId, input.requestId, subjectPk, Buffer.from(response)]);
      await beforeCommit(client, 'created');
      return { kind: 'created', response };
    });
  }

  /** A subject and its templates' metadata, or undefined. */
  async getSubject(tenantId: string, subjectId: string): Promise<{ subject: SubjectRecord; templates: TemplateRecord[] } | undefined> {
    const { rows } = await this.#db.pool.query<SubjectRow>(`SELECT ${SUBJECT_COLUMNS} WHERE s.tenant_id = $1 AND s.subject_id = $2`, [tenantId, subjectId]);
    const row = rows[0];
    if (!row) return undefined;
    const templates = await this.#db.pool.query<TemplateRow>(`SELECT ${TEMPLATE_COLUMNS} FROM templates WHERE subject_pk = $1 ORDER BY template_pk`, [row.subject_pk]);
    return { subject: subjectFromRow(row), templates: templates.rows.map(templateFromRow) };
  }

  /** Up to `limit` subjects after `afterSubjectId`, in byte order of subject id. */
  async listSubjects(tenantId: string, afterSubjectId: string, limit: number): Promise<SubjectRecord[]> {
    const { rows } = await this.#db.pool.query<SubjectRow>(
      `SELECT ${SUBJECT_COLUMNS} WHERE s.tenant_id = $1 AND s.subject_id > $2 ORDER BY s.subject_id LIMIT $3`,
      [tenantId, afterSubjectId, limit],
    );
    return rows.map(subjectFromRow);
  }

  /** Deletes one template of a subject: `subject-not-found`, `deleted` or `absent`. */
  async deleteTemplate(tenantId: string, subjectId: string, templateId: string): Promise<'subject-not-found' | 'deleted' | 'absent'> {
    return inTransaction(this.#db.pool, async (client) => {
      const subject = await client.query<{ subject_pk: string }>('SELECT subject_pk FROM subjects WHERE tenant_id = $1 AND subject_id = $2 FOR UPDATE', [tenantId, subjectId]);
      const subjectPk = subject.rows[0]?.subject_pk;
      if (subjectPk === undefined) return 'subject-not-found';
      const { rows } = await client.query<{ template_pk: string; model_name: string; model_version: number; model_sha256: string }>(
        'DELETE FROM templates WHERE subject_pk = $1 AND template_id = $2 RETURNING template_pk, model_name, model_version, model_sha256',
        [subjectPk, templateId],
      );
      const removed = rows[0];
      if (!removed) return 'absent';
      await client.query('UPDATE subjects SET update_time = now() WHERE subject_pk = $1', [subjectPk]);
      await this.#recordChanges(client, 'remove', tenantId, [
        { templatePk: removed.template_pk, model: { name: removed.model_name, version: removed.model_version, sha256: removed.model_sha256 } },
      ]);
      return 'deleted';
    });
  }

  /** A subject's templates with their vectors, or undefined when the subject is unknown. */
  async subjectVectors(tenantId: string, subjectId: string): Promise<StoredVector[] | undefined> {
    const { rows } = await this.#db.pool.query<{ template_pk: string | null } & TemplateRow & { vector: Buffer }>(
      `SELECT t.template_pk, t.template_id, t.model_name, t.model_version, t.model_sha256, t.dim, t.vector
       FROM subjects s LEFT JOIN templates t ON t.subject_pk = s.subject_pk
       WHERE s.tenant_id = $1 AND s.subject_id = $2 ORDER BY t.template_pk`,
      [tenantId, subjectId],
    );
    if (rows.length === 0) return undefined;
    // A subject without templates comes back as one row of nulls (the LEFT JOIN).
    return rows.flatMap((row) =>
      row.template_pk === null
        ? []
        : [
            {
              templatePk: BigInt(row.template_pk),
              templateId: row.template_id,
              model: { name: row.model_name, version: row.model_version, sha256: row.model_sha256 },
              dim: row.dim,
              vector: new Uint8Array(row.vector),
            },
          ],
    );
  }

  /**
   * The templates among `templatePks` that still exist in the tenant's partition, with their
   * subject: what the index found, confirmed against the database.
   */
  async confirmTemplates(tenantId: string, model: { name: string; version: number }, templatePks: readonly bigint[]): Promise<Map<bigint, { templateId: string; subjectId: string }>> {
    const { rows } = await this.#db.pool.query<{ template_pk: string; template_id: string; subject_id: string }>(
      // Driven by the keys (primary-key lookups), whatever the partition's size.
      `SELECT t.template_pk, t.template_id, s.subject_id
       FROM unnest($4::bigint[]) AS k(template_pk)
       JOIN templates t ON t.template_pk = k.template_pk
       JOIN subjects s ON s.subject_pk = t.subject_pk
       WHERE t.tenant_id = $1 AND t.model_name = $2 AND t.model_version = $3`,
      [tenantId, model.name, model.version, templatePks.map(String)],
    );
    return new Map(rows.map((row) => [BigInt(row.template_pk), { templateId: row.template_id, subjectId: row.subject_id }]));
  }

  /** How many templates of each model version the tenant (or one of its subjects) holds. */
  async modelInventory(tenantId: string, subjectId?: string): Promise<ModelInventory[]> {
    const { rows } = await this.#db.pool.query<{ model_name: string; model_version: number; count: number }>(
      `SELECT t.model_name, t.model_version, count(*)::integer AS count FROM templates t JOIN subjects s ON s.subject_pk = t.subject_pk
       WHERE t.tenant_id = $1 AND ($2::text IS NULL OR s.subject_id = $2) GROUP BY 1, 2 ORDER BY 1, 2`,
      [tenantId, subjectId ?? null],
    );
    return rows.map((row) => ({ modelName: row.model_name, modelVersion: row.model_version, count: row.count }));
  }

  /** The tenant's default target false-match rate, if the tenant exists. */
  async tenantDefaultFar(tenantId: string): Promise<number | undefined> {
    const { rows } = await this.#db.pool.query<{ default_target_far: number }>('SELECT default_target_far FROM tenants WHERE tenant_id = $1', [tenantId]);
    return rows[0]?.default_target_far;
  }

  /**
   * Reads every template from one consistent snapshot: first how many each partition holds, then
   * the templates, `pageSize` at a time. Returns the change-log position the snapshot includes:
   * changes after it are to be applied on top.
   */
  async readSnapshot(reader: SnapshotReader, pageSize = 2_000): Promise<bigint> {
    return inTransaction(
      this.#db.pool,
      async (client) => {
        const { rows } = await client.query<{ seq: string }>('SELECT coalesce(max(seq), 0) AS seq FROM template_changes');
        const position = BigInt(rows[0]!.seq);
        const counts = await client.query<{ tenant_id: string; model_name: string; model_version: number; dim: number; count: number }>(
          'SELECT tenant_id, model_name, model_version, max(dim) AS dim, count(*)::integer AS count FROM templates GROUP BY 1, 2, 3',
        );
        reader.onCounts(counts.rows.map((r) => ({ tenantId: r.tenant_id, modelName: r.model_name, modelVersion: r.model_version, dim: r.dim, count: r.count })));
        let after = '0';
        for (;;) {
          const page = await client.query<IndexRow>(
            `SELECT ${INDEX_COLUMNS} FROM templates WHERE template_pk > $1 ORDER BY template_pk LIMIT $2`,
            [after, pageSize],
          );
          const last = page.rows[page.rows.length - 1];
          if (!last) return position;
          reader.onPage(page.rows.map(indexedFromRow));
          after = last.template_pk;
        }
      },
      'REPEATABLE READ',
    );
  }

  /** Up to `limit` change-log entries after `seq`, in order. */
  async changesAfter(seq: bigint, limit: number): Promise<TemplateChange[]> {
    const { rows } = await this.#db.pool.query<{ seq: string; op: 'add' | 'remove'; template_pk: string; tenant_id: string; model_name: string; model_version: number; change_time: Date }>(
      'SELECT seq, op, template_pk, tenant_id, model_name, model_version, change_time FROM template_changes WHERE seq > $1 ORDER BY seq LIMIT $2',
      [String(seq), limit],
    );
    return rows.map((row) => ({
      seq: BigInt(row.seq),
      op: row.op,
      templatePk: BigInt(row.template_pk),
      tenantId: row.tenant_id,
      modelName: row.model_name,
      modelVersion: row.model_version,
      changeTime: row.change_time,
    }));
  }

  /** The templates among `templatePks` that exist, with their vectors. */
  async templatesByKey(templatePks: readonly bigint[]): Promise<IndexedTemplate[]> {
    if (templatePks.length === 0) return [];
    const { rows } = await this.#db.pool.query<IndexRow>(
      `SELECT ${INDEX_COLUMNS} FROM templates WHERE template_pk = ANY($1::bigint[])`,
      [templatePks.map(String)],
    );
    return rows.map(indexedFromRow);
  }

  /**
   * Appends template additions or removals to the change log and notifies the replicas (the
   * notification is delivered at commit). The advisory lock, held to commit, makes sequence
   * order commit order, so a replica that has read up to `seq` has missed nothing before it.
   */
  async #recordChanges(client: pg.PoolClient, op: 'add' | 'remove', tenantId: string, templates: readonly { templatePk: string; model: ModelKey }[]): Promise<void> {
    if (templates.length === 0) return;
    await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [this.#changeLock]);
    await client.query(
      `INSERT INTO template_changes (op, template_pk, tenant_id, model_name, model_version)
       SELECT $1, pk, $2, name, version FROM unnest($3::bigint[], $4::text[], $5::integer[]) AS u(pk, name, version)`,
      [op, tenantId, templates.map((t) => t.templatePk), templates.map((t) => t.model.name), templates.map((t) => t.model.version)],
    );
    await client.query('SELECT pg_notify($1, $2)', [this.changeChannel, op]);
  }
}
