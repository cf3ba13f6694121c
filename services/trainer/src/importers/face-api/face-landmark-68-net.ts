/**
 * FaceLandmark68Net (face-api.js) as ONNX. The topology follows face-api.js's
 * `FaceFeatureExtractor` and `FaceLandmark68Net` (read there, not copied): four dense blocks of
 * separable convolutions (each halving the size; the first starts with a plain conv), a 7x7/2
 * average pool and a 256x136 dense layer.
 *
 * Input `image` [batch, 3, 112, 112]: RGB, (pixel - mean) / 255 with the manifest's mean.
 * Output `landmarks` [batch, 136]: x0, y0, x1, y1, ... of the 68 iBUG points as fractions of the
 * 112x112 input.
 */
import { OnnxGraphBuilder, serializeModel } from '@faceprint/onnx';
import { add, conv2d, dense, flatten, pool, relu, separableConv2d, type Feature } from './tf-layers.js';
import type { WeightMap } from './weights.js';

/** The crop size the net expects. */
export const FACE_LANDMARK_68_INPUT_SIZE = 112;

function separable(g: OnnxGraphBuilder, weights: WeightMap, prefix: string, x: Feature, stride: number): Feature {
  return separableConv2d(
    g,
    prefix,
    x,
    weights.get(`${prefix}/depthwise_filter`, 4),
    weights.get(`${prefix}/pointwise_filter`, 4),
    weights.get(`${prefix}/bias`, 1).data,
    stride,
  );
}

function denseBlock(g: OnnxGraphBuilder, weights: WeightMap, prefix: string, x: Feature, isFirst: boolean): Feature {
  const out1 = relu(
    g,
    isFirst
      ? conv2d(g, `${prefix}/conv0`, x, weights.get(`${prefix}/conv0/filters`, 4), weights.get(`${prefix}/conv0/bias`, 1).data, { stride: 2, padding: 'same' })
      : separable(g, weights, `${prefix}/conv0`, x, 2),
  );
  const out2 = separable(g, weights, `${prefix}/conv1`, out1, 1);
  const out3 = separable(g, weights, `${prefix}/conv2`, relu(g, add(g, out1, out2)), 1);
  const out4 = separable(g, weights, `${prefix}/conv3`, relu(g, add(g, out1, out2, out3)), 1);
  return relu(g, add(g, out1, out2, out3, out4));
}

/** Builds the ONNX model from face-api.js's weights. */
export function buildFaceLandmark68Net(weights: WeightMap, producerVersion: string): Uint8Array {
  const g = new OnnxGraphBuilder('face_landmark_68_net');
  const size = FACE_LANDMARK_68_INPUT_SIZE;
  let x: Feature = { value: g.input('image', ['batch', 3, size, size]), channels: 3, height: size, width: size };
  x = denseBlock(g, weights, 'dense0', x, true);
  for (const block of ['dense1', 'dense2', 'dense3']) x = denseBlock(g, weights, block, x, false);
  x = pool(g, 'AveragePool', x, 7, 2, 'valid');
  const landmarks = dense(g, 'fc', flatten(g, x), weights.get('fc/weights', 2), weights.get('fc/bias', 1).data);
  g.output(landmarks.value, 'landmarks', ['batch', landmarks.features]);
  const unused = weights.unused();
  if (unused.length > 0) throw new Error(`${weights.source}: weights no layer uses (unsupported layers?): ${unused.join(', ')}`);
  return serializeModel(g.build({ producerName: 'faceprint-trainer', producerVersion, docString: 'FaceLandmark68Net (face-api.js), converted to ONNX' }));
}
