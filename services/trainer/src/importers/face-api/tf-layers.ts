/**
 * TF.js layers as ONNX nodes. TF.js computes in NHWC with HWIO filters and TF's "same" padding
 * (the odd pixel goes after); ONNX Conv is NCHW with OIHW weights and explicit pads. These helpers
 * keep a value's spatial size alongside its name so pads can be computed exactly, and convert
 * weights once, at build time. They serve every face-api.js net and, later, TF.js graph models.
 */
import { ints, type OnnxGraphBuilder } from '@faceprint/onnx';
import type { WeightTensor } from './weights.js';

/** An NCHW value of the graph with its static channels and spatial size. */
export interface Feature {
  /** The value name. */
  readonly value: string;
  /** Channels. */
  readonly channels: number;
  /** Height. */
  readonly height: number;
  /** Width. */
  readonly width: number;
}

/** TF padding modes. */
export type Padding = 'same' | 'valid';

/** TF's output size and [before, after] padding of one spatial axis. */
export function tfPadding(size: number, kernel: number, stride: number, padding: Padding): { out: number; before: number; after: number } {
  if (padding === 'valid') return { out: Math.floor((size - kernel) / stride) + 1, before: 0, after: 0 };
  const out = Math.ceil(size / stride);
  const total = Math.max((out - 1) * stride + kernel - size, 0);
  return { out, before: Math.floor(total / 2), after: total - Math.floor(total / 2) };
}

/** HWIO (TF filters) to OIHW (ONNX Conv weights). */
export function hwioToOihw(filters: WeightTensor): { data: Float32Array; dims: number[] } {
  const [kh, kw, cin, cout] = filters.shape as [number, number, number, number];
  const data = new Float32Array(filters.data.length);
  for (let h = 0; h < kh; h++)
    for (let w = 0; w < kw; w++)
      for (let i = 0; i < cin; i++)
        for (let o = 0; o < cout; o++) data[((o * cin + i) * kh + h) * kw + w] = filters.data[((h * kw + w) * cin + i) * cout + o]!;
  return { data, dims: [cout, cin, kh, kw] };
}

/** Options of a convolution. */
export interface ConvOptions {
  /** The stride in both axes. */
  readonly stride: number;
  /** TF padding mode. */
  readonly padding: Padding;
  /** Convolve each channel on its own (TF depthwise filters [kh, kw, C, 1]). */
  readonly depthwise?: boolean;
}

/** A TF conv2d (or depthwise conv2d) with bias, as one ONNX Conv. */
export function conv2d(g: OnnxGraphBuilder, name: string, x: Feature, filters: WeightTensor, bias: Float32Array, options: ConvOptions): Feature {
  const [kh, kw, cin, multiplier] = filters.shape as [number, number, number, number];
  if (cin !== x.channels) throw new Error(`${name}: filters expect ${cin} channels, the input has ${x.channels}`);
  const weights = options.depthwise
    ? hwioToOihw({ shape: [kh, kw, 1, cin * multiplier], data: filters.data }) // [C,1,kh,kw]: each channel its own filter
    : hwioToOihw(filters);
  const outChannels = weights.dims[0]!;
  if (bias.length !== outChannels) throw new Error(`${name}: ${bias.length} biases for ${outChannels} output channels`);
  const rows = tfPadding(x.height, kh, options.stride, options.padding);
  const cols = tfPadding(x.width, kw, options.stride, options.padding);
  const value = g.node(
    'Conv',
    [x.value, g.weight(`${name}/weights`, weights.data, weights.dims), g.weight(`${name}/bias`, bias, [outChannels])],
    {
      kernel_shape: ints([kh, kw]),
      strides: ints([options.stride, options.stride]),
      pads: ints([rows.before, cols.before, rows.after, cols.after]),
      group: { int: options.depthwise ? cin : 1 },
    },
    name,
  );
  return { value, channels: outChannels, height: rows.out, width: cols.out };
}

/** A TF separableConv2d (depthwise, then pointwise 1x1) with bias, as two ONNX Convs. */
export function separableConv2d(
  g: OnnxGraphBuilder,
  name: string,
  x: Feature,
  depthwise: WeightTensor,
  pointwise: WeightTensor,
  bias: Float32Array,
  stride: number,
): Feature {
  const noBias = new Float32Array(x.channels * (depthwise.shape[3] ?? 1));
  const spatial = conv2d(g, `${name}/depthwise`, x, depthwise, noBias, { stride, padding: 'same', depthwise: true });
  return conv2d(g, `${name}/pointwise`, spatial, pointwise, bias, { stride: 1, padding: 'same' });
}

/** A TF max or average pool. */
export function pool(g: OnnxGraphBuilder, kind: 'MaxPool' | 'AveragePool', x: Feature, kernel: number, stride: number, padding: Padding): Feature {
  const rows = tfPadding(x.height, kernel, stride, padding);
  const cols = tfPadding(x.width, kernel, stride, padding);
  // TF's "same" average pool divides by the pixels inside the image, as count_include_pad=0 does.
  const value = g.node(kind, [x.value], {
    kernel_shape: ints([kernel, kernel]),
    strides: ints([stride, stride]),
    pads: ints([rows.before, cols.before, rows.after, cols.after]),
  });
  return { ...x, value, height: rows.out, width: cols.out };
}

/** Element-wise ReLU. */
export function relu(g: OnnxGraphBuilder, x: Feature): Feature {
  return { ...x, value: g.node('Relu', [x.value]) };
}

/** Element-wise sum of features of one shape. */
export function add(g: OnnxGraphBuilder, ...xs: Feature[]): Feature {
  const [first, ...rest] = xs;
  if (!first) throw new Error('add needs at least one input');
  for (const x of rest) {
    if (x.channels !== first.channels || x.height !== first.height || x.width !== first.width) {
      throw new Error(`add: shapes differ (${first.channels}x${first.height}x${first.width} vs ${x.channels}x${x.height}x${x.width})`);
    }
  }
  return { ...first, value: rest.reduce((sum, x) => g.node('Add', [sum, x.value]), first.value) };
}

/** Zero padding at the end of the channel, row and column axes. */
export function padEnd(g: OnnxGraphBuilder, x: Feature, channels: number, rows: number, cols: number): Feature {
  if (channels === 0 && rows === 0 && cols === 0) return x;
  const pads = g.int64s('pads', [0, 0, 0, 0, 0, channels, rows, cols]);
  return { value: g.node('Pad', [x.value, pads]), channels: x.channels + channels, height: x.height + rows, width: x.width + cols };
}

/** Flattens [N, C, 1, 1] (or any [N, ...]) to [N, features]. */
export function flatten(g: OnnxGraphBuilder, x: Feature): { value: string; features: number } {
  return { value: g.node('Flatten', [x.value]), features: x.channels * x.height * x.width };
}

/** A dense layer: x [N, in] times weights [in, out] (TF layout), plus an optional bias. */
export function dense(g: OnnxGraphBuilder, name: string, x: { value: string; features: number }, weights: WeightTensor, bias?: Float32Array): { value: string; features: number } {
  const [inputs, outputs] = weights.shape as [number, number];
  if (inputs !== x.features) throw new Error(`${name}: weights expect ${inputs} features, the input has ${x.features}`);
  const product = g.node('MatMul', [x.value, g.weight(`${name}/weights`, weights.data, [inputs, outputs])]);
  const value = bias ? g.node('Add', [product, g.weight(`${name}/bias`, bias, [outputs])]) : product;
  return { value, features: outputs };
}
