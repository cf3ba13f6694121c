/**
 * YuNet-n (libfacedetection.train, Apache-2.0): a face detector with five landmarks, imported
 * as published (an ONNX file with dynamic input size), pinned by URL and sha256.
 */
import { ModelTask } from '@faceprint/contracts/trainer';
import { inspectModel, manifestShape } from '@faceprint/onnx';
import type { Importer } from './importer.js';
import { fetchPinned, type PinnedFile } from './pinned-download.js';

const COMMIT = '0047ac24afb1a50a0c6105001c89d1b5b805dbf1';

/** The pinned source of YuNet-n with a dynamic input size (height and width multiples of 32). */
export const YUNET_N_SOURCE: PinnedFile = {
  url: `https://github.com/ShiqiYu/libfacedetection.train/raw/${COMMIT}/onnx/yunet_n_dynamic.onnx`,
  sha256: '104ee26c71d5c270ce79a6b3dced91c91013260d29a6bf18f9296c5b8c4c2b12',
  mirrorPath: 'detectors/yunet/yunet_n_dynamic.onnx',
};

/** Imports YuNet-n. */
export const yunetImporter: Importer = {
  name: 'yunet-n',
  summary: 'YuNet-n face detector (boxes, 5 landmarks), libfacedetection.train, Apache-2.0',
  pinnedSha256: YUNET_N_SOURCE.sha256,
  async build({ mirrorDir }) {
    const { bytes } = await fetchPinned(YUNET_N_SOURCE, mirrorDir);
    const info = inspectModel(bytes);
    return {
      model: bytes,
      probeShape: [1, 3, 320, 320],
      name: 'yunet-n',
      manifest: {
        task: ModelTask.DETECTOR,
        source: { kind: 'url', locator: YUNET_N_SOURCE.url, sha256: YUNET_N_SOURCE.sha256 },
        license: 'Apache-2.0',
        description:
          'YuNet-n face detector (WIDER FACE val AP 0.892/0.883/0.811 easy/medium/hard, published). ' +
          'Input: BGR 0..255, no normalisation, height and width multiples of 32. Outputs per stride s in {8,16,32}: ' +
          'cls_s, obj_s [1,N,1], bbox_s [1,N,4], kps_s [1,N,10]; score = sqrt(cls*obj); box centre = (bbox.xy + anchor.xy) * s, ' +
          'size = exp(bbox.wh) * s; landmark = (kps + anchor) * s. Landmarks: left eye, right eye, nose tip, left and right mouth corner.',
        inputs: info.inputs.map((input) => ({
          name: input.name,
          shape: manifestShape(input),
          dtype: input.dtype,
          layout: 'NCHW',
          channelOrder: 'BGR',
          mean: [0, 0, 0],
          std: [1, 1, 1],
        })),
        outputs: info.outputs.map((output) => ({ name: output.name, shape: manifestShape(output), dtype: output.dtype })),
        detectorHead: { kind: 'yunet', strides: [8, 16, 32] },
        lineage: { steps: [`libfacedetection.train ${COMMIT} onnx/yunet_n_dynamic.onnx, imported unchanged`] },
      },
    };
  },
};
