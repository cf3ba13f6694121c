/**
 * The gallery's SQL: every read and write of tenants, subjects, consents and templates, each
 * scoped by tenant. Writes that add or remove templates also append to the change log (in commit
 * order, under an advisory lock) and notify the other matcher replicas, in the same transaction.
 * Template vectors are sealed at rest under their subject's data key (compliance/data-keys.ts),
 * kept wrapped in the key store apart from this database (compliance/key-store.ts): they are
 * sealed here on the way in and opened here on the way out.
 */
import { randomUUID } from 'node:crypto';
import { decodeEmbedding } from '@faceprint/contracts';
import { LegalBasis } from '@faceprint/contracts/common';
import type pg from 'pg';
import { cropContext, dataKeyContext, newDataKey, open, seal, templateContext, type KeyWrapper } from '../compliance/data-keys.js';
import type { DataKeyStore } from '../compliance/key-store.js';
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
  /** Whether the subject agreed that aligned crops be kept to re-create templates. */
  readonly retainAlignedCrops?: boolean;
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
  /** Whether the aligned crop it was made from is kept (sealed). */
  readonly alignedCropRetained: boolean;
}

/** A template to store. */
export interface NewTemplate {
  readonly model: ModelKey;
  readonly dim: number;
  readonly vector: Uint8Array;
  readonly quality: number;
  readonly sourceImageSha256: string;
  /** The aligned crop (RGB8) to keep, sealed; only under a consent with retainAlignedCrops. */
  readonly crop?: RetainedCrop | undefined;
}

/** An aligned crop as kept: RGB8 pixels and size. */
export interface RetainedCrop {
  readonly pixels: Uint8Array;
  readonly width: number;
  readonly height: number;
}

/** What re-creating a subject's templates from its retained crops needs. */
export interface RetainedCrops {
  readonly metadata: Record<string, string>;
  /** The subject's latest consent record (the re-created templates are held under it). */
  readonly consent: ConsentRecord;
  /** The model version the crops were embedded with. */
  readonly fromVersion: number;
  readonly crops: readonly (RetainedCrop & { readonly templateId: string; readonly quality: number; readonly sourceImageSha256: string })[];
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
  | { readonly kind: 'request-id-reused' }
  /** The request id enrolled a subject that has since been erased: it never enrols again. */
  | { readonly kind: 'request-erased' };

/** What an erasure removed, by kind (the receipt's counts). */
export type ErasedCounts = Record<'subject' | 'template' | 'consent' | 'enroll_response' | 'data_key', number>;

/** Everything the gallery holds about one subject, for an access request (Art. 15). */
export interface SubjectExport {
  readonly subject: SubjectRecord;
  /** Every consent record, oldest first. */
  readonly consents: readonly (ConsentRecord & { readonly recordTime: Date })[];
  /** The templates' metadata, with the (opened) vectors and kept crops when asked for. */
  readonly templates: readonly (TemplateRecord & { readonly vector?: Float32Array; readonly crop?: RetainedCrop })[];
}

/** The purpose a subject's consent must name for its templates to train models. */
export const MODEL_IMPROVEMENT_PURPOSE = 'model_improvement';

/** One subject's templates that may train a model. */
export interface TrainingSubject {
  readonly subjectId: string;
  readonly vectors: readonly Uint8Array[];
}

/** A template's vector, for comparison. */
export interface StoredVector {
  readonly templatePk: bigint;
  readonly templateId: string;
  readonly model: ModelKey;
  readonly dim: number;
  readonly vector: Uint8Array;
  /** The face quality in [0, 1] given at enrolment (which templates a decision compares first). */
  readonly quality: number;
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
/** The digest an enrolment request keeps once its subject is erased (its response is removed). */
const ERASED_REQUEST = 'erased';

const SUBJECT_COLUMNS = `s.subject_pk, s.subject_id, s.metadata, s.create_time, s.update_time,
  (SELECT count(*) FROM templates t WHERE t.subject_pk = s.subject_pk)::integer AS template_count,
  c.legal_basis, c.purpose, c.given_at, c.collection_point, c.retention_days, c.evidence_ref, c.retain_until, c.retain_aligned_crops
FROM subjects s
LEFT JOIN LATERAL (SELECT * FROM consents c WHERE c.subject_pk = s.subject_pk ORDER BY c.consent_pk DESC LIMIT 1) c ON true`;

const TEMPLATE_COLUMNS = 'template_id, model_name, model_version, model_sha256, dim, quality, source_image_sha256, create_time, (crop IS NOT NULL) AS crop_retained';

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
  retain_aligned_crops: boolean | null;
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
  crop_retained: boolean;
}

/** The columns that open a sealed vector: the template's id and its subject's data key id. */
interface SealedRow {
  template_id: string;
  tenant_id: string;
  vector: Buffer;
  sealed: boolean;
  key_id: string | null;
}

/** A row of INDEX_COLUMNS. */
interface IndexRow extends SealedRow {
  template_pk: string;
  model_name: string;
  model_version: number;
  dim: number;
}

/** A template with its subject's data key id; FROM templates t, joined to its subject. */
const SEALED_COLUMNS = 't.template_id, t.tenant_id, t.vector, t.sealed, s.data_key_id AS key_id';
const WITH_DATA_KEY = 'JOIN subjects s ON s.subject_pk = t.subject_pk';
const INDEX_COLUMNS = `t.template_pk, t.model_name, t.model_version, t.dim, ${SEALED_COLUMNS}`;

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
            retainAlignedCrops: row.retain_aligned_crops ?? false,
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
    alignedCropRetained: row.crop_retained,
  };
}

function indexedFromRow(row: IndexRow, vector: Uint8Array): IndexedTemplate {
  return {
    templatePk: BigInt(row.template_pk),
    tenantId: row.tenant_id,
    modelName: row.model_name,
    modelVersion: row.model_version,
    dim: row.dim,
    vector,
  };
}

/** A template row with its opened vector. */
function storedFromRow(row: TemplateRow & SealedRow & { template_pk: string }, vector: Uint8Array): StoredVector {
  return { templatePk: BigInt(row.template_pk), templateId: row.template_id, model: { name: row.model_name, version: row.model_version, sha256: row.model_sha256 }, dim: row.dim, vector, quality: row.quality };
}

/** The gallery tables of one database schema. */
export class GalleryStore {
  readonly #db: Database;
  readonly #keys: KeyWrapper;
  readonly #keyStore: DataKeyStore;
  readonly #changeLock: string;
  /** The NOTIFY channel that announces new change-log entries. */
  readonly changeChannel: string;

  /** `keys` wraps the subjects' data keys (the master key); `keyStore` keeps them wrapped. */
  constructor(db: Database, keys: KeyWrapper, keyStore: DataKeyStore) {
    this.#db = db;
    this.#keys = keys;
    this.#keyStore = keyStore;
    this.#changeLock = `${db.schema}.template_changes`;
    this.changeChannel = `${db.schema}_template_changes`;
  }

  /**
   * Enrols templates for a subject in one transaction. A request id seen before replays the
   * stored response (or reports reuse with a different request); `encodeResponse` makes the
   * response from what was written (and the subject's templates from before, opened), and it is
   * stored with it. `beforeCommit` runs in the same transaction for a created or replayed
   * enrolment (the audit event commits with it).
   */
  async enroll(
    input: EnrollInput,
    encodeResponse: (subject: SubjectRecord, templates: TemplateRecord[], earlier: StoredVector[]) => Uint8Array,
    beforeCommit: (client: pg.PoolClient, kind: 'created' | 'replayed') => Promise<void> = async () => {},
  ): Promise<EnrollOutcome> {
    return inTransaction(this.#db.pool, async (client) => {
      await client.query('INSERT INTO tenants (tenant_id, default_target_far) VALUES ($1, $2) ON CONFLICT DO NOTHING', [input.tenantId, input.defaultTargetFar]);
      const erased = await client.query('SELECT 1 FROM enroll_requests WHERE tenant_id = $1 AND request_id = $2', [input.tenantId, await this.#erasedRequestId(input.tenantId, input.requestId)]);
      if (erased.rowCount) return { kind: 'request-erased' };
      const claimed = await client.query(
        'INSERT INTO enroll_requests (tenant_id, request_id, request_sha256) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING',
        [input.tenantId, input.requestId, input.requestSha256],
      );
      if (claimed.rowCount === 0) {
        // Seen before; a concurrent first attempt has committed by now (the insert waited for it).
        const { rows } = await client.query<{ request_sha256: string; response: Buffer | null }>('SELECT request_sha256, response FROM enroll_requests WHERE tenant_id = $1 AND request_id = $2', [input.tenantId, input.requestId]);
        const stored = rows[0]!;
        if (stored.request_sha256 === ERASED_REQUEST) return { kind: 'request-erased' };
        if (stored.request_sha256 !== input.requestSha256 || stored.response === null) return { kind: 'request-id-reused' };
        await beforeCommit(client, 'replayed');
        return { kind: 'replayed', response: new Uint8Array(stored.response) };
      }
      const subject = await client.query<{ subject_pk: string; data_key_id: string | null }>(
        `INSERT INTO subjects (tenant_id, subject_id, metadata) VALUES ($1, $2, $3)
         ON CONFLICT (tenant_id, subject_id) DO UPDATE SET metadata = EXCLUDED.metadata, update_time = now()
         RETURNING subject_pk, data_key_id`,
        [input.tenantId, input.subjectId, JSON.stringify(input.metadata)],
      );
      const subjectPk = subject.rows[0]!.subject_pk;
      const dataKey = await this.#subjectDataKey(client, input.tenantId, subjectPk, subject.rows[0]!.data_key_id);
      // Read on this transaction's connection (the embedded database serves one session).
      const earlier = await this.#templatesOf(client, subjectPk);
      const consent = input.consent;
      await client.query(
        `INSERT INTO consents (subject_pk, legal_basis, purpose, given_at, collection_point, retention_days, evidence_ref, retain_until, retain_aligned_crops)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
        [subjectPk, consent.legalBasis, consent.purpose, consent.givenAt, consent.collectionPoint, consent.retentionDays, consent.evidenceRef, new Date(consent.givenAt.getTime() + consent.retentionDays * DAY_MS), consent.retainAlignedCrops ?? false],
      );
      if (!consent.retainAlignedCrops) {
        // The subject's latest consent no longer covers kept crops: the ones kept before go.
        await client.query('UPDATE templates SET crop = NULL, crop_width = NULL, crop_height = NULL WHERE subject_pk = $1 AND crop IS NOT NULL', [subjectPk]);
      }
      const added: { template: TemplateRecord; templatePk: string }[] = [];
      for (const template of input.templates) {
        const templateId = randomUUID();
        const sealed = seal(dataKey, template.vector, templateContext(templateId));
        const crop = template.crop;
        const { rows } = await client.query<TemplateRow & { template_pk: string }>(
          `INSERT INTO templates (template_id, tenant_id, subject_pk, model_name, model_version, model_sha256, dim, vector, sealed, quality, source_image_sha256, crop, crop_width, crop_height)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, true, $9, $10, $11, $12, $13) RETURNING template_pk, ${TEMPLATE_COLUMNS}`,
          [
            templateId, input.tenantId, subjectPk, template.model.name, template.model.version, template.model.sha256, template.dim, sealed, template.quality, template.sourceImageSha256,
            crop ? seal(dataKey, crop.pixels, cropContext(templateId)) : null, crop?.width ?? null, crop?.height ?? null,
          ],
        );
        added.push({ template: templateFromRow(rows[0]!), templatePk: rows[0]!.template_pk });
      }
      await this.#recordChanges(client, 'add', input.tenantId, added.map(({ template, templatePk }) => ({ templatePk, model: template.model })));
      const { rows } = await client.query<SubjectRow>(`SELECT ${SUBJECT_COLUMNS} WHERE s.subject_pk = $1`, [subjectPk]);
      const response = encodeResponse(subjectFromRow(rows[0]!), added.map((a) => a.template), earlier);
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
  async subjectVectors(
    tenantId: string,
    subjectId: string,
  ): Promise<{ templates: StoredVector[]; pseudonym: string | undefined; consent: { purpose: string; retainUntil: Date } | undefined } | undefined> {
    // One round trip (verify's path): the subject, its templates, its audit pseudonym and its latest consent together.
    const { rows } = await this.#db.pool.query<{ template_pk: string | null; pseudonym: string | null; consent_purpose: string | null; retain_until: Date | null } & TemplateRow & SealedRow>(
      `SELECT t.template_pk, t.model_name, t.model_version, t.model_sha256, t.dim, t.quality, ${SEALED_COLUMNS}, p.pseudonym,
              c.purpose AS consent_purpose, c.retain_until
       FROM subjects s LEFT JOIN templates t ON t.subject_pk = s.subject_pk
       LEFT JOIN subject_pseudonyms p ON p.tenant_id = s.tenant_id AND p.subject_id = s.subject_id
       LEFT JOIN LATERAL (SELECT purpose, retain_until FROM consents WHERE subject_pk = s.subject_pk ORDER BY consent_pk DESC LIMIT 1) c ON true
       WHERE s.tenant_id = $1 AND s.subject_id = $2 ORDER BY t.template_pk`,
      [tenantId, subjectId],
    );
    if (rows.length === 0) return undefined;
    // A subject without templates comes back as one row of nulls (the LEFT JOIN).
    const present = rows.filter((row): row is typeof row & { template_pk: string } => row.template_pk !== null);
    const vectors = await this.#openVectors(present);
    const [first] = rows;
    return {
      templates: present.map((row, i) => storedFromRow(row, vectors[i]!)),
      pseudonym: first!.pseudonym ?? undefined,
      consent: first!.consent_purpose !== null && first!.retain_until !== null ? { purpose: first!.consent_purpose, retainUntil: first!.retain_until } : undefined,
    };
  }

  /**
   * The subject's audit pseudonym (migrations/0002_audit.sql), made now if it has none yet; made
   * only while the subject exists (under a share lock on its row, as the audit trail makes it), so
   * that an erasure committed meanwhile leaves no new link. Undefined when the subject is gone.
   */
  async ensurePseudonym(tenantId: string, subjectId: string): Promise<string | undefined> {
    const { rows } = await this.#db.pool.query<{ pseudonym: string }>(
      `WITH subject AS (SELECT 1 FROM subjects WHERE tenant_id = $1 AND subject_id = $2 FOR SHARE)
       INSERT INTO subject_pseudonyms (tenant_id, subject_id, pseudonym) SELECT $1, $2, $3 FROM subject
       ON CONFLICT (tenant_id, subject_id) DO UPDATE SET pseudonym = subject_pseudonyms.pseudonym RETURNING pseudonym`,
      [tenantId, subjectId, randomUUID()],
    );
    return rows[0]?.pseudonym;
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

  /**
   * The tenant's templates and subjects per model version (whether each is current, by
   * `currentVersion` of its model name), its subject count, and how many of its subjects hold no
   * template of a current version.
   */
  async galleryStatus(tenantId: string, currentVersion: (modelName: string) => Promise<number | undefined>) {
    const versions = await this.#db.pool.query<{ model_name: string; model_version: number; subjects: number; templates: number }>(
      `SELECT model_name, model_version, count(DISTINCT subject_pk)::integer AS subjects, count(*)::integer AS templates
       FROM templates WHERE tenant_id = $1 GROUP BY 1, 2 ORDER BY 1, 2`,
      [tenantId],
    );
    const names = [...new Set(versions.rows.map((r) => r.model_name))];
    const current = new Map((await Promise.all(names.map(async (name) => [name, await currentVersion(name)] as const))).filter((c): c is readonly [string, number] => c[1] !== undefined));
    const counts = await this.#db.pool.query<{ subjects: number; behind: number }>(
      `SELECT count(*)::integer AS subjects,
              count(*) FILTER (WHERE NOT EXISTS (
                SELECT 1 FROM templates t WHERE t.subject_pk = s.subject_pk
                  AND (t.model_name, t.model_version) IN (SELECT * FROM unnest($2::text[], $3::integer[]))))::integer AS behind
       FROM subjects s WHERE s.tenant_id = $1`,
      [tenantId, [...current.keys()], [...current.values()]],
    );
    return {
      versions: versions.rows.map((r) => ({ modelName: r.model_name, modelVersion: r.model_version, subjects: r.subjects, templates: r.templates, current: current.get(r.model_name) === r.model_version })),
      subjects: counts.rows[0]?.subjects ?? 0,
      subjectsBehind: counts.rows[0]?.behind ?? 0,
    };
  }

  /** The gallery's own id, made once by its migrations (index snapshots are tied to it). */
  async galleryId(): Promise<string> {
    const { rows } = await this.#db.pool.query<{ gallery_id: string }>('SELECT gallery_id FROM gallery_identity');
    return rows[0]!.gallery_id;
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
            `SELECT ${INDEX_COLUMNS} FROM templates t ${WITH_DATA_KEY} WHERE t.template_pk > $1 ORDER BY t.template_pk LIMIT $2`,
            [after, pageSize],
          );
          const last = page.rows[page.rows.length - 1];
          if (!last) return position;
          const vectors = await this.#openVectors(page.rows);
          reader.onPage(page.rows.map((row, i) => indexedFromRow(row, vectors[i]!)));
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
      `SELECT ${INDEX_COLUMNS} FROM templates t ${WITH_DATA_KEY} WHERE t.template_pk = ANY($1::bigint[])`,
      [templatePks.map(String)],
    );
    const vectors = await this.#openVectors(rows);
    return rows.map((row, i) => indexedFromRow(row, vectors[i]!));
  }

  /**
   * Erases a subject in one transaction: its templates (announced to the replicas as removals),
   * consent records, stored enrolment responses (their request ids stay, marked erased, so a
   * retried enrolment cannot bring the subject back), the subject and its data key (after which no
   * copy of its sealed templates can be opened). `beforeCommit` runs in the same transaction with
   * the counts (the receipt and the audit event commit with the erasure). Undefined when the tenant
   * has no such subject.
   */
  async eraseSubject<T>(tenantId: string, subjectId: string, beforeCommit: (client: pg.PoolClient, counts: ErasedCounts) => Promise<T>): Promise<T | undefined> {
    return inTransaction(this.#db.pool, async (client) => {
      const subject = await client.query<{ subject_pk: string; data_key_id: string | null }>(
        'SELECT subject_pk, data_key_id FROM subjects WHERE tenant_id = $1 AND subject_id = $2 FOR UPDATE',
        [tenantId, subjectId],
      );
      const found = subject.rows[0];
      if (!found) return undefined;
      const templates = await client.query<{ template_pk: string; model_name: string; model_version: number; model_sha256: string }>(
        'DELETE FROM templates WHERE subject_pk = $1 RETURNING template_pk, model_name, model_version, model_sha256',
        [found.subject_pk],
      );
      await this.#recordChanges(
        client,
        'remove',
        tenantId,
        templates.rows.map((t) => ({ templatePk: t.template_pk, model: { name: t.model_name, version: t.model_version, sha256: t.model_sha256 } })),
      );
      const consents = await client.query('DELETE FROM consents WHERE subject_pk = $1', [found.subject_pk]);
      // The request ids stay, as keyed digests (a caller's request id may name the subject), so
      // that a retried old enrolment is refused instead of bringing the subject back.
      const requests = await client.query<{ request_id: string }>('SELECT request_id FROM enroll_requests WHERE subject_pk = $1', [found.subject_pk]);
      for (const { request_id } of requests.rows) {
        await client.query(
          'UPDATE enroll_requests SET request_id = $3, request_sha256 = $4, response = NULL, subject_pk = NULL WHERE tenant_id = $1 AND request_id = $2',
          [tenantId, request_id, await this.#erasedRequestId(tenantId, request_id), ERASED_REQUEST],
        );
      }
      await client.query('DELETE FROM subjects WHERE subject_pk = $1', [found.subject_pk]);
      // The key itself is destroyed in the key store once this commits (destroyErasedKeys).
      const keys = found.data_key_id === null ? { rowCount: 0 } : await client.query('INSERT INTO key_destructions (key_id) VALUES ($1) ON CONFLICT DO NOTHING', [found.data_key_id]);
      return beforeCommit(client, {
        subject: 1,
        template: templates.rowCount ?? 0,
        consent: consents.rowCount ?? 0,
        enroll_response: requests.rowCount ?? 0,
        data_key: keys.rowCount ?? 0,
      });
    });
  }

  /**
   * Destroys in the key store the data keys of committed erasures still pending (an earlier run
   * may have stopped between commit and destruction, or before its scrub). Returns their ids, for
   * {@link settleKeyDestructions} once the erased rows are scrubbed.
   */
  async destroyErasedKeys(): Promise<string[]> {
    const { rows } = await this.#db.pool.query<{ key_id: string }>('SELECT key_id FROM key_destructions ORDER BY request_time');
    for (const { key_id } of rows) await this.#keyStore.destroy(key_id);
    return rows.map((row) => row.key_id);
  }

  /**
   * Destroys the data keys no subject refers to that were stored at least `minAgeMs` ago: an
   * enrolment stores its subject's key before its transaction commits, so one that failed leaves a
   * key that nothing uses, yet that would unseal what the aborted transaction left in the
   * write-ahead log. The age keeps the sweep clear of enrolments still in flight (on any replica).
   * Returns how many it destroyed.
   */
  async destroyUnusedKeys(minAgeMs: number): Promise<number> {
    const candidates = await this.#keyStore.keyIds(minAgeMs);
    let destroyed = 0;
    for (let start = 0; start < candidates.length; start += 1_000) {
      const batch = candidates.slice(start, start + 1_000);
      const { rows } = await this.#db.pool.query<{ data_key_id: string }>('SELECT data_key_id FROM subjects WHERE data_key_id = ANY($1::uuid[])', [batch]);
      const used = new Set(rows.map((row) => row.data_key_id));
      for (const keyId of batch) if (!used.has(keyId) && (await this.#keyStore.destroy(keyId))) destroyed += 1;
    }
    return destroyed;
  }

  /** Ends the pending destructions of `keyIds` (destroyed, and their erasures' rows scrubbed). */
  async settleKeyDestructions(keyIds: readonly string[]): Promise<void> {
    if (keyIds.length > 0) await this.#db.pool.query('DELETE FROM key_destructions WHERE key_id = ANY($1::uuid[])', [keyIds]);
  }

  /** Everything held about a subject (vectors and kept crops opened only when `withVectors`), or undefined. */
  async exportSubject(tenantId: string, subjectId: string, withVectors: boolean): Promise<SubjectExport | undefined> {
    return inTransaction(
      this.#db.pool,
      async (client) => {
        const subject = await client.query<SubjectRow>(`SELECT ${SUBJECT_COLUMNS} WHERE s.tenant_id = $1 AND s.subject_id = $2`, [tenantId, subjectId]);
        const row = subject.rows[0];
        if (!row) return undefined;
        const consents = await client.query<Omit<SubjectRow, 'legal_basis'> & { legal_basis: number; record_time: Date }>(
          'SELECT legal_basis, purpose, given_at, collection_point, retention_days, evidence_ref, retain_until, retain_aligned_crops, record_time FROM consents WHERE subject_pk = $1 ORDER BY consent_pk',
          [row.subject_pk],
        );
        const templates = await client.query<TemplateRow & SealedRow & { crop: Buffer | null; crop_width: number | null; crop_height: number | null }>(
          `SELECT t.model_name, t.model_version, t.model_sha256, t.dim, t.quality, t.source_image_sha256, t.create_time, (t.crop IS NOT NULL) AS crop_retained,
                  t.crop, t.crop_width, t.crop_height, ${SEALED_COLUMNS}
           FROM templates t ${WITH_DATA_KEY} WHERE t.subject_pk = $1 ORDER BY t.template_pk`,
          [row.subject_pk],
        );
        const vectors = withVectors ? await this.#openVectors(templates.rows) : [];
        const cropped = withVectors ? templates.rows.filter((t) => t.crop) : [];
        const crops = new Map((await this.#openSealed(cropped.map((t) => ({ ...t, vector: t.crop! })), cropContext)).map((pixels, i) => [cropped[i]!.template_id, pixels]));
        return {
          subject: subjectFromRow(row),
          consents: consents.rows.map((c) => ({
            legalBasis: c.legal_basis,
            purpose: c.purpose,
            givenAt: c.given_at,
            collectionPoint: c.collection_point,
            retentionDays: c.retention_days,
            evidenceRef: c.evidence_ref,
            retainUntil: c.retain_until,
            retainAlignedCrops: c.retain_aligned_crops ?? false,
            recordTime: c.record_time,
          })),
          templates: templates.rows.map((t, i) => ({
            ...templateFromRow(t),
            ...(withVectors ? { vector: decodeEmbedding(vectors[i]!, t.dim) } : {}),
            ...(crops.has(t.template_id) ? { crop: { pixels: crops.get(t.template_id)!, width: t.crop_width!, height: t.crop_height! } } : {}),
          })),
        };
      },
      'REPEATABLE READ',
    );
  }

  /**
   * The templates of one model version whose subjects gave explicit consent (Art. 9(2)(a)) for
   * model improvement, by a consent record still within its retention; opened, grouped by subject.
   */
  async trainingSubjects(tenantId: string, model: { name: string; version: number }): Promise<TrainingSubject[]> {
    const { rows } = await this.#db.pool.query<SealedRow & { subject_id: string }>(
      `SELECT s.subject_id, ${SEALED_COLUMNS} FROM templates t ${WITH_DATA_KEY}
       WHERE t.tenant_id = $1 AND t.model_name = $2 AND t.model_version = $3
         AND EXISTS (SELECT 1 FROM consents c WHERE c.subject_pk = t.subject_pk AND c.purpose = $4 AND c.legal_basis = $5 AND c.retain_until > now())
       ORDER BY t.subject_pk, t.template_pk`,
      [tenantId, model.name, model.version, MODEL_IMPROVEMENT_PURPOSE, LegalBasis.EXPLICIT_CONSENT],
    );
    const vectors = await this.#openVectors(rows);
    const subjects = new Map<string, Uint8Array[]>();
    rows.forEach((row, i) => subjects.set(row.subject_id, [...(subjects.get(row.subject_id) ?? []), vectors[i]!]));
    return [...subjects].map(([subjectId, held]) => ({ subjectId, vectors: held }));
  }

  /** Each model name with kept crops, and the tenants that hold them. */
  async keptCropTenants(): Promise<{ modelName: string; tenantId: string }[]> {
    const { rows } = await this.#db.pool.query<{ model_name: string; tenant_id: string }>('SELECT DISTINCT model_name, tenant_id FROM templates WHERE crop IS NOT NULL ORDER BY 1, 2');
    return rows.map((r) => ({ modelName: r.model_name, tenantId: r.tenant_id }));
  }

  /**
   * The tenant's subjects that hold retained crops of an older version of `model.name` but no
   * template of `model`: what a re-embedding run has to do, in subject id order.
   */
  async subjectsToReembed(tenantId: string, model: { name: string; version: number }): Promise<string[]> {
    const { rows } = await this.#db.pool.query<{ subject_id: string }>(
      `SELECT s.subject_id FROM subjects s WHERE s.tenant_id = $1
         AND EXISTS (SELECT 1 FROM templates t WHERE t.subject_pk = s.subject_pk AND t.model_name = $2 AND t.model_version <> $3 AND t.crop IS NOT NULL)
         AND NOT EXISTS (SELECT 1 FROM templates t WHERE t.subject_pk = s.subject_pk AND t.model_name = $2 AND t.model_version = $3)
       ORDER BY s.subject_id`,
      [tenantId, model.name, model.version],
    );
    return rows.map((r) => r.subject_id);
  }

  /**
   * A subject's retained crops of `model.name`, from the latest other version that has any (the
   * re-created templates keep their crops, so older ones would repeat them), opened; with the
   * subject's metadata and latest consent. Undefined when the subject is gone or has none.
   */
  async retainedCrops(tenantId: string, subjectId: string, model: { name: string; version: number }): Promise<RetainedCrops | undefined> {
    return inTransaction(
      this.#db.pool,
      async (client) => {
        const subject = await client.query<SubjectRow>(`SELECT ${SUBJECT_COLUMNS} WHERE s.tenant_id = $1 AND s.subject_id = $2`, [tenantId, subjectId]);
        const record = subject.rows[0] && subjectFromRow(subject.rows[0]);
        if (!record?.consent) return undefined;
        const { rows } = await client.query<SealedRow & { model_version: number; quality: number; source_image_sha256: string; crop: Buffer; crop_width: number; crop_height: number }>(
          `SELECT t.model_version, t.quality, t.source_image_sha256, t.crop, t.crop_width, t.crop_height, ${SEALED_COLUMNS}
           FROM templates t ${WITH_DATA_KEY}
           WHERE t.subject_pk = $1 AND t.model_name = $2 AND t.crop IS NOT NULL
             AND t.model_version = (SELECT max(model_version) FROM templates WHERE subject_pk = $1 AND model_name = $2 AND model_version <> $3 AND crop IS NOT NULL)
           ORDER BY t.template_pk`,
          [subject.rows[0]!.subject_pk, model.name, model.version],
        );
        if (rows.length === 0) return undefined;
        const pixels = await this.#openSealed(rows.map((r) => ({ ...r, vector: r.crop })), cropContext);
        return {
          metadata: record.metadata,
          consent: record.consent,
          fromVersion: rows[0]!.model_version,
          crops: rows.map((r, i) => ({ templateId: r.template_id, pixels: pixels[i]!, width: r.crop_width, height: r.crop_height, quality: r.quality, sourceImageSha256: r.source_image_sha256 })),
        };
      },
      'REPEATABLE READ',
    );
  }

  /** Up to `limit` subjects whose latest consent's retention has ended. */
  async expiredSubjects(limit: number): Promise<{ tenantId: string; subjectId: string; retainUntil: Date }[]> {
    const { rows } = await this.#db.pool.query<{ tenant_id: string; subject_id: string; retain_until: Date }>(
      `SELECT s.tenant_id, s.subject_id, c.retain_until FROM subjects s
       JOIN LATERAL (SELECT retain_until FROM consents c WHERE c.subject_pk = s.subject_pk ORDER BY c.consent_pk DESC LIMIT 1) c ON true
       WHERE c.retain_until <= now() ORDER BY c.retain_until LIMIT $1`,
      [limit],
    );
    return rows.map((row) => ({ tenantId: row.tenant_id, subjectId: row.subject_id, retainUntil: row.retain_until }));
  }

  /**
   * Seals what was stored before vectors were sealed (migration 0003): gives every subject a data
   * key and seals its plaintext templates, a batch of subjects per transaction. Returns how many
   * templates it sealed.
   */
  async sealPlaintextTemplates(batch = 200): Promise<number> {
    let sealedTotal = 0;
    for (;;) {
      const done = await inTransaction(this.#db.pool, async (client) => {
        const subjects = await client.query<{ subject_pk: string; tenant_id: string; data_key_id: string | null }>(
          `SELECT subject_pk, tenant_id, data_key_id FROM subjects
           WHERE data_key_id IS NULL OR subject_pk IN (SELECT subject_pk FROM templates WHERE NOT sealed)
           LIMIT $1 FOR UPDATE SKIP LOCKED`,
          [batch],
        );
        for (const subject of subjects.rows) {
          const key = await this.#subjectDataKey(client, subject.tenant_id, subject.subject_pk, subject.data_key_id);
          const plain = await client.query<{ template_pk: string; template_id: string; vector: Buffer }>(
            'SELECT template_pk, template_id, vector FROM templates WHERE subject_pk = $1 AND NOT sealed',
            [subject.subject_pk],
          );
          for (const template of plain.rows) {
            await client.query('UPDATE templates SET vector = $2, sealed = true WHERE template_pk = $1', [template.template_pk, seal(key, template.vector, templateContext(template.template_id))]);
          }
          sealedTotal += plain.rows.length;
        }
        return subjects.rows.length === 0;
      });
      if (done) return sealedTotal;
    }
  }

  /** The subject's data key: unwrapped from the key store, or made (and stored wrapped) for a subject without one. */
  async #subjectDataKey(client: pg.PoolClient, tenantId: string, subjectPk: string, keyId: string | null): Promise<Buffer> {
    if (keyId !== null) return this.#unwrapDataKey(tenantId, keyId);
    const newKeyId = randomUUID();
    const key = newDataKey();
    // On disk before the subject refers to it; a transaction that then fails leaves an unused key.
    await this.#keyStore.put(newKeyId, { tenantId, wrappedKey: await this.#keys.wrap(key, dataKeyContext(tenantId, newKeyId)), masterKeyId: this.#keys.masterKeyId });
    await client.query('UPDATE subjects SET data_key_id = $2 WHERE subject_pk = $1', [subjectPk, newKeyId]);
    return key;
  }

  /** A subject's templates with their vectors, read on `client`. */
  async #templatesOf(client: pg.PoolClient, subjectPk: string): Promise<StoredVector[]> {
    const { rows } = await client.query<TemplateRow & SealedRow & { template_pk: string }>(
      `SELECT t.template_pk, t.model_name, t.model_version, t.model_sha256, t.dim, t.quality, ${SEALED_COLUMNS} FROM templates t ${WITH_DATA_KEY} WHERE t.subject_pk = $1 ORDER BY t.template_pk`,
      [subjectPk],
    );
    const vectors = await this.#openVectors(rows);
    return rows.map((row, i) => storedFromRow(row, vectors[i]!));
  }

  /** What an erased enrolment's request id is kept as. */
  async #erasedRequestId(tenantId: string, requestId: string): Promise<string> {
    return `erased:${await this.#keys.digest('enroll-request', `${tenantId}\0${requestId}`)}`;
  }

  /** A data key from the key store, unwrapped. */
  async #unwrapDataKey(tenantId: string, keyId: string): Promise<Buffer> {
    const stored = await this.#keyStore.get(keyId);
    // Read just as an erasure destroyed it: the subject is gone, and a retry will not see it.
    if (!stored) throw new Error('a subject\'s data key is not in the key store: the subject has been erased (or the key store is not this gallery\'s)');
    return this.#keys.unwrap(stored.wrappedKey, stored.masterKeyId, dataKeyContext(tenantId, keyId));
  }

  /** The plaintext vectors of `rows`, each data key unwrapped once. */
  #openVectors(rows: readonly SealedRow[]): Promise<Uint8Array[]> {
    return this.#openSealed(rows, templateContext);
  }

  /** The plaintext of each row's sealed `vector` column (a vector, or a crop), bound to `context` of its template id. */
  async #openSealed(rows: readonly SealedRow[], context: (templateId: string) => string): Promise<Uint8Array[]> {
    const keys = new Map<string, Promise<Buffer>>();
    return Promise.all(
      rows.map(async (row) => {
        if (!row.sealed) return new Uint8Array(row.vector);
        if (row.key_id === null) throw new Error('a sealed template has no data key');
        let key = keys.get(row.key_id);
        if (!key) keys.set(row.key_id, (key = this.#unwrapDataKey(row.tenant_id, row.key_id)));
        return new Uint8Array(open(await key, row.vector, context(row.template_id)));
      }),
    );
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
