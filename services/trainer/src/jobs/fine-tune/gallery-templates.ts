/**
 * Training data from the gallery: the templates of the base model version whose subjects gave
 * explicit consent for model improvement, as the matcher hands them over (ExportTrainingTemplates:
 * the matcher decides who qualifies and audits each subject's use). The trainer sees labels that
 * hold within one export, never subject ids, and keeps nothing beyond the job's run.
 */
import { decodeEmbedding } from '@faceprint/contracts';
import type { ModelRef } from '@faceprint/contracts/common';
import { ComplianceService } from '@faceprint/contracts/matcher';
import { clientCredentialsFromEnv, createClient } from '@faceprint/service-kit';

/** The role the matcher asks of a caller that takes templates for training. */
export const MODEL_TRAINING_ROLE = 'model_training';

/** One consented template: its subject's export label and the embedding. */
export interface GalleryTemplate {
  readonly label: string;
  readonly vector: Float32Array;
}

/** The consented templates of `model` in `tenantId`'s gallery, for the job `jobId`. */
export async function consentedGalleryTemplates(matcherAddress: string, tenantId: string, model: Pick<ModelRef, 'name' | 'version'>, jobId: string, signal: AbortSignal): Promise<GalleryTemplate[]> {
  const credentials = clientCredentialsFromEnv(process.env);
  const matcher = createClient(ComplianceService, matcherAddress, { defaultTimeoutMs: 600_000, retry: false, ...(credentials ? { credentials } : {}) });
  const templates: GalleryTemplate[] = [];
  try {
    const context = { tenantId, callerId: 'trainer', roles: [MODEL_TRAINING_ROLE], requestId: jobId };
    for await (const template of matcher.exportTrainingTemplates({ context, model: { name: model.name, version: model.version }, requestRef: `fine-tune job ${jobId}` })) {
      if (signal.aborted) break;
      templates.push({ label: template.label, vector: decodeEmbedding(template.vector, template.dim) });
    }
  } finally {
    matcher.close();
  }
  return templates;
}
