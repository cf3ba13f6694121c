/**
 * The liveness service's gRPC handlers: the aligned crops of one capture in, a presentation-attack
 * assessment out, on the PAD model version the manager serves (named in every response). The
 * capture's score is the mean of its frames' scores, held to the model's threshold at the bona
 * fide rejection rate the request asks for (one of the model's operating points), or else the
 * configured one.
 */
import { LIVENESS_MAX_FRAMES } from '@faceprint/contracts';
import { LivenessService } from '@faceprint/contracts/liveness';
import { ModelManager, ModelRegistry } from '@faceprint/model-registry';
import { checkModelPin, FaceprintError, implement, RequestValidator, stageTiming, type ServiceSetup, type SetupContext } from '@faceprint/service-kit';
import { faceprintMeter } from '@faceprint/telemetry';
import type { LivenessConfig } from './liveness-config.js';
import { cropProblem, loadPadModel, operatingPointAt, type PadModel } from './pad-model.js';

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
      v.check(request.targetBpcer >= 0 && request.targetBpcer <= 0.5, 'target_bpcer', `must be in (0, 0.5], or 0 for the service's ${config.targetBpcer}; got ${request.targetBpcer}`);
      v.throwIfInvalid();
      const model = servingModel(); // every frame of this call runs on this version
      checkModelPin(request.model, model.ref, 'liveness service', ': align the frames again to its template');
      const point = request.targetBpcer > 0 ? operatingPointAt(model.operatingPoints, request.targetBpcer) : model.operatingPoint;
      if (!point) {
        const known = model.operatingPoints.map((p) => p.targetBpcer).join(', ');
        throw FaceprintError.failedPrecondition('PAD_OPERATING_POINT', `${model.ref.name}@${model.ref.version}`, `${model.ref.name} v${model.ref.version} has no operating point at BPCER ${request.targetBpcer}; it has: ${known} (choose one, or train the model with it: faceprint models pad-train --target-bpcers)`);
      }
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
        const { threshold, targetBpcer, apcer } = point;
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
        operatingPoints: [...(model?.operatingPoints ?? [])],
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
