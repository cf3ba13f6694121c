/**
 * The public face API (faceprint.gateway.v1.FaceService): images in, decisions out. Each image
 * goes detect → choose the face → align → embed through the vision services; the embeddings go
 * to the matcher with the caller's tenant and roles. Every call needs an API key with the
 * `operator` role; every response names the models used and the time spent per stage.
 */
import { createHash } from 'node:crypto';
import { create, toBinary } from '@bufbuild/protobuf';
import { encodeEmbedding, limitingQualityFactor, LIVENESS_MAX_FRAMES } from '@faceprint/contracts';
import { EmbeddingSchema, type AlignedFace, type Box, type DetectedFace, type ModelRef, type PresentationAssessment, type StageTiming } from '@faceprint/contracts/common';
import { EnrollRequestSchema, FaceService, VerifyPurpose, type EnrollRequest, type FaceImage } from '@faceprint/contracts/gateway';
import type { MatchDecision } from '@faceprint/contracts/matcher';
import { allInOrder, FaceprintError, implement, RequestValidator, stageTiming, validateDetectRequest, validateImage, validateSubjectId, validateTargetFar, type CallContext, type ServiceRegistration } from '@faceprint/service-kit';
import { status } from '@grpc/grpc-js';
import { authorize, type ApiKeys } from './auth/api-keys.js';
import type { Downstream } from './downstream.js';
import type { GatewayConfig } from './gateway-config.js';
import { assessPresentation } from './presentation-check.js';
import { purposeName, purposeNamed } from './tenant-policy.js';

/** Images per enrolment (the proto's limit). */
const MAX_ENROLL_IMAGES = 10;

/** Intersection over union of two boxes. */
function iou(a: Box, b: Box): number {
  const x = Math.max(0, Math.min(a.x + a.width, b.x + b.width) - Math.max(a.x, b.x));
  const y = Math.max(0, Math.min(a.y + a.height, b.y + b.height) - Math.max(a.y, b.y));
  const inter = x * y;
  return inter === 0 ? 0 : inter / (a.width * a.height + b.width * b.height - inter);
}

/**
 * What can be checked of a request image before it goes through the vision services: the image
 * itself, and the face region's numbers (finite, a position inside the image's first quadrant, a
 * size above zero). Whether the region lies within the image is known once it is decoded.
 */
function validateFaceImage(v: RequestValidator, field: string, faceImage: FaceImage | undefined): void {
  validateImage(v, `${field}.image`, faceImage?.image);
  const region = faceImage?.faceRegion;
  if (!region) return;
  const numbers = [region.x, region.y, region.width, region.height];
  v.check(numbers.every(Number.isFinite), `${field}.face_region`, 'must hold finite numbers');
  v.check(region.x >= 0 && region.y >= 0, `${field}.face_region`, 'x and y must be 0 or more (pixels from the top-left corner)');
  v.check(region.width > 0 && region.height > 0, `${field}.face_region`, 'width and height must be above 0');
}

/** A downstream INVALID_ARGUMENT with its fields named as the caller sent them (under `prefix`). */
function underField(error: unknown, prefix: string): unknown {
  const failure = FaceprintError.from(error);
  if (failure.code !== status.INVALID_ARGUMENT || failure.fieldViolations.length === 0) return failure;
  return FaceprintError.invalidArgument(failure.fieldViolations.map((v) => ({ field: `${prefix}.${v.field}`, description: v.description })));
}

/** One embedded face of a request image. */
interface EmbeddedFace {
  readonly face: DetectedFace;
  readonly embedding: Float32Array;
  /** The aligned crop the embedding was made from. */
  readonly crop: AlignedFace;
  readonly models: { detector: ModelRef | undefined; embedder: ModelRef | undefined };
  readonly timings: StageTiming[];
}

const decisionOf = (d: MatchDecision | undefined) => ({
  score: d?.score ?? 0,
  isMatch: d?.isMatch ?? false,
  threshold: d?.threshold ?? 0,
  targetFar: d?.targetFar ?? 0,
  farUpper95: d?.farUpper95 ?? 0,
  calibrationImpostorPairs: d?.calibrationImpostorPairs ?? 0n,
  templatesCompared: d?.templatesCompared || 1,
});

/** The FaceService of the gateway. */
export function faceService(downstream: Downstream, keys: ApiKeys, config: GatewayConfig): ServiceRegistration {
  const { pipeline, matcher } = downstream;

  /**
   * Detects the faces of one request image and embeds the one to use: the only face, or, with
   * several, the one `face_region` overlaps most. No face, several without a region, or a face
   * below the minimum size, sharpness or unified quality (`minQuality`, the tenant's policy for the
   * call's purpose) is INVALID_ARGUMENT on `field`.
   */
  const embedOne = async (faceImage: FaceImage | undefined, field: string, ctx: CallContext, minQuality: number): Promise<EmbeddedFace> => {
    const v = new RequestValidator();
    validateFaceImage(v, field, faceImage);
    v.throwIfInvalid();
    const content = faceImage!.image!.content;
    const detected = await pipeline.detector.detect({ image: faceImage!.image }, { parent: ctx }).catch((error: unknown) => {
      throw underField(error, field);
    });
    const region = faceImage!.faceRegion;
    let face: DetectedFace | undefined;
    if (detected.faces.length === 0) {
      throw FaceprintError.invalidArgument([{ field: `${field}.image`, description: 'no face was found in the image' }]);
    } else if (region) {
      const best = detected.faces.map((f) => ({ f, overlap: iou(f.box!, region) })).sort((a, b) => b.overlap - a.overlap)[0]!;
      if (best.overlap === 0) throw FaceprintError.invalidArgument([{ field: `${field}.face_region`, description: `overlaps none of the ${detected.faces.length} faces found` }]);
      face = best.f;
    } else if (detected.faces.length > 1) {
      throw FaceprintError.invalidArgument([{ field: `${field}.face_region`, description: `the image holds ${detected.faces.length} faces: set face_region to the one to use` }]);
    } else {
      face = detected.faces[0]!;
    }
    const size = face.quality?.faceSize ?? Math.min(face.box!.width, face.box!.height);
    if (size < config.minFaceSize) {
      throw FaceprintError.invalidArgument([{ field: `${field}.image`, description: `the face is ${Math.round(size)} px, smaller than the ${config.minFaceSize} px required` }]);
    }
    const sharpness = face.quality?.sharpness ?? 0;
    if (sharpness < config.minSharpness) {
      throw FaceprintError.invalidArgument([{ field: `${field}.image`, description: `the face is too blurred: sharpness ${sharpness.toFixed(1)}, below the ${config.minSharpness} required` }]);
    }
    const quality = face.quality?.unifiedScore ?? 0;
    if (quality < minQuality) {
      const limiting = face.quality && limitingQualityFactor(face.quality);
      const why = limiting ? `what lowers it most: ${limiting.measure} ${limiting.value.toFixed(2)} (no loss ${limiting.full})` : 'the detector measured none';
      throw FaceprintError.invalidArgument([{ field: `${field}.image`, description: `the face's quality is ${quality.toFixed(0)}, below the ${minQuality} required; ${why}` }]);
    }
    const embedded = await pipeline.embedFace(content, face, { parent: ctx });
    return { face, embedding: embedded.embedding, crop: embedded.crop, models: { detector: detected.model, embedder: embedded.model }, timings: [...detected.timings, ...embedded.timings] };
  };

  /**
   * Embeds the images of one request at the same time (the services overlap their work and the
   * embedder batches the crops): a two-image compare no longer waits for the first image before it
   * starts the second. When several fail, the first failure in request order is reported, so the
   * field named does not depend on which finished first.
   */
  const embedAll = (images: readonly { image: FaceImage | undefined; field: string }[], ctx: CallContext, minQuality: number): Promise<EmbeddedFace[]> =>
    allInOrder(images.map(({ image, field }) => embedOne(image, field, ctx, minQuality)));

  const probe = (embedded: EmbeddedFace) => create(EmbeddingSchema, { vector: encodeEmbedding(embedded.embedding), dim: embedded.embedding.length, model: embedded.models.embedder });

  const operator = (ctx: CallContext) => authorize(keys, ctx, 'operator');

  /**
   * A digest of the enrolment as the caller sent it, which the matcher's idempotency compares on a
   * retry. Without the consent's `given_at`: a retry made later may stamp the consent later.
   */
  const enrollDigest = (request: EnrollRequest) =>
    createHash('sha256')
      .update(
        toBinary(
          EnrollRequestSchema,
          create(EnrollRequestSchema, {
            ...request,
            consent: request.consent && { ...request.consent, givenAt: undefined },
            subjectMetadata: Object.fromEntries(Object.entries(request.subjectMetadata).sort(([a], [b]) => (a < b ? -1 : 1))),
          }),
        ),
      )
      .digest('hex');

  return implement(FaceService, {
    async enroll(request, ctx) {
      const context = await operator(ctx);
      const v = new RequestValidator();
      v.check(request.requestId.length >= 1 && request.requestId.length <= 128, 'request_id', 'is required: 1-128 characters, the same for retries of this enrolment');
      validateSubjectId(v, 'subject_id', request.subjectId);
      v.check(request.consent !== undefined, 'consent', 'is required: biometric templates need a legal basis (GDPR Art. 9)');
      v.check(request.images.length >= 1 && request.images.length <= MAX_ENROLL_IMAGES, 'images', `must hold 1-${MAX_ENROLL_IMAGES} images`);
      request.images.slice(0, MAX_ENROLL_IMAGES).forEach((image, i) => validateFaceImage(v, `images[${i}]`, image));
      v.throwIfInvalid();
      const started = performance.now();
      // What the tenant requires for the purpose the consent names (a purpose verify knows, else the policy for unspecified).
      const consentPurpose = request.consent!.purpose;
      const policy = config.policy.for(context.tenantId, purposeNamed(consentPurpose) ?? VerifyPurpose.UNSPECIFIED);
      const embedded = await embedAll(request.images.map((image, i) => ({ image, field: `images[${i}]` })), ctx, Math.max(policy.minQuality, policy.minEnrollQuality));
      // Templates for a purpose that needs live captures are made from live captures only: each image is its own capture.
      const checked = policy.presentationAttackCheck
        ? await Promise.all(
            embedded.map((e, i) => assessPresentation(downstream, context, { content: request.images[i]!.image!.content, face: e.face, embedding: probe(e), field: `images[${i}]` }, [], { why: `for an enrolment under consent for ${consentPurpose}`, targetBpcer: policy.padTargetBpcer }, ctx)),
          )
        : [];
      checked.forEach(({ assessment }, i) => {
        if (!assessment.isBonaFide) v.add(`images[${i}].image`, `judged a presentation attack (score ${assessment.score.toFixed(3)}, below the ${assessment.threshold.toFixed(3)} of ${assessment.model?.name} v${assessment.model?.version}): enrol from a live capture`);
      });
      v.throwIfInvalid();
      const enrolled = await matcher.enrollTemplates(
        {
          context,
          requestId: request.requestId,
          requestDigest: enrollDigest(request),
          subjectId: request.subjectId,
          subjectMetadata: request.subjectMetadata,
          consent: request.consent,
          templates: embedded.map((e, i) => ({
            embedding: probe(e),
            quality: (e.face.quality?.unifiedScore ?? 0) / 100,
            sourceImageSha256: createHash('sha256').update(request.images[i]!.image!.content).digest('hex'),
            // Kept (sealed) by the matcher only when the subject agreed, to re-create the template for a new model.
            ...(request.consent?.retainAlignedCrops ? { alignedCrop: e.crop } : {}),
          })),
        },
        { parent: ctx },
      );
      return {
        subjectId: request.subjectId,
        templateIds: enrolled.templates.map((t) => t.templateId),
        templateCount: enrolled.subject?.templateCount ?? 0,
        faces: embedded.map((e) => e.face),
        models: embedded[0]!.models,
        timings: [...embedded.flatMap((e) => e.timings), ...checked.flatMap((c) => c.timings), stageTiming('enroll', 'gateway', started)],
        replayed: enrolled.replayed,
        consistency: enrolled.consistency,
        liveness: checked.map((c) => c.assessment),
      };
    },

    async verify(request, ctx) {
      const context = await operator(ctx);
      const v = new RequestValidator();
      validateSubjectId(v, 'subject_id', request.subjectId);
      validateTargetFar(v, 'target_far', request.targetFar);
      validateFaceImage(v, 'image', request.image);
      v.check(VerifyPurpose[request.purpose] !== undefined, 'purpose', `unknown purpose ${request.purpose}`);
      v.check(request.frames.length < LIVENESS_MAX_FRAMES, 'frames', `at most ${LIVENESS_MAX_FRAMES - 1} frames besides image`);
      request.frames.slice(0, LIVENESS_MAX_FRAMES).forEach((frame, i) => validateFaceImage(v, `frames[${i}]`, frame));
      v.throwIfInvalid();
      const started = performance.now();
      const purpose = purposeName(request.purpose);
      const images = [{ image: request.image, field: 'image' }, ...request.frames.map((image, i) => ({ image, field: `frames[${i}]` }))];
      const policy = config.policy.for(context.tenantId, request.purpose);
      const [embedded, ...burst] = (await embedAll(images, ctx, policy.minQuality)) as [EmbeddedFace, ...EmbeddedFace[]];
      let liveness: { assessment: PresentationAssessment; timings: StageTiming[] } | undefined;
      if (policy.presentationAttackCheck || burst.length > 0) {
        const why = policy.presentationAttackCheck ? `for purpose ${purpose || 'unspecified'}` : 'for a verify with frames';
        const [first, ...rest] = [embedded, ...burst].map((e, i) => ({ content: images[i]!.image!.image!.content, face: e.face, embedding: probe(e), field: images[i]!.field }));
        liveness = await assessPresentation(downstream, context, first!, rest, { why, targetBpcer: policy.padTargetBpcer }, ctx);
      }
      // What the matcher's signed decision record rests on: digests of the images and the models, never an image.
      const evidence = {
        requestId: context.requestId,
        probeImageSha256: images.map(({ image }) => createHash('sha256').update(image!.image!.content).digest('hex')),
        detector: embedded.models.detector,
        probeQuality: embedded.face.quality,
        liveness: liveness?.assessment,
        purpose,
      };
      const verified = await matcher.verify({ context, subjectId: request.subjectId, probe: probe(embedded), targetFar: request.targetFar, evidence }, { parent: ctx });
      return {
        decision: decisionOf(verified.decision),
        face: embedded.face,
        models: embedded.models,
        timings: [...embedded.timings, ...burst.flatMap((e) => e.timings), ...(liveness?.timings ?? []), ...verified.timings, stageTiming('verify', 'gateway', started)],
        decisionRecord: verified.decisionRecord,
        liveness: liveness?.assessment,
      };
    },

    async compare(request, ctx) {
      const context = await operator(ctx);
      const v = new RequestValidator();
      validateTargetFar(v, 'target_far', request.targetFar);
      validateFaceImage(v, 'first', request.first);
      validateFaceImage(v, 'second', request.second);
      v.throwIfInvalid();
      const started = performance.now();
      const { minQuality } = config.policy.for(context.tenantId, VerifyPurpose.UNSPECIFIED);
      const [first, second] = (await embedAll([{ image: request.first, field: 'first' }, { image: request.second, field: 'second' }], ctx, minQuality)) as [EmbeddedFace, EmbeddedFace];
      // Asked for, the matcher signs the decision over the digests of both images (never an image).
      const evidence = request.signDecision
        ? { requestId: context.requestId, probeImageSha256: [request.first!, request.second!].map((f) => createHash('sha256').update(f.image!.content).digest('hex')), detector: first.models.detector }
        : undefined;
      const compared = await matcher.compare({ context, first: probe(first), second: probe(second), targetFar: request.targetFar, evidence }, { parent: ctx });
      return {
        decision: decisionOf(compared.decision),
        firstFace: first.face,
        secondFace: second.face,
        models: first.models,
        timings: [...first.timings, ...second.timings, stageTiming('compare', 'gateway', started)],
        decisionRecord: compared.decisionRecord,
      };
    },

    async identify(request, ctx) {
      const context = await operator(ctx);
      const v = new RequestValidator();
      validateTargetFar(v, 'target_far', request.targetFar);
      validateFaceImage(v, 'image', request.image);
      v.check(request.topK <= 100, 'top_k', 'must be at most 100');
      v.throwIfInvalid();
      const started = performance.now();
      const embedded = await embedOne(request.image, 'image', ctx, config.policy.for(context.tenantId, VerifyPurpose.UNSPECIFIED).minQuality);
      const identified = await matcher.identify({ context, probe: probe(embedded), topK: request.topK, targetFar: request.targetFar }, { parent: ctx });
      return {
        candidates: identified.candidates.map((c) => ({ subjectId: c.subjectId, decision: decisionOf(c.decision) })),
        face: embedded.face,
        models: embedded.models,
        timings: [...embedded.timings, ...identified.timings, stageTiming('identify', 'gateway', started)],
      };
    },

    async detect(request, ctx) {
      await operator(ctx);
      validateDetectRequest(request);
      const started = performance.now();
      const detected = await pipeline.detector.detect({ image: request.image, options: request.options }, { parent: ctx });
      return {
        faces: detected.faces,
        image: detected.image,
        models: { detector: detected.model },
        timings: [...detected.timings, stageTiming('detect-call', 'gateway', started)],
      };
    },

    async getGalleryStatus(_request, ctx) {
      const status = await matcher.getGalleryStatus({ context: await operator(ctx) }, { parent: ctx });
      return {
        versions: status.versions.map((v) => ({ model: v.model, subjects: v.subjects, templates: v.templates, current: v.current })),
        subjects: status.subjects,
        subjectsNeedingReenrolment: status.subjectsNeedingReenrolment,
      };
    },

    async *reembedGallery(_request, ctx) {
      const context = await operator(ctx);
      // What the embedder serves now (asked afresh: a promotion may have just swapped it).
      const serving = (await pipeline.embedder.modelStatus({}, { parent: ctx })).serving;
      if (!serving) throw FaceprintError.unavailable('the embedder has no serving model yet');
      for await (const progress of matcher.reembedTemplates({ context, model: serving }, { parent: ctx })) {
        yield { model: serving, subjectsDone: progress.subjectsDone, subjectsTotal: progress.subjectsTotal, templatesAdded: progress.templatesAdded };
      }
    },
  });
}
