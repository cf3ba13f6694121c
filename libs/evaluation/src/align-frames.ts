/** Image files through the detector and aligner over gRPC: one aligned crop of each image's largest face. */
import { AlignerService } from '@faceprint/contracts/aligner';
import type { AlignedFace, AlignmentTemplate, ModelRef } from '@faceprint/contracts/common';
import { DetectorService } from '@faceprint/contracts/detector';
import { chooseFace } from '@faceprint/face-pipeline';
import { forEachConcurrently } from '@faceprint/mesh';
import { createClient } from '@faceprint/service-kit';
import { readImageForServices } from './image-files.js';

/** Where the crops must land: an explicit template, or a registry model whose manifest holds one. */
export type CropTarget = { readonly template: AlignmentTemplate } | { readonly model: ModelRef };

/** Crops of the images (undefined where no face was found), in the order given. */
export async function alignLargestFaces(
  addresses: { readonly detector: string; readonly aligner: string },
  paths: readonly string[],
  target: CropTarget,
  options: { readonly concurrency: number; readonly signal?: AbortSignal; readonly onProgress?: (done: number, total: number) => void },
): Promise<(AlignedFace | undefined)[]> {
  const detector = createClient(DetectorService, addresses.detector);
  const aligner = createClient(AlignerService, addresses.aligner);
  const crops = new Array<AlignedFace | undefined>(paths.length);
  const alignTarget = 'template' in target ? { case: 'template' as const, value: target.template } : { case: 'model' as const, value: target.model };
  let done = 0;
  try {
    await forEachConcurrently(paths, options.concurrency, async (path, i) => {
      if (options.signal?.aborted) return;
      const image = await readImageForServices(path);
      const detected = await detector.detect({ image: { content: image } });
      const face = chooseFace(detected.faces, 'largest', detected.image!);
      if (face) {
        const aligned = await aligner.align({ image: { content: image }, faces: [{ five: face.landmarks }], target: alignTarget });
        crops[i] = aligned.faces[0]!.face;
      }
      options.onProgress?.(++done, paths.length);
    });
  } finally {
    detector.close();
    aligner.close();
  }
  return crops;
}
