/**
 * Re-creating templates for a new model version from the aligned crops kept with the old ones
 * (only where the subject's consent allowed keeping them). One subject at a time: its crops of the
 * latest older version are opened, embedded by the embedder (which must serve the target version:
 * the call pins it), and enrolled as new templates, each keeping its crop for the next change.
 * Each subject's enrolment runs under a request id derived from the subject, the target version
 * and the source templates, so that two runs at once (or a run repeated) never enrol a subject twice.
 */
import { createHash } from 'node:crypto';
import { create, toBinary } from '@bufbuild/protobuf';
import { EMBED_MAX_FACES } from '@faceprint/contracts';
import { AuditAction, AuditOutcome, PixelFormat, type CallerContext, type Embedding } from '@faceprint/contracts/common';
import type { EmbedderService } from '@faceprint/contracts/embedder';
import { EnrollTemplatesResponseSchema } from '@faceprint/contracts/matcher';
import type { ModelManifest } from '@faceprint/contracts/trainer';
import { FaceprintError, type ServiceClient } from '@faceprint/service-kit';
import { status } from '@grpc/grpc-js';
import { auditBase } from '../compliance/audited.js';
import type { Gallery } from './gallery.js';
import type { RetainedCrops } from './gallery-store.js';
import { subjectMessage, templateMessage } from './messages.js';

/** Progress of a run. */
export interface ReembedProgress {
  readonly subjectsDone: number;
  readonly subjectsTotal: number;
  readonly templatesAdded: number;
}

/** Where a run works. */
export interface ReembedSettings {
  readonly gallery: Gallery;
  /** The embedder (the matcher's one client). */
  readonly embedder: ServiceClient<typeof EmbedderService>;
  readonly defaultTargetFar: number;
}

/**
 * The request id (and digest) of one subject's re-enrolment: the same source templates for the
 * same target give the same id. Made of random template ids, never of the crops: request ids
 * outlive an erasure.
 */
function reembedRequest(subjectId: string, target: ModelManifest, held: RetainedCrops): { requestId: string; digest: string } {
  const crops = held.crops.map((c) => c.templateId).join(',');
  const digest = createHash('sha256').update(`reembed\n${subjectId}\n${target.model!.name}@${target.model!.version}\n${crops}`).digest('hex');
  return { requestId: `reembed:${digest.slice(0, 48)}`, digest };
}

/** Re-creates `target`'s templates for every subject of `tenantId` that needs them, yielding progress. */
export async function* reembedTemplates(settings: ReembedSettings, tenantId: string, context: CallerContext | undefined, target: ModelManifest): AsyncGenerator<ReembedProgress> {
  const { gallery, embedder } = settings;
  const model = { name: target.model!.name, version: target.model!.version };
  const subjects = await gallery.store.subjectsToReembed(tenantId, model);
  let subjectsDone = 0;
  let templatesAdded = 0;
  yield { subjectsDone, subjectsTotal: subjects.length, templatesAdded };
  if (subjects.length === 0) return;
  for (const subjectId of subjects) {
    const held = await gallery.store.retainedCrops(tenantId, subjectId, model);
    if (held) {
      const faces = held.crops.map((c) => ({ pixels: c.pixels, width: c.width, height: c.height, format: PixelFormat.RGB8 }));
      const embeddings: Embedding[] = [];
      for (let i = 0; i < faces.length; i += EMBED_MAX_FACES) {
        // Pinned: an embedder that serves another version answers FAILED_PRECONDITION.
        const embedded = await embedder.embed({ faces: faces.slice(i, i + EMBED_MAX_FACES), model });
        embeddings.push(...embedded.embeddings);
      }
      if (embeddings.some((e) => e.dim !== target.embeddingDim)) throw new FaceprintError(status.INTERNAL, `the embedder returned embeddings of another dimension than ${model.name} v${model.version}'s ${target.embeddingDim}`);
      const { requestId, digest } = reembedRequest(subjectId, target, held);
      const { retainUntil: _, ...consent } = held.consent;
      const outcome = await gallery.store.enroll(
        {
          tenantId,
          defaultTargetFar: settings.defaultTargetFar,
          requestId,
          requestSha256: digest,
          subjectId,
          metadata: held.metadata,
          consent,
          templates: held.crops.map((crop, i) => ({
            model: { ...model, sha256: target.model!.sha256 },
            dim: embeddings[i]!.dim,
            vector: embeddings[i]!.vector,
            quality: crop.quality,
            sourceImageSha256: crop.sourceImageSha256,
            // Kept again only while the subject's latest consent still covers it.
            ...(consent.retainAlignedCrops ? { crop } : {}),
          })),
        },
        (subject, added) => toBinary(EnrollTemplatesResponseSchema, create(EnrollTemplatesResponseSchema, { subject: subjectMessage(subject), templates: added.map(templateMessage) })),
        (client, kind) =>
          gallery.audit.record(
            {
              ...auditBase(context, AuditAction.ENROLL),
              subjectId,
              outcome: AuditOutcome.SUCCESS,
              details: { reembedded_from: `${model.name}@${held.fromVersion}`, model: `${model.name}@${model.version}`, templates: String(held.crops.length), replayed: String(kind === 'replayed') },
            },
            client,
          ),
      );
      if (outcome.kind === 'created') templatesAdded += held.crops.length;
    }
    subjectsDone++;
    yield { subjectsDone, subjectsTotal: subjects.length, templatesAdded };
  }
  // Searchable on this replica before the run reports itself done.
  await gallery.sync.catchUp();
}
