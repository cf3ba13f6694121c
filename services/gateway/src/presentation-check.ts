/**
 * The presentation-attack check of a verify capture: every frame's face (the probe image's and a
 * burst's) aligned to the serving PAD model's template and scored together by the liveness
 * service. Frames of a burst must show the person of the probe image: each is compared with it
 * by the matcher at the tenant's default rate first, so a burst cannot mix a live face with
 * someone else's (INVALID_ARGUMENT naming the frame).
 */
import type { CallerContext, DetectedFace, Embedding, PresentationAssessment, StageTiming } from '@faceprint/contracts/common';
import { FaceprintError, RequestValidator, stageTiming, type CallContext } from '@faceprint/service-kit';
import { status } from '@grpc/grpc-js';
import type { Downstream } from './downstream.js';

/** One frame of the capture: its image, the face used and its embedding. */
export interface CaptureFrame {
  readonly content: Uint8Array;
  readonly face: DetectedFace;
  readonly embedding: Embedding;
  /** The request field it came from, e.g. `frames[0]`. */
  readonly field: string;
}

/**
 * Checks that the burst shows one person, then scores its frames (the probe image first) with the
 * serving PAD model, deciding at `targetBpcer` (0: the liveness service's own operating point).
 */
export async function assessPresentation(
  downstream: Downstream,
  context: CallerContext,
  probe: CaptureFrame,
  burst: readonly CaptureFrame[],
  check: { readonly why: string; readonly targetBpcer: number },
  ctx: CallContext,
): Promise<{ assessment: PresentationAssessment; timings: StageTiming[] }> {
  const { why, targetBpcer } = check;
  const started = performance.now();
  const compared = await Promise.all(burst.map((frame) => downstream.matcher.compare({ context, first: probe.embedding, second: frame.embedding }, { parent: ctx })));
  const v = new RequestValidator();
  compared.forEach(({ decision }, i) => {
    if (!decision?.isMatch) v.add(burst[i]!.field, `shows another person than image (score ${decision?.score.toFixed(3)}, below the ${decision?.threshold.toFixed(3)} needed at FAR ${decision?.targetFar})`);
  });
  v.throwIfInvalid();

  // The crops are made for one model version; a hot swap in between refuses them, and they are made again for the new one.
  const assess = async (refresh: boolean) => {
    const { serving, error } = await downstream.livenessModel(ctx, refresh);
    if (!serving) {
      throw FaceprintError.failedPrecondition('PAD_MODEL', 'liveness', `a presentation-attack check is required ${why}, but no PAD model serves${error ? ` (${error})` : ''}: train and promote one (docs/liveness.md)`);
    }
    const crops = await Promise.all(
      [probe, ...burst].map(async ({ content, face }) => {
        const aligned = await downstream.pipeline.aligner.align({ image: { content }, faces: [{ five: face.landmarks }], target: { case: 'model', value: serving } }, { parent: ctx });
        return aligned.faces[0]!.face!;
      }),
    );
    return downstream.liveness.assess({ frames: crops, model: serving, targetBpcer }, { parent: ctx });
  };
  const assessed = await assess(false).catch((error: unknown) => {
    const refused = FaceprintError.from(error);
    const swapped = refused.details.some((d) => d.$typeName === 'google.rpc.PreconditionFailure' && d.violations.some((v) => v.type === 'MODEL_VERSION'));
    if (refused.code === status.FAILED_PRECONDITION && swapped) return assess(true);
    throw error;
  });
  return { assessment: assessed.assessment!, timings: [...assessed.timings, stageTiming('presentation-check', 'gateway', started)] };
}
