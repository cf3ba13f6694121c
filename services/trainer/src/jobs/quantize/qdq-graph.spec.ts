import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fromBinary } from '@bufbuild/protobuf';
import { ModelProtoSchema, TensorProto_DataType } from '@faceprint/contracts/onnx';
import { ints, OnnxGraphBuilder, serializeModel } from '@faceprint/onnx';
import * as ort from 'onnxruntime-node';
import { seededRandom } from '@faceprint/evaluation';
import { measureActivationRanges } from './activation-ranges.js';
import { activationScale, calibrationModel, quantiseToQdq } from './qdq-graph.js';

/** A small residual network of the embedder's shape: Conv-ReLU, MaxPool, Conv + skip Add-ReLU, global pooling, MatMul. */
function residualNet() {
  const random = seededRandom(7);
  const weights = (n: number) => Float32Array.from({ length: n }, () => (random() - 0.5) * 0.5);
  const g = new OnnxGraphBuilder('residual');
  const x = g.input('image', ['batch', 3, 16, 16]);
  const c1 = g.node('Conv', [x, g.weight('w1', weights(8 * 3 * 9), [8, 3, 3, 3]), g.weight('b1', weights(8), [8])], { kernel_shape: ints([3, 3]), pads: ints([1, 1, 1, 1]) });
  const r1 = g.node('Relu', [c1]);
  const p1 = g.node('MaxPool', [r1], { kernel_shape: ints([2, 2]), strides: ints([2, 2]) });
  const c2 = g.node('Conv', [p1, g.weight('w2', weights(8 * 8 * 9), [8, 8, 3, 3]), g.weight('b2', weights(8), [8])], { kernel_shape: ints([3, 3]), pads: ints([1, 1, 1, 1]) });
  const sum = g.node('Add', [c2, p1]);
  const r2 = g.node('Relu', [sum]);
  const pooled = g.node('GlobalAveragePool', [r2]);
  const flat = g.node('Flatten', [pooled]);
  const fc = g.node('MatMul', [flat, g.weight('fc', weights(8 * 4), [8, 4])]);
  g.output(fc, 'embedding', ['batch', 4]);
  return { bytes: serializeModel(g.build({ producerName: 'faceprint-test', producerVersion: '0' })), values: { x, c1, r1, p1, c2, sum, r2, pooled, flat, fc } };
}

const images = (count: number, seed: number) => {
  const random = seededRandom(seed);
  return { tensor: Float32Array.from({ length: count * 3 * 16 * 16 }, () => random() * 2 - 1), dims: [count, 3, 16, 16] };
};

async function embed(model: Uint8Array, input: { tensor: Float32Array; dims: number[] }): Promise<Float32Array> {
  const session = await ort.InferenceSession.create(model);
  const { embedding } = await session.run({ image: new ort.Tensor('float32', input.tensor, input.dims) });
  await session.release();
  return embedding!.data as Float32Array;
}

describe('QDQ INT8 quantisation', () => {
  it('chooses uint8 scales that hold zero exactly and clip at zero after a ReLU', () => {
    assert.deepEqual(activationScale({ min: 0, max: 255 }), { scale: 1, zeroPoint: 0 });
    const mixed = activationScale({ min: -1, max: 3 });
    assert.equal(mixed.zeroPoint, Math.round(1 / mixed.scale));
    assert.deepEqual(activationScale({ min: 0.5, max: 255 }), { scale: 1, zeroPoint: 0 }, 'a range is widened to include zero');
    assert.deepEqual(activationScale({ min: 0, max: 0 }), { scale: 1, zeroPoint: 0 }, 'a constant-zero tensor still gets a valid scale');
  });

  it('writes a graph of int8 weights and Q/DQ pairs, ReLUs folded, that computes what the float graph does', async () => {
    const { bytes: float, values: v } = residualNet();
    const { model: calibrating, activations } = calibrationModel(float);
    // The two ReLUs fold into the Conv and the Add before them: their outputs are what is quantised.
    // The MatMul's output (read by the graph output) stays float.
    assert.deepEqual([...activations].sort(), [v.x, v.r1, v.p1, v.c2, v.r2, v.pooled, v.flat].sort());
    const ranges = await measureActivationRanges(calibrating, 'image', activations, [images(8, 1), images(8, 2)]);
    assert.equal(ranges.size, activations.length);
    const { model, summary } = quantiseToQdq(float, ranges);
    assert.deepEqual(summary, { activations: activations.length, weights: 3, foldedRelus: 2 });

    const graph = fromBinary(ModelProtoSchema, model).graph!;
    const ops = graph.node.map((n) => n.opType);
    assert.equal(ops.filter((op) => op === 'Relu').length, 0, 'both ReLUs folded');
    assert.equal(ops.filter((op) => op === 'QuantizeLinear').length, activations.length);
    const int8 = graph.initializer.filter((i) => (i.dataType as TensorProto_DataType) === TensorProto_DataType.INT8 && i.dims.length > 1);
    assert.equal(int8.length, 3, 'two conv weights and the MatMul weight stored as int8');
    assert.ok(!graph.initializer.some((i) => ['w1', 'w2', 'fc'].includes(i.name)), 'the float weights are gone');
    assert.ok(int8.every((i) => i.rawData.byteLength === i.dims.reduce((a, b) => a * Number(b), 1)), 'one byte per weight');
    // 7-bit weights: with ±127, AVX2 CPUs without VNNI saturate their uint8 x int8 products (qdq-graph.ts).
    const largestWeight = (i: (typeof int8)[number]) => Math.max(...new Int8Array(i.rawData.buffer, i.rawData.byteOffset, i.rawData.byteLength).map(Math.abs));
    assert.deepEqual(int8.map(largestWeight), [63, 63, 63], 'every weight tensor spans ±63 and no more');

    // On inputs it was not calibrated on, the INT8 graph stays close to the float one.
    const probe = images(4, 99);
    const [expected, actual] = [await embed(float, probe), await embed(model, probe)];
    const scale = Math.max(...expected.map(Math.abs));
    const worst = Math.max(...expected.map((v, i) => Math.abs(v - actual[i]!)));
    assert.ok(worst < 0.05 * scale, `largest error ${worst} against outputs up to ${scale}`);
    assert.ok(worst > 0, 'the graph really computes in INT8 (not bit-identical to float)');
  });

  it('keeps a ReLU whose output stays float (here: the graph output), so that nothing negative slips through', async () => {
    const g = new OnnxGraphBuilder('relu-out');
    const x = g.input('image', ['batch', 3, 16, 16]);
    const random = seededRandom(9);
    const conv = g.node('Conv', [x, g.weight('w', Float32Array.from({ length: 2 * 3 * 9 }, () => random() - 0.5), [2, 3, 3, 3])], { kernel_shape: ints([3, 3]) });
    g.output(g.node('Relu', [conv], {}, 'activated'), 'activated', ['batch', 2, 14, 14]);
    const float = serializeModel(g.build({ producerName: 'faceprint-test', producerVersion: '0' }));
    const { model: calibrating, activations } = calibrationModel(float);
    const { model } = quantiseToQdq(float, await measureActivationRanges(calibrating, 'image', activations, [images(4, 3)]));
    assert.ok(fromBinary(ModelProtoSchema, model).graph!.node.some((n) => n.opType === 'Relu'), 'the ReLU stays');
    const session = await ort.InferenceSession.create(model);
    const { activated } = await session.run({ image: new ort.Tensor('float32', images(2, 4).tensor, [2, 3, 16, 16]) });
    assert.ok(Math.min(...(activated!.data as Float32Array)) >= 0);
    await session.release();
  });

  it('refuses to quantise an activation it has no calibrated range for', () => {
    assert.throws(() => quantiseToQdq(residualNet().bytes, new Map()), /no calibrated range for activation "image"/);
  });
});
