/**
 * The aligner's gRPC handlers: fit a similarity transform from each face's five landmarks to the
 * target template (given, or read from an embedder's manifest) and warp the crop; optionally
 * refine the landmarks with the 68-point net first.
 */
import { GRPC_DEFAULT_MAX_MESSAGE_BYTES } from '@faceprint/contracts';
import { AlignerService, type AlignRequest } from '@faceprint/contracts/aligner';
import type { AlignmentTemplate, Landmarks5 } from '@faceprint/contracts/common';
import { PixelFormat } from '@faceprint/contracts/common';
import { ImageMemoryBudget, type RgbImage } from '@faceprint/imaging';
import { ModelRegistry, RegistryError } from '@faceprint/model-registry';
import { ortSessionOptions, WorkerSession } from '@faceprint/onnx';
import { FaceprintError, implement, RequestValidator, stageDuration, stageTiming, validateImage, type ServiceSetup } from '@faceprint/service-kit';
import { status } from '@grpc/grpc-js';
import type { AlignerConfig } from './aligner-config.js';
import { refineLandmarks, type LandmarkInference, type LandmarkNetInput } from './refine.js';
import { fitError, fitSimilarity, warp, type Point } from './similarity.js';

const LANDMARK_FIELDS = ['leftEye', 'rightEye', 'noseTip', 'mouthLeft', 'mouthRight'] as const;
const SNAKE = { leftEye: 'left_eye', rightEye: 'right_eye', noseTip: 'nose_tip', mouthLeft: 'mouth_left', mouthRight: 'mouth_right' } as const;
const MAX_CROP_SIDE = 1024;
const MAX_FACES = 256;

function fivePoints(landmarks: Landmarks5): Point[] {
  return LANDMARK_FIELDS.map((name) => [landmarks[name]!.x, landmarks[name]!.y] as const);
}

/** Checks the request shape; the template itself is checked once resolved. */
function validateAlignRequest(request: AlignRequest): void {
  const v = new RequestValidator();
  validateImage(v, 'image', request.image);
  v.check(request.faces.length > 0, 'faces', 'at least one face is required');
  v.check(request.faces.length <= MAX_FACES, 'faces', `at most ${MAX_FACES} faces`);
  request.faces.forEach((face, i) => {
    for (const name of LANDMARK_FIELDS) {
      const point = face.five?.[name];
      v.check(!!point && Number.isFinite(point.x) && Number.isFinite(point.y), `faces[${i}].five.${SNAKE[name]}`, 'required, with finite x and y');
    }
  });
  v.check(request.target.case !== undefined, 'target', 'a template or a model is required');
  v.throwIfInvalid();
}

function checkTemplate(template: AlignmentTemplate, field: string): void {
  const v = new RequestValidator();
  v.check(template.points.length === 5, `${field}.points`, 'exactly five points are required');
  v.check(template.width >= 16 && template.width <= MAX_CROP_SIDE, `${field}.width`, `must be between 16 and ${MAX_CROP_SIDE}`);
  v.check(template.height >= 16 && template.height <= MAX_CROP_SIDE, `${field}.height`, `must be between 16 and ${MAX_CROP_SIDE}`);
  template.points.forEach((p, i) => v.check(Number.isFinite(p.x) && Number.isFinite(p.y), `${field}.points[${i}]`, 'must be finite'));
  v.throwIfInvalid();
}

/** Bytes one crop of `template` takes (RGB8). */
const cropBytes = (template: AlignmentTemplate) => template.width * template.height * 3;

/**
 * Refuses a request whose crops could not be sent back: the response holds every crop (3 bytes a
 * pixel), and a response over the server's message limit would fail only after every crop had
 * been warped into memory (256 crops of 1024x1024 took 16 s and 3.3 GB before the send failed).
 */
function checkResponseSize(faceCount: number, template: AlignmentTemplate, maxResponseBytes: number): void {
  const perFace = cropBytes(template) + 2048; // pixels, plus transform and up to 68 landmarks
  if (faceCount * perFace <= maxResponseBytes) return;
  const mb = (bytes: number) => (bytes / 1024 / 1024).toFixed(1);
  throw FaceprintError.invalidArgument([
    {
      field: 'faces',
      description: `${faceCount} crops of ${template.width}x${template.height} make a ${mb(faceCount * perFace)} MB response, over the ${mb(maxResponseBytes)} MB message limit: send at most ${Math.floor(maxResponseBytes / perFace)} faces per call`,
    },
  ]);
}

/** Limits the aligner takes from its server settings. */
export interface AlignerLimits {
  /** The largest response the server sends (`FACEPRINT_GRPC_MAX_MESSAGE_BYTES`). */
  readonly maxResponseBytes: number;
}

/** The aligner's services, readiness (landmark net loaded, when configured) and clean-up. */
export function alignerService(config: AlignerConfig, limits: AlignerLimits = { maxResponseBytes: GRPC_DEFAULT_MAX_MESSAGE_BYTES }): ServiceSetup {
  const registry = new ModelRegistry(config.registryRoot);
  const imageMemory = new ImageMemoryBudget(config.imageMemory);
  let landmarkNet: { session: WorkerSession; infer: LandmarkInference; input: LandmarkNetInput } | undefined;

  const ready = async () => {
    if (!config.landmarkModel) return;
    const { manifest, bytes } = await registry.loadModel(config.landmarkModel);
    const spec = manifest.inputs[0]!;
    // On its own thread, as the detector's and embedder's networks: the aligner keeps decoding,
    // warping and answering health checks while a face is in the net.
    const session = await WorkerSession.create(bytes, ortSessionOptions(config.ort));
    const infer: LandmarkInference = async (data, dims) => {
      const { outputs } = await session.run({ [session.inputNames[0]!]: { data, dims } });
      return outputs[session.outputNames[0]!]!.data;
    };
    landmarkNet = { session, infer, input: { size: Number(spec.shape[2]), mean: spec.mean, std: spec.std } };
  };

  // Templates of named versions, read once: a version's template is part of the model (later
  // manifest writes add thresholds and figures, never a new template), and reading the manifest
  // cost about 0.5 ms on every call. `current` is looked up every time: a promotion moves it.
  const templates = new Map<string, AlignmentTemplate>();
  const resolveTemplate = async (request: AlignRequest): Promise<AlignmentTemplate> => {
    if (request.target.case === 'template') {
      checkTemplate(request.target.value, 'template');
      return request.target.value;
    }
    const ref = request.target.value!;
    if (!ref.name) throw FaceprintError.invalidArgument([{ field: 'model.name', description: 'required' }]);
    const key = `${ref.name}@${ref.version}`;
    const known = ref.version ? templates.get(key) : undefined;
    if (known) return known;
    try {
      const manifest = await registry.readManifest(ref.name, ref.version || undefined);
      if (!manifest.alignment) throw FaceprintError.failedPrecondition('MODEL_TEMPLATE', ref.name, `model "${ref.name}" has no alignment template`);
      if (ref.version) templates.set(key, manifest.alignment);
      return manifest.alignment;
    } catch (error) {
      if (error instanceof RegistryError && error.kind === 'NOT_FOUND') throw new FaceprintError(status.NOT_FOUND, error.message);
      throw error;
    }
  };

  /** Aligns every face of a request on its decoded image, with the time spent refining and warping. */
  const alignFaces = async (image: RgbImage, request: AlignRequest, template: AlignmentTemplate) => {
    const target = template.points.map((p) => [p.x, p.y] as const);
    const faces = [];
    let refineMs = 0;
    let warpMs = 0;
    for (const face of request.faces) {
      let five = fivePoints(face.five!);
      let sixtyEight: readonly Point[] = [];
      if (request.refineLandmarks) {
        const refineStarted = performance.now();
        const refined = await refineLandmarks(landmarkNet!.infer, landmarkNet!.input, image, five);
        refineMs += performance.now() - refineStarted;
        five = [...refined.five];
        sixtyEight = refined.sixtyEight;
      }
      const warpStarted = performance.now();
      const transform = fitSimilarity(five, target);
      const pixels = warp(image, transform, template.width, template.height);
      warpMs += performance.now() - warpStarted;
      const toPoint = ([x, y]: Point) => ({ x, y });
      faces.push({
        face: { pixels, width: template.width, height: template.height, format: PixelFormat.RGB8 },
        transform: { m00: transform.a, m01: -transform.b, m02: transform.tx, m10: transform.b, m11: transform.a, m12: transform.ty },
        landmarks: {
          five: { leftEye: toPoint(five[0]!), rightEye: toPoint(five[1]!), noseTip: toPoint(five[2]!), mouthLeft: toPoint(five[3]!), mouthRight: toPoint(five[4]!) },
          sixtyEight: sixtyEight.map(toPoint),
        },
        fitError: fitError(transform, five, target),
      });
    }
    return { faces, refineMs, warpMs };
  };

  const service = implement(AlignerService, {
    async align(request, ctx) {
      validateAlignRequest(request);
      const template = await resolveTemplate(request);
      checkResponseSize(request.faces.length, template, limits.maxResponseBytes);
      if (request.refineLandmarks && !landmarkNet) {
        throw FaceprintError.failedPrecondition('LANDMARK_MODEL', config.landmarkModel || '(none)', 'landmark refinement is not available on this aligner');
      }
      const admitted = await imageMemory.admit(request.image!.content, ctx.signal, { workingBytes: request.faces.length * cropBytes(template) });
      try {
        const decodeStarted = performance.now();
        const image = await admitted.decode();
        const timings = [stageTiming('decode', 'aligner', decodeStarted)];
        const { faces, refineMs, warpMs } = await alignFaces(image, request, template);
        if (request.refineLandmarks) timings.push(stageDuration('refine', 'aligner', refineMs));
        timings.push(stageDuration('warp', 'aligner', warpMs));
        return { faces, template, timings };
      } finally {
        admitted.release();
      }
    },
  });

  return { services: [service], ready, close: async () => landmarkNet?.session.release() };
}
