/**
 * The liveness service's gRPC handlers: the aligned crops of one capture in, a presentation-attack
 * assessment out, on the PAD model version the manager serves (named in every response). The
 * capture's score is the mean of its frames' scores, held to the model's threshold at the
 * configured bona fide rejection rate.
 */
import { LIVENESS_MAX_FRAMES } from '@faceprint/contracts';
import { LivenessService } from '@faceprint/contracts/liveness';
import { ModelManager, ModelRegistry } from '@faceprint/model-registry';
import { checkModelPin, FaceprintError, implement, RequestValidator, stageTiming, type ServiceSetup, type SetupContext } from '@faceprint/service-kit';
import { faceprintMeter } from '@faceprint/telemetry';
import type { LivenessConfig } from './liveness-config.js';
import { cropProblem, loadPadModel, type PadModel } from './pad-model.js';

/** The liveness services, readiness (a model loaded, when one is promoted) and clean-up. */
export function livenessService(config: LivenessConfig, { log }: Pick<SetupContext, 'log'>): ServiceSetup {
  const registry = new ModelRegistry(config.registryRoot);
  const manager = new ModelManager<PadModel>(registry, config.model, {
    load: (version) => loadPadModel(registry, config.model, version, config.targetBpcer, config.ort),
    log,
    label: 'liveness',
  });
  // Counts of decisions only: no score, image or subject leaves the service.
  const assessments = faceprintMeter().createCounter('faceprint.liveness.assessments', { description: 'Captures assessed, by decision' });

  const servingModel = (): PadModel => {
    const model = manager.serving;
    if (model) return model;
    const why = manager.failed ? `its last load failed: ${manager.failed.error}` : `none of "${config.model}" is promoted in the model registry`;
    throw FaceprintError.failedPrecondition('PAD_MODEL', config.model, `no presentation-attack detection model serves (${why}); train one with \`faceprint models pad-train\` and promote it (docs/liveness.md)`);
  };

  const service = implement(LivenessService, {
    async assess(request) {
      const v = new RequestValidator();
      v.check(request.frames.length > 0, 'frames', 'at least one aligned frame is required');
      v.check(request.frames.length <= LIVENESS_MAX_FRAMES, 'frames', `at most ${LIVENESS_MAX_FRAMES} frames per capture`);
      v.throwIfInvalid();
      const model = servingModel(); // every frame of this call runs on this version
      checkModelPin(request.model, model.ref, 'liveness service', ': align the frames again to its template');
      request.frames.forEach((frame, i) => {
        const problem = cropProblem(frame, model);
        if (problem) v.add(`frames[${i}]`, problem);
      });
      v.throwIfInvalid();
      const started = performance.now();
      model.pending += 1;
      try {
        const frameScores = await model.score(request.frames);
        const score = frameScores.reduce((sum, s) => sum + s, 0) / frameScores.length;
        const { threshold, targetBpcer, apcer } = model.operatingPoint;
        const isBonaFide = score >= threshold;
        assessments.add(1, { decision: isBonaFide ? 'bona_fide' : 'attack' });
        return {
          assessment: { frameScores, score, threshold, isBonaFide, targetBpcer, developmentApcer: apcer, model: model.ref },
          timings: [stageTiming('liveness', 'liveness', started)],
        };
      } finally {
        model.pending -= 1;
      }
    },

    async modelStatus() {
      const model = manager.serving;
      return {
        serving: model?.ref,
        template: model?.template,
        operatingPoint: model?.operatingPoint,
        error: manager.failed?.error ?? '',
      };
    },
  });

  return {
    services: [service],
    // Ready without a model: faceprint ships none, and the first one promoted is loaded then.
    ready: () => manager.start(config.watchIntervalMs, config.pinnedVersion, { required: config.pinnedVersion !== undefined }),
    close: () => manager.stop(),
  };
}
