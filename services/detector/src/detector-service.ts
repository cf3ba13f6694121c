/**
 * The detector's gRPC handlers: decode the image, run the detector model's current version (YuNet
 * by default, or any model whose manifest names a decoding the detector knows), and return every
 * face with box, five landmarks, score and quality hints.
 */
import { create } from '@bufbuild/protobuf';
import { ModelRefSchema, type DetectOptions, type ModelRef } from '@faceprint/contracts/common';
import { DetectorService } from '@faceprint/contracts/detector';
import { ImageMemoryBudget, type RgbImage } from '@faceprint/imaging';
import { ModelRegistry } from '@faceprint/model-registry';
import { ortSessionOptions, WorkerSession } from '@faceprint/onnx';
import { FaceprintError, implement, stageTiming, validateDetectRequest, type ServiceSetup } from '@faceprint/service-kit';
import type { DetectorConfig } from './detector-config.js';
import { faceQuality } from './quality.js';
import { detectFaces, detectorModel, type DetectorModel, type Point } from './face-detection.js';

/** Defaults the proto documents for DetectOptions. */
const DEFAULT_SCORE_THRESHOLD = 0.6;
const DEFAULT_MAX_FACES = 1000;

/** The detector's services, its readiness (model loaded and warmed up) and its clean-up. */
export function detectorService(config: DetectorConfig): ServiceSetup {
  let loaded: { session: WorkerSession; detector: DetectorModel; model: ModelRef } | undefined;
  const imageMemory = new ImageMemoryBudget(config.imageMemory);
  // Besides the decoded image, a call holds the network's input: float32 RGB, the longer side at the input size.
  const inputTensorBytes = config.inputSize * config.inputSize * 3 * 4;

  const ready = async () => {
    const { manifest, bytes } = await new ModelRegistry(config.registryRoot).loadModel(config.model);
    // On its own thread, so that the service keeps reading requests, decoding images and answering
    // health checks while an image is in the network.
    const session = await WorkerSession.create(bytes, ortSessionOptions(config.ort));
    try {
      const detector = detectorModel(manifest, async (data, dims) => {
        const { outputs } = await session.run({ [session.inputNames[0]!]: { data, dims } });
        return Object.fromEntries(Object.entries(outputs).map(([name, tensor]) => [name, tensor.data]));
      });
      const missing = detector.head.outputNames.filter((name) => !session.outputNames.includes(name));
      if (missing.length > 0) throw new Error(`${manifest.model?.name} v${manifest.model?.version} has no output ${missing.join(', ')}, which its detector_head reads`);
      await detector.infer(new Float32Array(3 * 320 * 320), [1, 3, 320, 320]); // warm-up
      loaded = { session, detector, model: create(ModelRefSchema, manifest.model) };
    } catch (error) {
      await session.release();
      throw error;
    }
  };

  /** The faces of a decoded image, under the request's options, as the response gives them. */
  const facesIn = async (detector: DetectorModel, image: RgbImage, options: DetectOptions | undefined) => {
    const detections = await detectFaces(detector, image, {
      inputSize: config.inputSize,
      nmsIou: config.nmsIou,
      smallImagePadding: config.smallImagePadding,
      scoreThreshold: options?.scoreThreshold ?? DEFAULT_SCORE_THRESHOLD,
      minFaceSize: options?.minFaceSize ?? 0,
      maxFaces: options?.maxFaces ?? DEFAULT_MAX_FACES,
    });
    const point = ([x, y]: Point) => ({ x, y });
    return detections.map((d) => {
      const [leftEye, rightEye, noseTip, mouthLeft, mouthRight] = d.landmarks;
      return {
        box: d.box,
        score: d.score,
        landmarks: { leftEye: point(leftEye), rightEye: point(rightEye), noseTip: point(noseTip), mouthLeft: point(mouthLeft), mouthRight: point(mouthRight) },
        quality: faceQuality(image, d),
      };
    });
  };

  const service = implement(DetectorService, {
    async detect(request, ctx) {
      validateDetectRequest(request);
      if (!loaded) throw FaceprintError.unavailable('the detector model is still loading');
      const admitted = await imageMemory.admit(request.image!.content, ctx.signal, { workingBytes: inputTensorBytes });
      try {
        const decodeStarted = performance.now();
        const image = await admitted.decode();
        const decoded = stageTiming('decode', 'detector', decodeStarted);
        const detectStarted = performance.now();
        const faces = await facesIn(loaded.detector, image, request.options);
        return {
          faces,
          image: { width: image.width, height: image.height, format: image.format },
          model: loaded.model,
          timings: [decoded, stageTiming('detect', 'detector', detectStarted)],
        };
      } finally {
        admitted.release();
      }
    },
  });

  return { services: [service], ready, close: async () => loaded?.session.release() };
}
