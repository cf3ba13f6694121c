/**
 * The matcher's gRPC handlers: enrolment and subject reads against the gallery in Postgres,
 * 1:1 verification against a subject's stored templates, and 1:N identification through this
 * replica's vector index, every result confirmed against the database before it is returned.
 * Decisions use the threshold calibrated for the target false-match rate on the probe's model.
 */
import { createHash } from 'node:crypto';
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { timestampDate } from '@bufbuild/protobuf/wkt';
import { cosine, decodeEmbedding, livenessFields, PAGE_SIZE_DEFAULT, PAGE_SIZE_MAX, qualityFields, type RecordedConsentCheck } from '@faceprint/contracts';
import { AuditAction, AuditOutcome, ModelRefSchema, type CallerContext, type Embedding, type ModelRef } from '@faceprint/contracts/common';
import {
  EnrollTemplatesRequestSchema,
  EnrollTemplatesResponseSchema,
  MatchDecisionSchema,
  MatcherService,
  type DecisionEvidence,
  type EnrollTemplatesRequest,
  type MatchDecision,
} from '@faceprint/contracts/matcher';
import type { ModelManifest } from '@faceprint/contracts/trainer';
import { EmbedderService } from '@faceprint/contracts/embedder';
import { createClient, FaceprintError, implement, RequestValidator, stageTiming, validateSubjectId, validateTargetFar, type ServiceSetup, type SetupContext } from '@faceprint/service-kit';
import { faceprintMeter } from '@faceprint/telemetry';
import { apiKeyService } from './api-keys/api-key-service.js';
import { auditBase, auditedCall, type AuditedResult } from './compliance/audited.js';
import { complianceService } from './compliance/compliance-service.js';
import { ReceiptSigner, SubjectEraser } from './compliance/erasure.js';
import { adoptFormerKeyFiles, loadMasterKey, loadRetiredSigningKeys, loadSigningKey } from './compliance/key-files.js';
import { Pkcs11MasterKey } from './compliance/pkcs11-master-key.js';
import { FileKeyStore } from './compliance/key-store.js';
import { RetentionSweeper } from './compliance/retention-sweeper.js';
import { unusedKeySweeper } from './compliance/unused-key-sweeper.js';
import type { PeriodicTask } from './periodic-task.js';
import { fromDatabaseError, withDatabaseErrors } from './database/database-errors.js';
import { ReembedOnPromotion } from './gallery/reembed-on-promotion.js';
import { reembedTemplates } from './gallery/reembedding.js';
import { startGallery, type Gallery } from './gallery/gallery.js';
import type { ModelInventory, NewTemplate, StoredVector } from './gallery/gallery-store.js';
import { subjectMessage, templateMessage } from './gallery/messages.js';
import { decodePageToken, encodePageToken } from './gallery/page-token.js';
import type { MatcherConfig } from './matcher-config.js';
import { enrolmentConsistency, loosestThreshold } from './matching/enrolment-consistency.js';
import { ModelCatalog, type Threshold } from './matching/model-catalog.js';
import {
  checkConsent,
  checkContext,
  checkEmbedding,
  checkMetadata,
  checkAlignedCrop,
  checkTemplateExtras,
  checkTemplateId,
  MAX_TEMPLATES_PER_ENROLL,
} from './matching/request-checks.js';

/** Identify returns at most this many candidates. */
const MAX_TOP_K = 100;
const DEFAULT_TOP_K = 5;
/** How long a tenant's default target false-match rate is cached, in ms. */
const TENANT_CACHE_MS = 5_000;

/**
 * The request's digest for idempotency: the caller's `request_digest`, else the request without its
 * call context, metadata in key order.
 */
function enrollDigest(request: EnrollTemplatesRequest): string {
  if (request.requestDigest) return request.requestDigest;
  const canonical = create(EnrollTemplatesRequestSchema, {
    ...request,
    context: undefined,
    subjectMetadata: Object.fromEntries(Object.entries(request.subjectMetadata).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))),
  });
  return createHash('sha256').update(toBinary(EnrollTemplatesRequestSchema, canonical)).digest('hex');
}

const describeInventory = (inventory: readonly ModelInventory[]) =>
  inventory.map((m) => `${m.modelName} v${m.modelVersion} (${m.count} template${m.count === 1 ? '' : 's'})`).join(', ');

/** The matcher's services, readiness (gallery migrated, index loaded) and clean-up. */
export function matcherService(config: MatcherConfig, { log }: Pick<SetupContext, 'log'>): ServiceSetup {
  const catalog = new ModelCatalog(config.registryRoot);
  const meter = faceprintMeter();
  const syncLag = meter.createHistogram('faceprint.matcher.sync_lag', { description: 'Age of template changes when this replica applied them', unit: 'ms' });
  let gallery: Gallery | undefined;
  let eraser: SubjectEraser | undefined;
  let signer: ReceiptSigner | undefined;
  let sweeper: RetentionSweeper | undefined;
  let keySweeper: PeriodicTask | undefined;
  let reembedder: ReembedOnPromotion | undefined;
  /** The HSM session pool, when the master key is in an HSM (closed after the gallery). */
  let hsmKey: Pkcs11MasterKey | undefined;
  // One client for re-embedding (ReembedTemplates and the background re-embedder); it connects on first use.
  const embedder = createClient(EmbedderService, config.embedderAddress, config.embedderCredentials ? { credentials: config.embedderCredentials } : {});
  meter
    .createObservableGauge('faceprint.matcher.indexed_templates', { description: 'Templates in this replica’s vector index' })
    .addCallback((result) => result.observe(gallery?.index.size ?? 0));

  const ready = (): Gallery => {
    if (!gallery) throw FaceprintError.unavailable('the gallery is still loading');
    return gallery;
  };

  /** The probe's model manifest, checking the probe's dimension against it. */
  const probeModel = async (embedding: Embedding, field: string): Promise<ModelManifest> => {
    const manifest = await catalog.manifest(embedding.model!, `${field}.model`);
    if (embedding.dim !== manifest.embeddingDim) {
      throw FaceprintError.invalidArgument([{ field: `${field}.dim`, description: `model ${embedding.model!.name} v${embedding.model!.version} makes ${manifest.embeddingDim}-dimensional embeddings, got ${embedding.dim}` }]);
    }
    return manifest;
  };

  // Tenants' default rates, cached briefly: they change rarely, and searches are hot.
  const tenantFars = new Map<string, { far: number; expires: number }>();
  const thresholdFor = async (g: Gallery, tenantId: string, manifest: ModelManifest, requested: number | undefined): Promise<Threshold> => {
    let targetFar = requested;
    if (targetFar === undefined) {
      let cached = tenantFars.get(tenantId);
      if (!cached || cached.expires < Date.now()) {
        cached = { far: (await g.store.tenantDefaultFar(tenantId)) ?? config.defaultTargetFar, expires: Date.now() + TENANT_CACHE_MS };
        tenantFars.set(tenantId, cached);
      }
      targetFar = cached.far;
    }
    return catalog.threshold(manifest, targetFar);
  };

  const decision = (score: number, threshold: Threshold, model: ModelRef): MatchDecision =>
    create(MatchDecisionSchema, {
      score,
      isMatch: score >= threshold.threshold,
      threshold: threshold.threshold,
      targetFar: threshold.targetFar,
      farUpper95: threshold.farUpper95,
      calibrationImpostorPairs: threshold.impostorPairs,
      templatesCompared: threshold.comparisons,
      model,
    });

  /** What a signed decision record may say of a caller's evidence: bounded sizes, digests that are digests, scores in range. */
  const checkEvidence = (v: RequestValidator, evidence: DecisionEvidence | undefined) => {
    if (!evidence) return;
    v.check(evidence.requestId.length <= 128, 'evidence.request_id', 'must be at most 128 characters');
    v.check(evidence.probeImageSha256.length <= MAX_TEMPLATES_PER_ENROLL, 'evidence.probe_image_sha256', `must hold at most ${MAX_TEMPLATES_PER_ENROLL} digests`);
    evidence.probeImageSha256.forEach((digest, i) => v.check(/^[0-9a-f]{64}$/.test(digest), `evidence.probe_image_sha256[${i}]`, 'must be a lower-case hex sha256'));
    v.check(evidence.purpose.length <= 64, 'evidence.purpose', 'must be at most 64 characters');
    const liveness = evidence.liveness;
    if (liveness) v.check([liveness.score, liveness.threshold].every((x) => Number.isFinite(x) && x >= 0 && x <= 1), 'evidence.liveness', 'score and threshold must be in [0, 1]');
  };

  /** The signed record of a verify (with the subject's pseudonym) or compare decision (decision-record.ts): the decision, its calibration and the caller's evidence. */
  const signDecision = (tenantId: string, subjectPseudonym: string | undefined, made: MatchDecision, evidence: DecisionEvidence | undefined, consent: RecordedConsentCheck | undefined) => {
    const recorded = (m: ModelRef) => ({ name: m.name, version: m.version, sha256: m.sha256 });
    return signer!.signDecision({
      request_id: evidence?.requestId ?? '',
      tenant_id: tenantId,
      decision_of: subjectPseudonym ? 'verify' : 'compare',
      ...(subjectPseudonym ? { subject_pseudonym: subjectPseudonym } : {}),
      probe_image_sha256: evidence?.probeImageSha256 ?? [],
      models: { embedder: recorded(made.model!), ...(evidence?.detector ? { detector: recorded(evidence.detector) } : {}) },
      // As float32, as the decision on the wire says them.
      score: Math.fround(made.score),
      threshold: Math.fround(made.threshold),
      target_far: made.targetFar,
      far_upper_95: made.farUpper95,
      calibration_impostor_pairs: Number(made.calibrationImpostorPairs),
      templates_compared: made.templatesCompared,
      ...(evidence?.probeQuality ? { probe_quality: qualityFields(evidence.probeQuality) } : {}),
      ...(evidence?.purpose ? { purpose: evidence.purpose } : {}),
      ...(evidence?.liveness ? { liveness: livenessFields(evidence.liveness) } : {}),
      ...(consent ? { consent } : {}),
      decision: made.isMatch ? 'match' : 'no_match',
      decided_at: new Date().toISOString(),
    });
  };

  /**
   * The subject's latest consent against the purpose of a verification: FAILED_PRECONDITION unless
   * it names that purpose and is in force; what was checked goes into the decision record.
   */
  const checkConsentFor = (consent: { purpose: string; retainUntil: Date } | undefined, subjectId: string, purpose: string): RecordedConsentCheck => {
    if (!consent) throw FaceprintError.failedPrecondition('CONSENT_PURPOSE', subjectId, `subject "${subjectId}" has no consent on record, so none for "${purpose}"`);
    if (consent.purpose !== purpose) {
      throw FaceprintError.failedPrecondition('CONSENT_PURPOSE', subjectId, `subject "${subjectId}" consented to "${consent.purpose}", not to "${purpose}": enrol again under a consent for ${purpose}`);
    }
    if (consent.retainUntil.getTime() <= Date.now()) {
      throw FaceprintError.failedPrecondition('CONSENT_EXPIRED', subjectId, `subject "${subjectId}"'s consent ended on ${consent.retainUntil.toISOString()}`);
    }
    return { purpose: consent.purpose, retain_until: consent.retainUntil.toISOString(), checked: 'purpose_matches_and_in_force' };
  };

  /** Runs a call on the loaded gallery with its audit event (compliance/audited.ts). */
  const audited = <T>(context: CallerContext | undefined, action: AuditAction, subjectId: string | undefined, work: (g: Gallery) => Promise<AuditedResult<T>>): Promise<T> => {
    const g = ready();
    return auditedCall(g, context, action, subjectId, () => work(g));
  };

  const matcher = implement(
    MatcherService,
    withDatabaseErrors({
      async enrollTemplates(request) {
        const v = new RequestValidator();
        const tenantId = checkContext(v, request.context);
        v.check(request.requestId.length >= 1 && request.requestId.length <= 128, 'request_id', 'is required: 1-128 characters, the same for retries of this enrolment');
        validateSubjectId(v, 'subject_id', request.subjectId);
        checkMetadata(v, 'subject_metadata', request.subjectMetadata);
        checkConsent(v, 'consent', request.consent);
        v.check(request.templates.length >= 1 && request.templates.length <= MAX_TEMPLATES_PER_ENROLL, 'templates', `must hold 1-${MAX_TEMPLATES_PER_ENROLL} templates`);
        v.check(request.requestDigest === '' || /^[0-9a-f]{64}$/.test(request.requestDigest), 'request_digest', 'must be a lower-case hex sha256');
        request.templates.slice(0, MAX_TEMPLATES_PER_ENROLL).forEach((template, i) => {
          checkEmbedding(v, `templates[${i}].embedding`, template.embedding);
          checkTemplateExtras(v, `templates[${i}]`, template.quality, template.sourceImageSha256);
          checkAlignedCrop(v, `templates[${i}].aligned_crop`, template.alignedCrop, request.consent);
        });
        v.throwIfInvalid();
        const g = ready();
        const templates: NewTemplate[] = [];
        const manifests = new Map<string, ModelManifest>();
        for (const [i, template] of request.templates.entries()) {
          const embedding = template.embedding!;
          const manifest = await probeModel(embedding, `templates[${i}].embedding`);
          manifests.set(`${embedding.model!.name}@${embedding.model!.version}`, manifest);
          templates.push({
            model: { name: embedding.model!.name, version: embedding.model!.version, sha256: manifest.model!.sha256 },
            dim: embedding.dim,
            vector: embedding.vector,
            quality: template.quality,
            sourceImageSha256: template.sourceImageSha256,
            crop: template.alignedCrop && { pixels: template.alignedCrop.pixels, width: template.alignedCrop.width, height: template.alignedCrop.height },
          });
        }
        // Do the photos show one person? Flagged in the response (and stored with it for replays).
        const consistencyWith = (earlier: StoredVector[]) =>
          enrolmentConsistency(
            templates.map((t) => ({ model: t.model, vector: decodeEmbedding(t.vector, t.dim) })),
            earlier.map((t) => ({ model: t.model, vector: decodeEmbedding(t.vector, t.dim) })),
            (model) => {
              const manifest = manifests.get(`${model.name}@${model.version}`);
              return manifest && loosestThreshold(manifest);
            },
          );
        const consent = request.consent!;
        const outcome = await g.store.enroll(
          {
            tenantId,
            defaultTargetFar: config.defaultTargetFar,
            requestId: request.requestId,
            requestSha256: enrollDigest(request),
            subjectId: request.subjectId,
            metadata: request.subjectMetadata,
            consent: {
              legalBasis: consent.legalBasis,
              purpose: consent.purpose,
              givenAt: timestampDate(consent.givenAt!),
              collectionPoint: consent.collectionPoint,
              retentionDays: consent.retentionDays,
              evidenceRef: consent.evidenceRef,
              retainAlignedCrops: consent.retainAlignedCrops,
            },
            templates,
          },
          (subject, added, earlier) => {
            const consistency = consistencyWith(earlier);
            return toBinary(EnrollTemplatesResponseSchema, create(EnrollTemplatesResponseSchema, { subject: subjectMessage(subject), templates: added.map(templateMessage), ...(consistency ? { consistency } : {}) }));
          },
          (client, kind) =>
            g.audit.record(
              {
                ...auditBase(request.context, AuditAction.ENROLL),
                subjectId: request.subjectId,
                outcome: AuditOutcome.SUCCESS,
                details: { purpose: consent.purpose, templates: String(templates.length), replayed: String(kind === 'replayed') },
              },
              client,
            ),
        );
        if (outcome.kind === 'request-erased') {
          throw FaceprintError.failedPrecondition('REQUEST_ID', request.requestId, `request_id "${request.requestId}" enrolled a subject that has since been erased; a new enrolment needs a new request_id`);
        }
        if (outcome.kind === 'request-id-reused') {
          throw FaceprintError.failedPrecondition('REQUEST_ID', request.requestId, `request_id "${request.requestId}" was used for a different enrolment; use a new request_id`);
        }
        // Searchable on this replica before it is acknowledged.
        await g.sync.catchUp();
        const response = fromBinary(EnrollTemplatesResponseSchema, outcome.response);
        response.replayed = outcome.kind === 'replayed';
        return response;
      },

      async getSubject(request) {
        const v = new RequestValidator();
        const tenantId = checkContext(v, request.context);
        validateSubjectId(v, 'subject_id', request.subjectId);
        v.throwIfInvalid();
        return audited(request.context, AuditAction.READ, request.subjectId, async (g) => {
          const found = await g.store.getSubject(tenantId, request.subjectId);
          if (!found) throw FaceprintError.notFound('subject', request.subjectId, tenantId);
          return { response: { subject: subjectMessage(found.subject), templates: found.templates.map(templateMessage) }, details: {} };
        });
      },

      async listSubjects(request) {
        const v = new RequestValidator();
        const tenantId = checkContext(v, request.context);
        v.check(request.pageSize <= PAGE_SIZE_MAX, 'page_size', `must be at most ${PAGE_SIZE_MAX}`);
        v.throwIfInvalid();
        const after = decodePageToken(request.pageToken, tenantId, 'subjects');
        const pageSize = request.pageSize || PAGE_SIZE_DEFAULT;
        const subjects = await ready().store.listSubjects(tenantId, after, pageSize + 1);
        const page = subjects.slice(0, pageSize);
        return {
          subjects: page.map(subjectMessage),
          nextPageToken: subjects.length > pageSize ? encodePageToken(tenantId, 'subjects', page[page.length - 1]!.subjectId) : '',
        };
      },

      async deleteTemplate(request) {
        const v = new RequestValidator();
        const tenantId = checkContext(v, request.context);
        validateSubjectId(v, 'subject_id', request.subjectId);
        checkTemplateId(v, 'template_id', request.templateId);
        v.throwIfInvalid();
        return audited(request.context, AuditAction.DELETE_TEMPLATE, request.subjectId, async (g) => {
          const outcome = await g.store.deleteTemplate(tenantId, request.subjectId, request.templateId);
          if (outcome === 'subject-not-found') throw FaceprintError.notFound('subject', request.subjectId, tenantId);
          if (outcome === 'deleted') await g.sync.catchUp();
          return { response: { deleted: outcome === 'deleted' }, details: { deleted: String(outcome === 'deleted') } };
        });
      },

      async verify(request) {
        const v = new RequestValidator();
        const tenantId = checkContext(v, request.context);
        validateSubjectId(v, 'subject_id', request.subjectId);
        const probe = checkEmbedding(v, 'probe', request.probe);
        validateTargetFar(v, 'target_far', request.targetFar);
        checkEvidence(v, request.evidence);
        v.throwIfInvalid();
        return audited(request.context, AuditAction.VERIFY, request.subjectId, async (g) => {
          const started = performance.now();
          const model = request.probe!.model!;
          const manifest = await probeModel(request.probe!, 'probe');
          const single = await thresholdFor(g, tenantId, manifest, request.targetFar); // an uncalibrated rate fails before any read
          const found = await g.store.subjectVectors(tenantId, request.subjectId);
          if (!found) throw FaceprintError.notFound('subject', request.subjectId, tenantId);
          const stored = found.templates;
          // A verification for a purpose is one the subject's consent names, while it is in force (GDPR Art. 9(2)(a), purpose limitation).
          const consentCheck = request.evidence?.purpose ? checkConsentFor(found.consent, request.subjectId, request.evidence.purpose) : undefined;
          const comparable = stored.filter((t) => t.model.name === model.name && t.model.version === model.version);
          if (comparable.length === 0) {
            const held = describeInventory(await g.store.modelInventory(tenantId, request.subjectId));
            throw FaceprintError.failedPrecondition(
              'MODEL_VERSION',
              `${model.name}@${model.version}`,
              held
                ? `subject "${request.subjectId}" has no template of ${model.name} v${model.version} (it has ${held}); embeddings of different model versions are never compared`
                : `subject "${request.subjectId}" has no templates`,
            );
          }
          // The best of k templates decides, so each is held to the threshold of target_far / k
          // (fused-threshold.ts); where fewer per-comparison rates are calibrated, the k of best quality.
          const threshold = catalog.threshold(manifest, single.targetFar, comparable.length);
          const compared = [...comparable].sort((a, b) => b.quality - a.quality).slice(0, threshold.comparisons);
          let best = { score: -Infinity, templateId: '' };
          for (const template of compared) {
            const score = cosine(probe!, decodeEmbedding(template.vector, template.dim));
            if (score > best.score) best = { score, templateId: template.templateId };
          }
          const made = decision(best.score, threshold, create(ModelRefSchema, manifest.model));
          // A capture the caller's presentation-attack check judged an attack is never a match.
          if (request.evidence?.liveness && !request.evidence.liveness.isBonaFide) made.isMatch = false;
          // The record names the subject by its audit pseudonym (enrolment made it): after an erasure it ties to no one.
          const pseudonym = found.pseudonym ?? (await g.store.ensurePseudonym(tenantId, request.subjectId));
          if (!pseudonym) throw FaceprintError.notFound('subject', request.subjectId, tenantId); // erased meanwhile
          const record = signDecision(tenantId, `pseudonym:${pseudonym}`, made, request.evidence, consentCheck);
          return {
            response: { decision: made, bestTemplateId: best.templateId, timings: [stageTiming('verify', 'matcher', started)], decisionRecord: record },
            details: {
              decision: made.isMatch ? 'match' : 'no_match',
              target_far: String(threshold.targetFar),
              templates_compared: String(threshold.comparisons),
              model: `${model.name}@${model.version}`,
              decision_record_sha256: record.digestSha256,
            },
          };
        });
      },

      async identify(request) {
        const v = new RequestValidator();
        const tenantId = checkContext(v, request.context);
        const probe = checkEmbedding(v, 'probe', request.probe);
        validateTargetFar(v, 'target_far', request.targetFar);
        v.check(request.topK <= MAX_TOP_K, 'top_k', `must be at most ${MAX_TOP_K}`);
        v.throwIfInvalid();
        return audited(request.context, AuditAction.IDENTIFY, undefined, async (g) => {
          const started = performance.now();
          const model = request.probe!.model!;
          const manifest = await probeModel(request.probe!, 'probe');
          const threshold = await thresholdFor(g, tenantId, manifest, request.targetFar);
          const topK = request.topK || DEFAULT_TOP_K;
          const partition = g.index.partition({ tenantId, modelName: model.name, modelVersion: model.version });
          if (!partition) {
            const held = await g.store.modelInventory(tenantId);
            // Nothing to search: an empty gallery, or templates of this version committed by an
            // enrolment still in flight, which the index has not taken in yet.
            if (held.length === 0 || held.some((h) => h.modelName === model.name && h.modelVersion === model.version)) {
              return { response: { candidates: [], searchedTemplates: 0n, timings: [stageTiming('identify', 'matcher', started)] }, details: { candidates: '0', matched: 'false', target_far: String(threshold.targetFar), model: `${model.name}@${model.version}` } };
            }
            throw FaceprintError.failedPrecondition(
              'MODEL_VERSION',
              `${model.name}@${model.version}`,
              `the gallery holds no template of ${model.name} v${model.version} (it holds ${describeInventory(held)}); embeddings of different model versions are never compared`,
            );
          }
          // A subject may hold several templates: search deeper until top_k subjects are confirmed.
          let depth = Math.min(partition.size, topK * 4 + 8);
          let best = new Map<string, { score: number; templateId: string }>();
          for (;;) {
            const hits = partition.search(probe!, depth);
            const confirmed = await g.store.confirmTemplates(tenantId, model, hits.keys);
            best = new Map();
            hits.keys.forEach((key, i) => {
              const template = confirmed.get(key);
              if (!template) return; // deleted since the index saw it
              const previous = best.get(template.subjectId);
              if (!previous || hits.scores[i]! > previous.score) best.set(template.subjectId, { score: hits.scores[i]!, templateId: template.templateId });
            });
            if (best.size >= topK || depth >= partition.size) break;
            depth = Math.min(partition.size, depth * 4);
          }
          const ref = create(ModelRefSchema, manifest.model);
          const candidates = [...best.entries()]
            .sort(([, a], [, b]) => b.score - a.score)
            .slice(0, topK)
            .map(([subjectId, { score, templateId }]) => ({ subjectId, decision: decision(score, threshold, ref), bestTemplateId: templateId }));
          const top = candidates[0];
          return {
            response: { candidates, searchedTemplates: BigInt(partition.size), timings: [stageTiming('identify', 'matcher', started)] },
            // The event names the subject only when it was identified (a match at the threshold).
            subjectId: top?.decision.isMatch ? top.subjectId : undefined,
            details: { candidates: String(candidates.length), matched: String(Boolean(top?.decision.isMatch)), target_far: String(threshold.targetFar), model: `${model.name}@${model.version}` },
          };
        });
      },

      async compare(request) {
        const v = new RequestValidator();
        const tenantId = checkContext(v, request.context);
        const first = checkEmbedding(v, 'first', request.first);
        const second = checkEmbedding(v, 'second', request.second);
        validateTargetFar(v, 'target_far', request.targetFar);
        const [a, b] = [request.first?.model, request.second?.model];
        if (first && second) v.check(a?.name === b?.name && a?.version === b?.version, 'second.model', 'must be the first embedding\'s model version: embeddings of different model versions are never compared');
        checkEvidence(v, request.evidence);
        v.throwIfInvalid();
        const manifest = await probeModel(request.first!, 'first');
        const threshold = await thresholdFor(ready(), tenantId, manifest, request.targetFar);
        const made = decision(cosine(first!, second!), threshold, create(ModelRefSchema, manifest.model));
        // Signed when the caller sends the evidence (a gateway compare with sign_decision); a compare reads no gallery.
        return { decision: made, ...(request.evidence ? { decisionRecord: signDecision(tenantId, undefined, made, request.evidence, undefined) } : {}) };
      },

      async getGalleryStatus(request) {
        const v = new RequestValidator();
        const tenantId = checkContext(v, request.context);
        v.throwIfInvalid();
        // Current: the registry's version of each model, what new probes are embedded with.
        const status = await ready().store.galleryStatus(tenantId, (name) => catalog.currentVersion(name));
        return {
          versions: status.versions.map((m) => ({ model: { name: m.modelName, version: m.modelVersion }, subjects: m.subjects, templates: m.templates, current: m.current })),
          subjects: status.subjects,
          subjectsNeedingReenrolment: status.subjectsBehind,
        };
      },

      async *reembedTemplates(request) {
        const v = new RequestValidator();
        const tenantId = checkContext(v, request.context);
        v.check(Boolean(request.model?.name), 'model.name', 'is required: the version to re-create templates with');
        v.check((request.model?.version ?? 0) > 0, 'model.version', 'is required');
        v.throwIfInvalid();
        const target = await catalog.manifest(create(ModelRefSchema, { name: request.model!.name, version: request.model!.version }), 'model');
        try {
          yield* reembedTemplates({ gallery: ready(), embedder, defaultTargetFar: config.defaultTargetFar }, tenantId, request.context, target);
        } catch (error) {
          throw fromDatabaseError(error);
        }
      },
    }),
    // Caller context (tenant, roles) is taken from the gateway only, which sets it from API keys.
    { callers: () => [config.gatewayIdentity] },
  );

  const compliance = complianceService(() => ({ gallery: ready(), eraser: eraser!, signer: signer! }), config);
  const apiKeys = apiKeyService(ready, config);

  return {
    services: [matcher, compliance, apiKeys],
    ready: async () => {
      await adoptFormerKeyFiles(config.formerKeyDir, config, log);
      const masterKey = config.hsm ? (hsmKey = await Pkcs11MasterKey.open(config.hsm, log)) : await loadMasterKey(config, log);
      signer = new ReceiptSigner(await loadSigningKey(config, log), await loadRetiredSigningKeys(config.retiredSigningKeysDir));
      const keyStore = await FileKeyStore.open(config.keyStoreDir);
      const loaded = await startGallery({ ...config, onSyncLag: (ms) => syncLag.record(ms) }, { wrapper: masterKey, store: keyStore }, log);
      eraser = new SubjectEraser(loaded, signer);
      sweeper = new RetentionSweeper(loaded.store, eraser, config.retentionSweepMs, log);
      sweeper.start();
      keySweeper = unusedKeySweeper(loaded.store, config.unusedKeySweepMs, log);
      keySweeper.start();
      reembedder = new ReembedOnPromotion({ gallery: loaded, catalog, embedder, defaultTargetFar: config.defaultTargetFar, intervalMs: config.reembedIntervalMs }, log);
      reembedder.start();
      gallery = loaded;
    },
    close: async () => {
      await sweeper?.stop();
      await keySweeper?.stop();
      await reembedder?.stop();
      embedder.close();
      await gallery?.close();
      await hsmKey?.close();
    },
  };
}
