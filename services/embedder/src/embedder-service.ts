/**
 * The embedder's gRPC handlers: aligned crops in, L2-normalised embeddings out, through the
 * dynamic batcher, on the model version the manager serves (named in every response).
 */
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import { encodeEmbedding, EMBED_MAX_FACES } from '@faceprint/contracts';
import { create } from '@bufbuild/protobuf';
import { AlignedFaceSchema, type AlignedFace } from '@faceprint/contracts/common';
import { EmbedderService, ModelState } from '@faceprint/contracts/embedder';
import { ModelManager, ModelRegistry } from '@faceprint/model-registry';
import { checkModelPin, FaceprintError, implement, RequestValidator, stageTiming, type ServiceSetup, type SetupContext } from '@faceprint/service-kit';
import { faceprintMeter } from '@faceprint/telemetry';
import { Batcher } from './batcher.js';
import type { EmbedderConfig } from './embedder-config.js';
import { cropProblem, loadEmbeddingModel, type EmbeddingModel } from './embedding-model.js';

/** The embedder's services, readiness (model loaded and warmed up) and clean-up. */
export function embedderService(config: EmbedderConfig, { log }: Pick<SetupContext, 'log'>): ServiceSetup {
  const registry = new ModelRegistry(config.registryRoot);
  const manager = new ModelManager(registry, config.model, { load: (version) => loadEmbeddingModel(registry, config.model, version, config.ort), log, label: 'embedder' });
  const meter = faceprintMeter();
  const batchSize = meter.createHistogram('faceprint.embedder.batch_size', { description: 'Crops per inference batch' });
  const batchRun = meter.createHistogram('faceprint.embedder.batch_duration', { description: 'Inference time per batch', unit: 'ms' });
  const batcher = new Batcher(config, (size, _waitMs, runMs) => {
    batchSize.record(size);
    batchRun.record(runMs);
  });
  meter
    .createObservableGauge('faceprint.embedder.queue_depth', { description: 'Crops waiting for a batch (an autoscaling signal)' })
    .addCallback((result) => result.observe(batcher.depth));

  const servingModel = (): EmbeddingModel => {
    const model = manager.serving;
    if (!model) throw FaceprintError.unavailable('the embedder model is still loading');
    return model;
  };

  const embed = async (faces: readonly AlignedFace[], model: EmbeddingModel, field: (i: number) => string) => {
    const v = new RequestValidator();
    faces.forEach((face, i) => {
      const problem = cropProblem(face, model);
      if (problem) v.add(field(i), problem);
    });
    v.throwIfInvalid();
    return batcher.submit(model, faces);
  };

  const service = implement(EmbedderService, {
    async embed(request) {
      const v = new RequestValidator();
      v.check(request.faces.length > 0, 'faces', 'at least one crop is required');
      v.check(request.faces.length <= EMBED_MAX_FACES, 'faces', `at most ${EMBED_MAX_FACES} crops per call`);
      v.throwIfInvalid();
      const model = servingModel(); // every crop of this call runs on this version
      checkModelPin(request.model, model.ref, 'embedder');
      const started = performance.now();
      const vectors = await embed(request.faces, model, (i) => `faces[${i}]`);
      return {
        embeddings: vectors.map((vector) => ({ vector: encodeEmbedding(vector), dim: model.dim, model: model.ref })),
        model: model.ref,
        timings: [stageTiming('embed', 'embedder', started)],
      };
    },

    async *embedStream(requests) {
      // Items run as they arrive (batched with everything else); responses are sent as they
      // finish, matched by item_id. The first failure ends the stream with its status.
      type Done = { itemId: string; vector: Float32Array; model: EmbeddingModel };
      const finished: Done[] = [];
      let failure: unknown;
      let inputEnded = false;
      let outstanding = 0;
      let notified = false;
      let wake: (() => void) | undefined;
      const notify = () => {
        notified = true;
        wake?.();
      };
      void (async () => {
        try {
          for await (const request of requests) {
            const model = servingModel();
            outstanding += 1;
            embed([request.face ?? create(AlignedFaceSchema)], model, () => `face (item ${request.itemId})`).then(
              ([vector]) => finished.push({ itemId: request.itemId, vector: vector!, model }),
              (error: unknown) => (failure ??= error),
            ).finally(() => {
              outstanding -= 1;
              notify();
            });
          }
        } catch (error) {
          failure ??= error;
        } finally {
          inputEnded = true;
          notify();
        }
      })();
      for (;;) {
        while (finished.length > 0) {
          const done = finished.shift()!;
          yield { itemId: done.itemId, embedding: { vector: encodeEmbedding(done.vector), dim: done.model.dim, model: done.model.ref } };
        }
        if (failure) throw FaceprintError.from(failure);
        if (inputEnded && outstanding === 0) return;
        if (!notified) await new Promise<void>((resolve) => (wake = resolve));
        notified = false;
      }
    },

    async modelStatus() {
      const describe = (model: EmbeddingModel, state: ModelState) => ({
        model: model.ref,
        state,
        since: timestampFromDate(model.loadedAt),
        template: model.manifest.alignment,
        embeddingDim: model.dim,
      });
      const failed = manager.failed;
      return {
        serving: manager.serving?.ref,
        models: [
          ...(manager.serving ? [describe(manager.serving, ModelState.READY)] : []),
          ...manager.retiring.map((m) => describe(m, ModelState.DRAINING)),
          ...(manager.loading !== undefined ? [{ model: { name: config.model, version: Math.max(0, manager.loading) }, state: ModelState.LOADING }] : []),
          ...(failed ? [{ model: { name: config.model, version: failed.version }, state: ModelState.FAILED, since: timestampFromDate(failed.at), error: failed.error }] : []),
        ],
        queueDepth: batcher.depth,
        maxBatchSize: config.maxBatch,
        executionProvider: config.ort.executionProviders.join(','),
      };
    },
  });

  return { services: [service], ready: () => manager.start(config.watchIntervalMs, config.pinnedVersion), close: () => manager.stop() };
}
