/**
 * MinMax calibration: the calibration model (qdq-graph.ts) run in ONNX Runtime on batches of real
 * face crops, keeping each activation's smallest and largest value.
 */
import * as ort from 'onnxruntime-node';
import type { ValueRange } from './qdq-graph.js';

/** One batch of preprocessed crops (NCHW). */
export interface InputBatch {
  readonly tensor: Float32Array;
  readonly dims: readonly number[];
}

/** The range of every listed activation over all `batches`. */
export async function measureActivationRanges(calibrationModel: Uint8Array, inputName: string, activations: readonly string[], batches: Iterable<InputBatch>, signal?: AbortSignal): Promise<Map<string, ValueRange>> {
  const session = await ort.InferenceSession.create(calibrationModel, { graphOptimizationLevel: 'basic' });
  const ranges = new Map<string, { min: number; max: number }>();
  try {
    for (const batch of batches) {
      if (signal?.aborted) break;
      const results = await session.run({ [inputName]: new ort.Tensor('float32', batch.tensor, [...batch.dims]) }, [...activations]);
      for (const name of activations) {
        const values = results[name]!.data as Float32Array;
        let min = Infinity;
        let max = -Infinity;
        for (let i = 0; i < values.length; i++) {
          const v = values[i]!;
          if (v < min) min = v;
          if (v > max) max = v;
        }
        const seen = ranges.get(name);
        ranges.set(name, seen ? { min: Math.min(seen.min, min), max: Math.max(seen.max, max) } : { min, max });
      }
    }
  } finally {
    await session.release();
  }
  return ranges;
}
