/**
 * The background re-embedder: after a model promotion, re-creates the templates of subjects whose
 * aligned crops were kept (reembedding.ts) without anyone asking, once the embedder serves the new
 * version. Every `intervalMs` it looks, for each model that kept crops are tied to, whether the
 * registry's current version differs from what some subjects hold, and whether the embedder serves
 * it; then it runs each tenant. Every replica runs it: the per-subject request ids make two
 * replicas reaching one subject enrol it once (the second's embedding is wasted, nothing more).
 */
import { create } from '@bufbuild/protobuf';
import { CallerContextSchema, ModelRefSchema } from '@faceprint/contracts/common';
import type { EmbedderService } from '@faceprint/contracts/embedder';
import type { ServiceClient } from '@faceprint/service-kit';
import type { Logger } from '@faceprint/telemetry';
import type { ModelCatalog } from '../matching/model-catalog.js';
import { PeriodicTask } from '../periodic-task.js';
import type { Gallery } from './gallery.js';
import { reembedTemplates } from './reembedding.js';

/** The actor the audit trail names for templates the background re-embedder creates. */
export const REEMBEDDER_ACTOR = 'faceprint-matcher/reembedder';

/** Runs {@link ReembedOnPromotion.pass} every `intervalMs` until stopped. */
export class ReembedOnPromotion {
  readonly #gallery: Gallery;
  readonly #catalog: ModelCatalog;
  readonly #embedder: ServiceClient<typeof EmbedderService>;
  readonly #defaultTargetFar: number;
  readonly #log: Logger;
  readonly #task: PeriodicTask;

  constructor(settings: { gallery: Gallery; catalog: ModelCatalog; embedder: ServiceClient<typeof EmbedderService>; defaultTargetFar: number; intervalMs: number }, log: Logger) {
    this.#gallery = settings.gallery;
    this.#catalog = settings.catalog;
    this.#embedder = settings.embedder;
    this.#defaultTargetFar = settings.defaultTargetFar;
    this.#log = log;
    this.#task = new PeriodicTask(settings.intervalMs, async () => void (await this.pass()), log, 're-embedding from kept crops failed; retrying at the next interval');
  }

  start(): void {
    this.#task.start();
  }

  stop(): Promise<void> {
    return this.#task.stop();
  }

  /** One look: re-embeds, for every tenant, what the serving version lacks; returns the templates created. */
  async pass(): Promise<number> {
    const held = await this.#gallery.store.keptCropTenants();
    if (held.length === 0) return 0;
    let added = 0;
    const serving = (await this.#embedder.modelStatus({})).serving;
    for (const name of new Set(held.map((h) => h.modelName))) {
      const current = await this.#catalog.currentVersion(name);
      // Only once the embedder has swapped to the registry's current version: the calls pin it.
      if (current === undefined || serving?.name !== name || serving.version !== current) continue;
      const target = await this.#catalog.manifest(create(ModelRefSchema, { name, version: current }), 'model');
      for (const { tenantId } of held.filter((h) => h.modelName === name)) {
        const context = create(CallerContextSchema, { tenantId, callerId: REEMBEDDER_ACTOR });
        let last = { subjectsDone: 0, subjectsTotal: 0, templatesAdded: 0 };
        for await (const progress of reembedTemplates({ gallery: this.#gallery, embedder: this.#embedder, defaultTargetFar: this.#defaultTargetFar }, tenantId, context, target)) {
          if (this.#task.stopped) break;
          last = progress;
        }
        if (last.templatesAdded > 0) this.#log.info({ tenantId, model: `${name}@${current}`, subjects: last.subjectsDone, templates: last.templatesAdded }, 're-created templates from kept crops for the promoted model');
        added += last.templatesAdded;
      }
    }
    return added;
  }
}
