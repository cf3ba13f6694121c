/**
 * Fits the PAD model's logistic head with TensorFlow.js (the trainer's training library): the
 * features are standardised, each class carries half of the loss (bona fide and attack frames need
 * not be as many), L2 regularisation, full-batch Adam from zero weights (deterministic). The
 * standardisation is folded into the returned weights, so the graph takes raw features.
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import type { LinearHead } from './colour-texture-graph.js';

/** Training settings. */
export interface LogisticHeadOptions {
  /** Weight of the L2 penalty (on standardised features). */
  readonly l2: number;
  readonly steps: number;
  readonly learningRate: number;
}

export const DEFAULT_HEAD_OPTIONS: LogisticHeadOptions = { l2: 0.01, steps: 3000, learningRate: 0.01 };

let backendReady: Promise<boolean> | undefined;
const ensureBackend = () => (backendReady ??= tf.setBackend('wasm'));

/** Fits `bona fide = sigmoid(x · w + b)` on `features` (rows of `dim`) with labels (1 bona fide, 0 attack). */
export async function trainLogisticHead(features: readonly Float32Array[], bonaFide: readonly boolean[], dim: number, options: LogisticHeadOptions = DEFAULT_HEAD_OPTIONS): Promise<LinearHead> {
  await ensureBackend();
  const positives = bonaFide.filter(Boolean).length;
  const negatives = bonaFide.length - positives;
  if (positives === 0 || negatives === 0) throw new Error(`training needs bona fide and attack frames (got ${positives} and ${negatives})`);
  const mean = new Float64Array(dim);
  const sd = new Float64Array(dim);
  for (const row of features) row.forEach((v, d) => (mean[d]! += v / features.length));
  for (const row of features) row.forEach((v, d) => (sd[d]! += (v - mean[d]!) ** 2 / features.length));
  sd.forEach((v, d) => (sd[d] = Math.sqrt(v) + 1e-6)); // a bin no crop uses has no spread: kept finite

  const standardised = new Float32Array(features.length * dim);
  features.forEach((row, n) => row.forEach((v, d) => (standardised[n * dim + d] = (v - mean[d]!) / sd[d]!)));
  const weightOf = (positive: boolean) => 0.5 / (positive ? positives : negatives);
  const x = tf.tensor2d(standardised, [features.length, dim]);
  const y = tf.tensor2d(bonaFide.map((b) => (b ? 1 : 0)), [features.length, 1]);
  const sampleWeights = tf.tensor2d(bonaFide.map(weightOf), [features.length, 1]);
  const w = tf.variable(tf.zeros([dim, 1]));
  const b = tf.variable(tf.zeros([1]));
  const optimizer = tf.train.adam(options.learningRate);
  try {
    for (let step = 0; step < options.steps; step++) {
      tf.tidy(() => {
        optimizer.minimize(() => {
          const logits = tf.add(tf.matMul(x, w), b);
          const loss = tf.losses.sigmoidCrossEntropy(y, logits, sampleWeights, 0, tf.Reduction.SUM);
          return tf.add<tf.Scalar>(loss, tf.mul(0.5 * options.l2, tf.sum(tf.square(w))));
        });
      });
    }
    const weights = await w.data();
    const bias = (await b.data())[0]!;
    // Folded: w·(x - mean)/sd + b = (w/sd)·x + (b - Σ w·mean/sd).
    const folded = Float32Array.from(weights, (v, d) => v / sd[d]!);
    return { weights: folded, bias: bias - Array.from(weights).reduce((sum, v, d) => sum + (v * mean[d]!) / sd[d]!, 0) };
  } finally {
    tf.dispose([x, y, sampleWeights, w, b]);
    optimizer.dispose();
  }
}
