/**
 * The presentation-attack check of a verify capture: every frame's face (the probe image's and a
 * burst's) aligned to the serving PAD model's template and scored together by the liveness
 * service. Frames of a burst must show the person of the probe image: each is compared with it
 * by the matcher at the tenant's default rate, so a burst cannot mix a live face with someone else's.
 */
import type { DetectedFace, PresentationAssessment } from '@faceprint/contracts/common';
import { FaceprintError, type CallContext } from '@faceprint/service-kit';
import type { Downstream } from './downstream.js';

/** One frame of the capture: its image and the face used. */
export interface CaptureFrame {
  readonly content: Uint8Array;
  readonly face: DetectedFace;
}

/** Scores the frames (the probe image first) with the serving PAD model. */
export async function assessPresentation(downstream: Downstream, frames: readonly CaptureFrame[], why: string, ctx: CallContext): Promise<PresentationAssessment> {
  const { serving, error } = await downstream.liveness.modelStatus({}, { parent: ctx });
  if (!serving) {
    throw FaceprintError.failedPrecondition('PAD_MODEL', 'liveness', `a presentation-attack check is required ${why}, but no PAD model serves${error ? ` (${error})` : ''}: train and promote one (docs/liveness.md)`);
  }
  const crops = await Promise.all(
    frames.map(async ({ content, face }) => {
      const aligned = await downstream.pipeline.aligner.align({ image: { content }, faces: [{ five: face.landmarks }], target: { case: 'model', value: serving } }, { parent: ctx });
      return aligned.faces[0]!.face!;
    }),
  );
  const { assessment } = await downstream.liveness.assess({ frames: crops, model: serving }, { parent: ctx });
  return assessment!;
}
