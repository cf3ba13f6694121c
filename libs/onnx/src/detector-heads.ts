/**
 * Detector output decodings: how a detector's raw outputs become candidate faces (box, five
 * landmarks, score) in the coordinates of the network input. The manifest's `detector_head` names
 * the kind and its parameters, so that an operator's own detector of a known family can be served
 * (docs/models.md, "Bring your own model"). Two families: YuNet's anchor-free heads and
 * RetinaFace's SSD-style prior boxes (the MIT-licensed biubug6 export, and others trained the same way).
 */
import type { DetectorHead, ModelManifest } from '@faceprint/contracts/trainer';

/** A candidate face in network-input pixels: corners, five landmarks (x, y pairs), score. */
export interface Candidate {
  readonly x1: number;
  readonly y1: number;
  readonly x2: number;
  readonly y2: number;
  readonly landmarks: readonly number[];
  readonly score: number;
}

/** Decodes one run's outputs for an input of `width` x `height`; candidates at or above `minScore`. */
export interface HeadDecoder {
  /** The output names the decoder reads. */
  readonly outputNames: readonly string[];
  /** How many values each of those outputs holds for an input of `width` x `height` (to check a model against its head). */
  outputLengths(width: number, height: number): Record<string, number>;
  decode(outputs: Readonly<Record<string, Float32Array>>, width: number, height: number, minScore: number): Candidate[];
}

const YUNET_STRIDES = [8, 16, 32];

/** The decoder a detector manifest describes; throws naming what is missing or unknown. */
export function headDecoderOf(manifest: ModelManifest): HeadDecoder {
  const head = manifest.detectorHead;
  const label = `${manifest.model?.name} v${manifest.model?.version}`;
  if (!head || head.kind === 'yunet') return yunetDecoder(head?.strides.length ? head.strides : YUNET_STRIDES);
  if (head.kind === 'retinaface') {
    const problem = retinafaceProblem(head);
    if (problem) throw new Error(`${label}: detector_head ${problem}`);
    return retinafaceDecoder(head);
  }
  throw new Error(`${label}: detector_head.kind "${head.kind}" is not a decoding the detector knows (yunet, retinaface)`);
}

/** What a "retinaface" head lacks, or undefined when it is complete. */
export function retinafaceProblem(head: DetectorHead): string | undefined {
  if (head.strides.length === 0) return 'strides are required, e.g. [8, 16, 32]';
  if (head.priorSizes.length !== head.strides.length || head.priorSizes.some((p) => p.sizes.length === 0)) return 'prior_sizes must give the prior box sizes of each stride';
  if (head.variances.length !== 2 || head.variances.some((v) => !(v > 0))) return 'variances must be two positive numbers, e.g. [0.1, 0.2]';
  if (!head.boxesOutput || !head.scoresOutput || !head.landmarksOutput) return 'boxes_output, scores_output and landmarks_output are required';
  return undefined;
}

/** YuNet: per stride s and cell, score sqrt(cls * obj); box centre (b.xy + cell) * s, size exp(b.wh) * s; landmarks (k + cell) * s. */
function yunetDecoder(strides: readonly number[]): HeadDecoder {
  return {
    outputNames: strides.flatMap((s) => [`cls_${s}`, `obj_${s}`, `bbox_${s}`, `kps_${s}`]),
    outputLengths(width, height) {
      return Object.fromEntries(
        strides.flatMap((s) => {
          const cells = Math.ceil(width / s) * Math.ceil(height / s);
          return [[`cls_${s}`, cells], [`obj_${s}`, cells], [`bbox_${s}`, 4 * cells], [`kps_${s}`, 10 * cells]];
        }),
      );
    },
    decode(outputs, width, _height, minScore) {
      const candidates: Candidate[] = [];
      for (const stride of strides) {
        const cls = outputs[`cls_${stride}`]!;
        const obj = outputs[`obj_${stride}`]!;
        const bbox = outputs[`bbox_${stride}`]!;
        const kps = outputs[`kps_${stride}`]!;
        const cols = width / stride;
        for (let i = 0; i < cls.length; i++) {
          const score = Math.sqrt(clamp01(cls[i]!) * clamp01(obj[i]!));
          if (score < minScore) continue;
          const col = i % cols;
          const row = Math.floor(i / cols);
          const cx = (bbox[i * 4]! + col) * stride;
          const cy = (bbox[i * 4 + 1]! + row) * stride;
          const w = Math.exp(bbox[i * 4 + 2]!) * stride;
          const h = Math.exp(bbox[i * 4 + 3]!) * stride;
          const landmarks = Array.from({ length: 10 }, (_, k) => (kps[i * 10 + k]! + (k % 2 === 0 ? col : row)) * stride);
          candidates.push({ x1: cx - w / 2, y1: cy - h / 2, x2: cx + w / 2, y2: cy + h / 2, landmarks, score });
        }
      }
      return candidates;
    },
  };
}

/**
 * RetinaFace: square priors of each size at each cell centre of each stride (in that order: stride,
 * row, column, size), normalised to the input; a box is the prior moved by loc.xy * v0 * prior
 * size and scaled by exp(loc.wh * v1), a landmark the prior centre moved by l * v0 * prior size.
 */
function retinafaceDecoder(head: DetectorHead): HeadDecoder {
  const [centreVariance, sizeVariance] = head.variances as [number, number];
  return {
    outputNames: [head.boxesOutput, head.scoresOutput, head.landmarksOutput],
    outputLengths(width, height) {
      const priors = head.strides.reduce((sum, stride, s) => sum + Math.ceil(width / stride) * Math.ceil(height / stride) * head.priorSizes[s]!.sizes.length, 0);
      return { [head.boxesOutput]: 4 * priors, [head.scoresOutput]: 2 * priors, [head.landmarksOutput]: 10 * priors };
    },
    decode(outputs, width, height, minScore) {
      const loc = outputs[head.boxesOutput]!;
      const conf = outputs[head.scoresOutput]!;
      const landmarkOffsets = outputs[head.landmarksOutput]!;
      const candidates: Candidate[] = [];
      let p = 0;
      head.strides.forEach((stride, s) => {
        const rows = Math.ceil(height / stride);
        const cols = Math.ceil(width / stride);
        const sizes = head.priorSizes[s]!.sizes;
        for (let row = 0; row < rows; row++) {
          for (let col = 0; col < cols; col++) {
            for (const size of sizes) {
              const index = p++;
              const score = conf[index * 2 + 1]!;
              if (score < minScore) continue;
              const [pcx, pcy] = [(col + 0.5) * stride, (row + 0.5) * stride];
              const cx = pcx + loc[index * 4]! * centreVariance * size;
              const cy = pcy + loc[index * 4 + 1]! * centreVariance * size;
              const w = size * Math.exp(loc[index * 4 + 2]! * sizeVariance);
              const h = size * Math.exp(loc[index * 4 + 3]! * sizeVariance);
              const landmarks = Array.from({ length: 10 }, (_, k) => (k % 2 === 0 ? pcx : pcy) + landmarkOffsets[index * 10 + k]! * centreVariance * size);
              candidates.push({ x1: cx - w / 2, y1: cy - h / 2, x2: cx + w / 2, y2: cy + h / 2, landmarks, score });
            }
          }
        }
      });
      if (p * 2 !== conf.length) throw new Error(`the detector gave ${conf.length / 2} scores for ${p} prior boxes: its detector_head does not match the model`);
      return candidates;
    },
  };
}

const clamp01 = (x: number) => Math.min(1, Math.max(0, x));
