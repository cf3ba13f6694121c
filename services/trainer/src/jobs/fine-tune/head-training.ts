/**
 * Trains a projection head (a 128x128 linear map, starting at the identity) on top of a frozen
 * backbone's L2-normalised embeddings, with TensorFlow.js (WASM backend: the CPU backend is about
 * six times slower here). Losses from the design notes, each selectable: ArcFace (s 64, m 0.5),
 * softmax with label smoothing 0.1, focal (α 0.25, γ 2) on normalised logits, and triplet with
 * batch-hard mining (margin 0.3). Learning rate: linear warm-up, then cosine decay. Batches hold P
 * identities x K samples, so every loss (triplet above all) sees positives in each batch.
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import type { Random } from '@faceprint/evaluation';

export const LOSSES = ['arcface', 'softmax-ls', 'focal', 'triplet'] as const;
export type Loss = (typeof LOSSES)[number];

/** Training settings. */
export interface HeadTrainingOptions {
  readonly loss: Loss;
  readonly epochs: number;
  readonly learningRate: number;
  readonly warmupEpochs: number;
  /** Identities per batch (P) and samples per identity (K). */
  readonly identitiesPerBatch: number;
  readonly samplesPerIdentity: number;
  readonly random: Random;
  readonly signal?: AbortSignal;
  /** Called after each epoch with its mean loss. */
  readonly onEpoch?: (epoch: number, loss: number) => void;
}

const ARCFACE_SCALE = 64;
const ARCFACE_MARGIN = 0.5;
const LABEL_SMOOTHING = 0.1;
const FOCAL_ALPHA = 0.25;
const FOCAL_GAMMA = 2;
const TRIPLET_MARGIN = 0.3;

let backendReady: Promise<boolean> | undefined;
const ensureBackend = () => (backendReady ??= tf.setBackend('wasm'));

/** The learning rate at a fractional epoch: linear warm-up, then cosine decay to zero. */
export function learningRateAt(epoch: number, options: Pick<HeadTrainingOptions, 'epochs' | 'learningRate' | 'warmupEpochs'>): number {
  if (epoch < options.warmupEpochs) return (options.learningRate * (epoch + 1e-3)) / options.warmupEpochs;
  const progress = (epoch - options.warmupEpochs) / Math.max(1e-9, options.epochs - options.warmupEpochs);
  return 0.5 * options.learningRate * (1 + Math.cos(Math.PI * Math.min(1, progress)));
}

/** The loss of one batch: features [B, D] (normalised inside), labels [B], class weights [C, D]. */
function batchLoss(loss: Loss, features: tf.Tensor2D, labels: tf.Tensor1D, classes: tf.Variable<tf.Rank.R2>, classCount: number): tf.Scalar {
  const f = tf.div<tf.Tensor2D>(features, tf.norm(features, 2, 1, true).add(1e-12));
  if (loss === 'triplet') {
    // Squared distances of unit vectors: 2 - 2 cos.
    const distances = tf.sub(2, tf.mul(2, tf.matMul(f, f, false, true)));
    const same = tf.equal(labels.expandDims(1), labels.expandDims(0));
    const hardestPositive = tf.max(tf.where(same, distances, tf.zerosLike(distances)), 1);
    const hardestNegative = tf.min(tf.where(same, tf.fill(distances.shape, 1e9), distances), 1);
    return tf.mean(tf.relu(hardestPositive.sub(hardestNegative).add(TRIPLET_MARGIN)));
  }
  const w = tf.div(classes, tf.norm(classes, 2, 1, true).add(1e-12));
  const cos = tf.clipByValue(tf.matMul(f, w, false, true), -1 + 1e-6, 1 - 1e-6);
  const oneHot = tf.oneHot(labels, classCount).toFloat();
  let logits: tf.Tensor;
  if (loss === 'arcface') {
    const sin = tf.sqrt(tf.sub(1, tf.square(cos)));
    const phi = tf.sub(tf.mul(cos, Math.cos(ARCFACE_MARGIN)), tf.mul(sin, Math.sin(ARCFACE_MARGIN)));
    // Past θ + m > π the margin would decrease the angle; fall back to the additive form there.
    // (A step mask, not tf.where on a comparison: TensorFlow.js has no gradient for comparisons.)
    const inRange = tf.step(tf.sub(cos, Math.cos(Math.PI - ARCFACE_MARGIN)));
    const safePhi = tf.add(tf.mul(inRange, phi), tf.mul(tf.sub(1, inRange), tf.sub(cos, Math.sin(Math.PI - ARCFACE_MARGIN) * ARCFACE_MARGIN)));
    logits = tf.mul(tf.add(tf.mul(oneHot, safePhi), tf.mul(tf.sub(1, oneHot), cos)), ARCFACE_SCALE);
  } else {
    logits = tf.mul(cos, ARCFACE_SCALE);
  }
  if (loss === 'focal') {
    const logProbabilities = tf.logSoftmax(logits);
    const logPt = tf.sum(tf.mul(oneHot, logProbabilities), 1);
    return tf.mean(tf.mul(-FOCAL_ALPHA, tf.mul(tf.pow(tf.sub(1, tf.exp(logPt)), FOCAL_GAMMA), logPt)));
  }
  return tf.losses.softmaxCrossEntropy<tf.Tensor, tf.Scalar>(oneHot, logits, undefined, loss === 'softmax-ls' ? LABEL_SMOOTHING : 0);
}

/** Batches of P identities x K samples, covering every sample about once per epoch. */
function epochBatches(samplesByIdentity: readonly number[][], p: number, k: number, random: Random): number[][] {
  const total = samplesByIdentity.reduce((n, s) => n + s.length, 0);
  const batches: number[][] = [];
  for (let b = 0; b < Math.max(1, Math.round(total / (p * k))); b++) {
    const batch: number[] = [];
    const chosen = new Set<number>();
    while (chosen.size < Math.min(p, samplesByIdentity.length)) chosen.add(Math.floor(random() * samplesByIdentity.length));
    for (const identity of chosen) {
      const samples = samplesByIdentity[identity]!;
      for (let i = 0; i < k; i++) batch.push(samples[Math.floor(random() * samples.length)]!);
    }
    batches.push(batch);
  }
  return batches;
}

/**
 * Trains the head on `embeddings` (N x D, row-major, unit length) with `labels` (identity index
 * per row); returns the head as a D x D row-major matrix (y = x W) and the loss per epoch.
 */
export async function trainHead(embeddings: Float32Array, labels: Int32Array, dim: number, options: HeadTrainingOptions): Promise<{ weights: Float32Array; losses: number[] }> {
  await ensureBackend();
  const classCount = Math.max(...labels) + 1;
  const samplesByIdentity: number[][] = Array.from({ length: classCount }, () => []);
  labels.forEach((label, i) => samplesByIdentity[label]!.push(i));
  const head = tf.variable(tf.eye(dim));
  // Class centres start at each identity's mean embedding: the head starts as a useful classifier.
  const centres = new Float32Array(classCount * dim);
  labels.forEach((label, i) => {
    for (let d = 0; d < dim; d++) centres[label * dim + d]! += embeddings[i * dim + d]!;
  });
  const classes = tf.variable(tf.tensor2d(centres, [classCount, dim]));
  const optimizer = tf.train.momentum(options.learningRate, 0.9);
  const data = tf.tensor2d(embeddings, [labels.length, dim]);
  const labelTensor = tf.tensor1d(labels, 'int32');
  const losses: number[] = [];
  try {
    for (let epoch = 0; epoch < options.epochs && !options.signal?.aborted; epoch++) {
      const batches = epochBatches(samplesByIdentity, options.identitiesPerBatch, options.samplesPerIdentity, options.random);
      let sum = 0;
      for (const [b, batch] of batches.entries()) {
        optimizer.setLearningRate(learningRateAt(epoch + b / batches.length, options));
        const indices = tf.tensor1d(batch, 'int32');
        const value = tf.tidy(() => {
          const x = tf.gather<tf.Tensor2D>(data, indices);
          const y = tf.gather<tf.Tensor1D>(labelTensor, indices);
          const cost = optimizer.minimize(() => batchLoss(options.loss, tf.matMul(x, head), y, classes, classCount), true, [head, classes])!;
          return cost.dataSync()[0]!;
        });
        indices.dispose();
        sum += value;
      }
      losses.push(sum / batches.length);
      options.onEpoch?.(epoch + 1, losses[losses.length - 1]!);
      await new Promise((resolve) => setImmediate(resolve)); // let the process answer its rpcs between epochs
    }
    return { weights: new Float32Array(await head.data()), losses };
  } finally {
    tf.dispose([head, classes, data, labelTensor]);
    optimizer.dispose();
  }
}
