import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as ort from 'onnxruntime-node';
import { ints, OnnxGraphBuilder, serializeModel } from './graph-builder.js';
import { inspectModel } from './inspect.js';

function tinyConvModel(): Uint8Array {
  const g = new OnnxGraphBuilder('tiny');
  const x = g.input('image', ['batch', 1, 3, 3]);
  const w = g.weight('w', new Float32Array([0, 0, 0, 0, 2, 0, 0, 0, 0]), [1, 1, 3, 3]);
  const b = g.weight('b', new Float32Array([0.5]), [1]);
  const conv = g.node('Conv', [x, w, b], { kernel_shape: ints([3, 3]), pads: ints([1, 1, 1, 1]) });
  const pooled = g.node('GlobalAveragePool', [conv]);
  const flat = g.node('Flatten', [pooled]);
  g.output(flat, 'score', ['batch', 1]);
  return serializeModel(g.build({ producerName: 'faceprint-test', producerVersion: '0' }));
}

describe('OnnxGraphBuilder', () => {
  it('writes a model that ONNX Runtime loads and computes correctly', async () => {
    const session = await ort.InferenceSession.create(tinyConvModel());
    const input = new Float32Array([1, 2, 3, 4, 5, 6, 7, 8, 9]);
    const { score } = await session.run({ image: new ort.Tensor('float32', input, [1, 1, 3, 3]) });
    // The kernel doubles the centre pixel: the mean of 2 * input, plus the bias.
    assert.ok(Math.abs((score!.data as Float32Array)[0]! - (2 * 5 + 0.5)) < 1e-5);
    await session.release();
  });

  it('declares inputs, outputs and operators that inspectModel reads back', () => {
    const info = inspectModel(tinyConvModel());
    assert.equal(info.opsetVersion, 17);
    assert.deepEqual(info.inputs, [{ name: 'image', dtype: 'float32', dims: ['batch', 1, 3, 3] }]);
    assert.deepEqual(info.outputs, [{ name: 'score', dtype: 'float32', dims: ['batch', 1] }]);
    assert.deepEqual(info.operators, ['Conv', 'Flatten', 'GlobalAveragePool', 'Identity']);
  });

  it('refuses to inspect a truncated file', () => {
    const bytes = tinyConvModel();
    assert.throws(() => inspectModel(bytes.subarray(0, bytes.length - 7)), /not an ONNX model/);
  });

  it('refuses a weight whose values do not fill its shape', () => {
    assert.throws(() => new OnnxGraphBuilder('bad').weight('w', new Float32Array(5), [2, 3]), /weight w: 5 values for shape \[2, 3\]/);
  });
});
