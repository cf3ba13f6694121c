/**
 * Test-time flip averaging inside an embedder's graph: every crop is embedded together with its
 * mirror image and the two unit embeddings are summed. Built into the model file rather than done
 * by callers, so that one model version means one kind of embedding (the gateway, the trainer and
 * the eval commands all get it), and its calibrated thresholds belong to exactly that.
 */
import { int, ints, type OnnxGraphBuilder } from './graph-builder.js';

/** Guards the L2 normalisation against an all-zero embedding. */
const NORM_EPSILON = 1e-12;

/**
 * `image` [batch, C, H, W] followed by its mirror images (the last axis reversed):
 * [2 * batch, C, H, W]. Embed the result, then pass the embeddings to `sumOfPairs`.
 */
export function withMirrorImages(g: OnnxGraphBuilder, image: string): string {
  // Slice with step -1 from the last column to before the first reverses the width axis.
  const mirrored = g.node('Slice', [image, g.int64s('mirror_starts', [-1]), g.int64s('mirror_ends', [Number.MIN_SAFE_INTEGER]), g.int64s('mirror_axes', [3]), g.int64s('mirror_steps', [-1])]);
  return g.node('Concat', [image, mirrored], { axis: int(0) });
}

/**
 * From the [2 * batch, features] embeddings of `withMirrorImages`' output, each crop's unit
 * embedding plus its mirror image's: [batch, features] (not normalised again; callers do).
 */
export function sumOfPairs(g: OnnxGraphBuilder, embeddings: string, features: number): string {
  const norms = g.node('Max', [g.node('ReduceL2', [embeddings], { axes: ints([1]), keepdims: int(1) }), g.weight('norm_epsilon', new Float32Array([NORM_EPSILON]), [])]);
  const unit = g.node('Div', [embeddings, norms]);
  const pairs = g.node('Reshape', [unit, g.int64s('pairs_shape', [2, -1, features])]);
  return g.node('ReduceSum', [pairs, g.int64s('pairs_axis', [0])], { keepdims: int(0) });
}
