/**
 * Static INT8 quantisation of an ONNX graph in QDQ form: QuantizeLinear/DequantizeLinear pairs on
 * activations (uint8, asymmetric, ranges measured on calibration data), int8 weights quantised
 * per output channel (symmetric), int32 biases. ONNX Runtime fuses each DequantizeLinear -> op ->
 * QuantizeLinear group into its integer kernel (QLinearConv, QLinearAdd, ...), so the file is
 * both smaller and faster, and it still runs anywhere ONNX does.
 *
 * Written here because no maintained Node library quantises ONNX models: onnxruntime's quantiser
 * is Python-only, and the trainer is a Node service. The scheme follows that quantiser's defaults
 * (QDQ, per-channel weights, MinMax calibration, a ReLU folded into the quantisation of the
 * tensor before it) so the graphs it writes are ones ONNX Runtime knows how to fuse, with its
 * `reduce_range` for weights (WEIGHT_QUANT_MAX below).
 */
import { create, fromBinary } from '@bufbuild/protobuf';
import {
  AttributeProto_AttributeType as AttributeType,
  ModelProtoSchema,
  NodeProtoSchema,
  TensorProto_DataType as DataType,
  TensorProtoSchema,
  ValueInfoProtoSchema,
  type GraphProto,
  type ModelProto,
  type NodeProto,
  type TensorProto,
} from '@faceprint/contracts/onnx';
import { serializeModel } from '@faceprint/onnx';

/** The smallest and largest value a tensor took on the calibration data. */
export interface ValueRange {
  readonly min: number;
  readonly max: number;
}

/** Operators whose float output is worth quantising (ONNX Runtime has integer kernels or drops the Q/DQ around them). */
const QUANTISED_OUTPUTS = new Set(['Conv', 'Add', 'MaxPool', 'AveragePool', 'GlobalAveragePool', 'Pad', 'Flatten', 'Relu']);
/** Operators that may read a quantised tensor, at the input index given. */
const QUANTISED_INPUTS: Readonly<Record<string, readonly number[]>> = {
  Conv: [0],
  Add: [0, 1],
  MaxPool: [0],
  AveragePool: [0],
  GlobalAveragePool: [0],
  Pad: [0],
  Flatten: [0],
  MatMul: [0],
};
/** Operators whose output values are a subset of their input's: the output reuses the input's scale (so ONNX Runtime can drop the Q/DQ around them). */
const SHARES_INPUT_SCALE = new Set(['MaxPool', 'Pad', 'Flatten']);
/** Operators a following ReLU folds into: the quantisation of their output clips at zero instead. */
const RELU_FOLDS_INTO = new Set(['Conv', 'Add']);

const isFloat = (tensor: TensorProto) => (tensor.dataType as DataType) === DataType.FLOAT;

/** The float values of an initializer (raw little-endian bytes or the float_data field). */
function floatsOf(tensor: TensorProto): Float32Array {
  if (tensor.rawData.byteLength > 0) {
    const copy = tensor.rawData.slice();
    return new Float32Array(copy.buffer, copy.byteOffset, copy.byteLength / 4);
  }
  return Float32Array.from(tensor.floatData);
}

const bytesOf = (values: Float32Array | Int8Array | Uint8Array | Int32Array) => new Uint8Array(values.buffer, values.byteOffset, values.byteLength);

/** Whether a value will be quantised: not a graph output, and read only by operators that take a quantised input. */
const readOnlyQuantised = (name: string, readers: ReadonlyMap<string, { node: NodeProto; index: number }[]>, outputs: ReadonlySet<string>) => {
  const by = readers.get(name) ?? [];
  return !outputs.has(name) && by.length > 0 && by.every(({ node, index }) => QUANTISED_INPUTS[node.opType]?.includes(index));
};

/**
 * Removes each ReLU whose input is a Conv or Add output read by nothing else, when the ReLU's
 * output will be quantised (its zero point of 0 then does the ReLU's work): the Conv or Add writes
 * the ReLU's output itself.
 */
function foldRelus(graph: GraphProto): void {
  const outputs = new Set(graph.output.map((o) => o.name));
  const readers = readersOf(graph);
  const producers = new Map(graph.node.flatMap((node) => node.output.map((name) => [name, node] as const)));
  graph.node = graph.node.filter((node) => {
    if (node.opType !== 'Relu') return true;
    const input = node.input[0]!;
    const producer = producers.get(input);
    if (!producer || !RELU_FOLDS_INTO.has(producer.opType) || outputs.has(input) || readers.get(input)?.length !== 1) return true;
    if (!readOnlyQuantised(node.output[0]!, readers, outputs)) return true;
    producer.output = producer.output.map((name) => (name === input ? node.output[0]! : name));
    return false;
  });
}

/** For each value name, the nodes that read it and at which input index. */
function readersOf(graph: GraphProto): Map<string, { node: NodeProto; index: number }[]> {
  const readers = new Map<string, { node: NodeProto; index: number }[]>();
  for (const node of graph.node) {
    node.input.forEach((name, index) => {
      if (name) readers.set(name, [...(readers.get(name) ?? []), { node, index }]);
    });
  }
  return readers;
}

/** The activations to quantise: float values made by a graph input or a quantisable operator, and read only by operators that take a quantised input. */
function quantisedActivations(graph: GraphProto): string[] {
  const weights = new Set(graph.initializer.map((i) => i.name));
  const outputs = new Set(graph.output.map((o) => o.name));
  const readers = readersOf(graph);
  const made = [...graph.input.filter((i) => !weights.has(i.name)).map((i) => i.name), ...graph.node.filter((n) => QUANTISED_OUTPUTS.has(n.opType)).flatMap((n) => n.output)];
  return made.filter((name) => readOnlyQuantised(name, readers, outputs));
}

/** Parses a model and folds its ReLUs, as both calibration and quantisation see it. */
function foldedModel(bytes: Uint8Array): ModelProto {
  const model = fromBinary(ModelProtoSchema, bytes);
  if (!model.graph) throw new Error('not an ONNX model: no graph');
  foldRelus(model.graph);
  return model;
}

/**
 * The model to calibrate with: the original graph, with every activation the quantised graph
 * will quantise added as an output (their names survive the ReLU folding, so the ranges measured
 * here are the ones the quantised graph needs).
 */
export function calibrationModel(bytes: Uint8Array): { model: Uint8Array; activations: string[] } {
  const activations = quantisedActivations(foldedModel(bytes).graph!);
  const model = fromBinary(ModelProtoSchema, bytes);
  const declared = new Set(model.graph!.output.map((o) => o.name));
  for (const name of activations) {
    if (declared.has(name)) continue;
    model.graph!.output.push(create(ValueInfoProtoSchema, { name, type: { value: { case: 'tensorType', value: { elemType: DataType.FLOAT } } } }));
  }
  return { model: serializeModel(model), activations };
}

/** uint8 scale and zero point covering [min, max] (widened to include 0, so that zero is exact). */
export function activationScale({ min, max }: ValueRange): { scale: number; zeroPoint: number } {
  const low = Math.min(min, 0);
  const high = Math.max(max, 0);
  if (!(high > low)) return { scale: 1, zeroPoint: 0 };
  const scale = (high - low) / 255;
  return { scale, zeroPoint: Math.min(255, Math.max(0, Math.round(-low / scale))) };
}

/**
 * The largest weight magnitude: 7 bits (ONNX Runtime's quantiser calls it `reduce_range`). On x86
 * CPUs without VNNI (AVX2 only, e.g. many AMD EPYC and older Xeon nodes) ONNX Runtime multiplies
 * uint8 activations by int8 weights with VPMADDUBSW, which adds two products into a saturating
 * int16: 2 x 255 x 127 overflows it, 2 x 255 x 63 does not. Measured on such a machine with full
 * 8-bit weights, the test network's error was 6% of its output instead of under 5%; one bit of
 * weight precision is the price of a model that computes the same on every CPU.
 */
const WEIGHT_QUANT_MAX = 63;

/** int8 symmetric per-channel quantisation of a weight whose first axis is `channels`, within ±{@link WEIGHT_QUANT_MAX}. */
function quantiseWeight(values: Float32Array, channels: number): { q: Int8Array; scales: Float32Array } {
  const per = values.length / channels;
  const q = new Int8Array(values.length);
  const scales = new Float32Array(channels);
  for (let c = 0; c < channels; c++) {
    let absMax = 0;
    for (let i = c * per; i < (c + 1) * per; i++) absMax = Math.max(absMax, Math.abs(values[i]!));
    const scale = absMax > 0 ? absMax / WEIGHT_QUANT_MAX : 1;
    scales[c] = scale;
    for (let i = c * per; i < (c + 1) * per; i++) q[i] = Math.max(-WEIGHT_QUANT_MAX, Math.min(WEIGHT_QUANT_MAX, Math.round(values[i]! / scale)));
  }
  return { q, scales };
}

/** What the quantiser did, for the report. */
export interface QuantisationSummary {
  /** Activations given a QuantizeLinear/DequantizeLinear pair. */
  readonly activations: number;
  /** Weight tensors stored as int8. */
  readonly weights: number;
  /** ReLUs folded into the quantisation before them. */
  readonly foldedRelus: number;
}

/**
 * The QDQ INT8 model of `bytes`, given each activation's calibrated range (keys: the names
 * {@link calibrationModel} listed). Throws when a range is missing.
 */
export function quantiseToQdq(bytes: Uint8Array, ranges: ReadonlyMap<string, ValueRange>): { model: Uint8Array; summary: QuantisationSummary } {
  const model = foldedModel(bytes);
  const graph = model.graph!;
  const nodesBefore = fromBinary(ModelProtoSchema, bytes).graph!.node.length;
  const foldedRelus = nodesBefore - graph.node.length;
  const activations = new Set(quantisedActivations(graph));
  const initializers = new Map(graph.initializer.map((i) => [i.name, i]));
  const added: TensorProto[] = [];
  const params = new Map<string, { scale: number; zeroPoint: number }>();
  let weights = 0;

  const constant = (name: string, dataType: DataType, values: Float32Array | Int8Array | Uint8Array | Int32Array, dims: number[]) => {
    added.push(create(TensorProtoSchema, { name, dataType, dims: dims.map(BigInt), rawData: bytesOf(values) }));
    return name;
  };
  const node = (opType: string, input: string[], output: string, axis?: number) =>
    create(NodeProtoSchema, { opType, input, output: [output], name: `${output}__${opType}`, attribute: axis === undefined ? [] : [{ name: 'axis', type: AttributeType.INT, i: BigInt(axis) }] });
  /** Q -> DQ on an activation; readers are rewired to the DQ output below. */
  const quantiseActivation = (name: string, from: { scale: number; zeroPoint: number }): NodeProto[] => {
    params.set(name, from);
    const scale = constant(`${name}__scale`, DataType.FLOAT, Float32Array.of(from.scale), []);
    const zeroPoint = constant(`${name}__zero_point`, DataType.UINT8, Uint8Array.of(from.zeroPoint), []);
    return [node('QuantizeLinear', [name, scale, zeroPoint], `${name}__quantised`), node('DequantizeLinear', [`${name}__quantised`, scale, zeroPoint], `${name}__dequantised`)];
  };
  const rangeOf = (name: string) => {
    const range = ranges.get(name);
    if (!range) throw new Error(`no calibrated range for activation "${name}"`);
    return activationScale(range);
  };

  const nodes: NodeProto[] = [];
  for (const input of graph.input) if (activations.has(input.name)) nodes.push(...quantiseActivation(input.name, rangeOf(input.name)));
  for (const op of graph.node) {
    const inputScale = params.get(op.input[0]!)?.scale;
    op.input = op.input.map((name) => (params.has(name) ? `${name}__dequantised` : name));
    // Weights: a Conv's per output channel (its bias in int32 at input scale x weight scale), a MatMul's per tensor.
    if (inputScale !== undefined && (op.opType === 'Conv' || op.opType === 'MatMul')) {
      const weight = initializers.get(op.input[1]!);
      if (weight && isFloat(weight)) {
        const dims = weight.dims.map(Number);
        const channels = op.opType === 'Conv' ? dims[0]! : 1;
        const { q, scales } = quantiseWeight(floatsOf(weight), channels);
        const scaleDims = op.opType === 'Conv' ? [channels] : [];
        // Named after the node, not the weight: a weight two nodes share gets a copy each.
        const w = `${op.output[0]}__weight`;
        const wq = constant(`${w}_int8`, DataType.INT8, q, dims);
        const ws = constant(`${w}_scale`, DataType.FLOAT, scales, scaleDims);
        const wz = constant(`${w}_zero_point`, DataType.INT8, new Int8Array(channels), scaleDims);
        nodes.push(node('DequantizeLinear', [wq, ws, wz], `${w}_dequantised`, op.opType === 'Conv' ? 0 : undefined));
        op.input[1] = `${w}_dequantised`;
        weights++;
        const bias = op.opType === 'Conv' && op.input[2] ? initializers.get(op.input[2]) : undefined;
        if (bias && isFloat(bias)) {
          const values = floatsOf(bias);
          const biasScales = scales.map((s) => s * inputScale);
          const bq = Int32Array.from(values, (v, c) => Math.max(-(2 ** 31), Math.min(2 ** 31 - 1, Math.round(v / biasScales[c]!))));
          const b = `${op.output[0]}__bias`;
          const bqName = constant(`${b}_int32`, DataType.INT32, bq, [channels]);
          const bs = constant(`${b}_scale`, DataType.FLOAT, biasScales, [channels]);
          const bz = constant(`${b}_zero_point`, DataType.INT32, new Int32Array(channels), [channels]);
          nodes.push(node('DequantizeLinear', [bqName, bs, bz], `${b}_dequantised`, 0));
          op.input[2] = `${b}_dequantised`;
        }
      }
    }
    nodes.push(op);
    for (const output of op.output) {
      if (!activations.has(output)) continue;
      const shared = SHARES_INPUT_SCALE.has(op.opType) ? params.get(op.input[0]!.replace(/__dequantised$/, '')) : undefined;
      nodes.push(...quantiseActivation(output, shared ?? rangeOf(output)));
    }
  }
  graph.node = nodes;
  // Float weights that every reader now takes quantised are dropped: that is where the size goes.
  const stillRead = new Set(nodes.flatMap((n) => n.input));
  graph.initializer = [...graph.initializer.filter((i) => stillRead.has(i.name)), ...added];
  return { model: serializeModel(model), summary: { activations: params.size, weights, foldedRelus } };
}
