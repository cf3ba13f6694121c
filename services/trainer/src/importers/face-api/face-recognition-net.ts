/**
 * FaceRecognitionNet (face-api.js; dlib's ResNet-34-like face recognition model) as ONNX.
 * The topology follows face-api.js's `faceRecognitionNet` (read there, not copied): a 7x7/2 conv
 * and a 3x3/2 max pool, then residual blocks at 32, 64, 128 and 256 channels with "down" blocks
 * that halve the size (an average-pooled shortcut, zero-padded to the new channel count), a
 * global average and a 256x128 projection. Each conv is followed by a per-channel scale layer,
 * folded here into the conv's weights and bias.
 *
 * Input `image` [batch, 3, 150, 150]: RGB, (pixel - mean) / 255 with the manifest's mean.
 * Output `embedding` [batch, 128]: not normalised (the embedder L2-normalises). Built with
 * `flipAverage`, the graph embeds each crop and its mirror image and sums the two unit embeddings.
 */
import { OnnxGraphBuilder, serializeModel, sumOfPairs, withMirrorImages } from '@faceprint/onnx';
import { add, conv2d, dense, flatten, padEnd, pool, relu, type Feature, type Padding } from './tf-layers.js';
import type { WeightMap } from './weights.js';

/** The crop size the net expects. */
export const FACE_RECOGNITION_INPUT_SIZE = 150;
/** face-api.js's per-channel RGB mean; inputs are (pixel - mean) / 255. */
export const FACE_RECOGNITION_MEAN_RGB = [122.782, 117.001, 104.298] as const;

/** A conv followed by its scale layer, folded into one conv: (W*x + b) * s + t. */
function scaledConv(g: OnnxGraphBuilder, weights: WeightMap, prefix: string, x: Feature, stride: number, padding: Padding): Feature {
  const filters = weights.get(`${prefix}/conv/filters`, 4);
  const bias = weights.get(`${prefix}/conv/bias`, 1).data;
  const scale = weights.get(`${prefix}/scale/weights`, 1).data;
  const shift = weights.get(`${prefix}/scale/biases`, 1).data;
  const outChannels = filters.shape[3]!;
  const folded = new Float32Array(filters.data.length);
  filters.data.forEach((w, i) => (folded[i] = w * scale[i % outChannels]!)); // HWIO: output channel is the last axis
  const foldedBias = bias.map((b, o) => b * scale[o]! + shift[o]!);
  return conv2d(g, prefix, x, { shape: filters.shape, data: folded }, foldedBias, { stride, padding });
}

function residual(g: OnnxGraphBuilder, weights: WeightMap, prefix: string, x: Feature): Feature {
  const first = relu(g, scaledConv(g, weights, `${prefix}/conv1`, x, 1, 'same'));
  const second = scaledConv(g, weights, `${prefix}/conv2`, first, 1, 'same');
  return relu(g, add(g, second, x));
}

function residualDown(g: OnnxGraphBuilder, weights: WeightMap, prefix: string, x: Feature): Feature {
  const first = relu(g, scaledConv(g, weights, `${prefix}/conv1`, x, 2, 'valid'));
  let main = scaledConv(g, weights, `${prefix}/conv2`, first, 1, 'same');
  let shortcut = pool(g, 'AveragePool', x, 2, 2, 'valid');
  // face-api.js grows the conv branch by a zero row and column when the pooled shortcut is larger.
  main = padEnd(g, main, 0, shortcut.height - main.height, shortcut.width - main.width);
  shortcut = padEnd(g, shortcut, main.channels - shortcut.channels, 0, 0);
  return relu(g, add(g, shortcut, main));
}

/** Builds the ONNX model from face-api.js's weights, with test-time flip averaging in the graph when asked. */
export function buildFaceRecognitionNet(weights: WeightMap, producerVersion: string, options: { flipAverage?: boolean } = {}): Uint8Array {
  const g = new OnnxGraphBuilder('face_recognition_net');
  const size = FACE_RECOGNITION_INPUT_SIZE;
  const image = g.input('image', ['batch', 3, size, size]);
  let x: Feature = { value: options.flipAverage ? withMirrorImages(g, image) : image, channels: 3, height: size, width: size };
  x = relu(g, scaledConv(g, weights, 'conv32_down', x, 2, 'valid'));
  x = pool(g, 'MaxPool', x, 3, 2, 'valid');
  for (const block of ['conv32_1', 'conv32_2', 'conv32_3']) x = residual(g, weights, block, x);
  x = residualDown(g, weights, 'conv64_down', x);
  for (const block of ['conv64_1', 'conv64_2', 'conv64_3']) x = residual(g, weights, block, x);
  x = residualDown(g, weights, 'conv128_down', x);
  for (const block of ['conv128_1', 'conv128_2']) x = residual(g, weights, block, x);
  x = residualDown(g, weights, 'conv256_down', x);
  for (const block of ['conv256_1', 'conv256_2']) x = residual(g, weights, block, x);
  x = residualDown(g, weights, 'conv256_down_out', x);
  const averaged = flatten(g, { ...x, value: g.node('GlobalAveragePool', [x.value]), height: 1, width: 1 });
  const embedding = dense(g, 'fc', averaged, weights.get('fc', 2));
  g.output(options.flipAverage ? sumOfPairs(g, embedding.value, embedding.features) : embedding.value, 'embedding', ['batch', embedding.features]);
  const unused = weights.unused();
  if (unused.length > 0) throw new Error(`${weights.source}: weights no layer uses (unsupported layers?): ${unused.join(', ')}`);
  return serializeModel(g.build({ producerName: 'faceprint-trainer', producerVersion, docString: `FaceRecognitionNet (face-api.js / dlib), converted to ONNX${options.flipAverage ? ', flip-averaged' : ''}` }));
}
