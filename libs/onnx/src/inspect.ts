/** Reads what a model file declares: IR and operator set versions, inputs, outputs, operators. */
import { fromBinary } from '@bufbuild/protobuf';
import { ModelProtoSchema, TensorProto_DataType, type ValueInfoProto } from '@faceprint/contracts/onnx';
import type { Dimension } from './graph-builder.js';

/** One graph input or output. */
export interface TensorInfo {
  /** The value name. */
  readonly name: string;
  /** The element type, e.g. "float32". */
  readonly dtype: string;
  /** The dimensions; symbolic ones by name, unknown ones as -1. */
  readonly dims: readonly Dimension[];
}

/** A tensor's dimensions as a manifest's TensorSpec gives them: symbolic ones as -1. */
export const manifestShape = (tensor: TensorInfo): bigint[] => tensor.dims.map((d) => BigInt(typeof d === 'number' ? d : -1));

/** What a model file declares. */
export interface ModelInfo {
  /** The IR version. */
  readonly irVersion: number;
  /** The default-domain operator set version. */
  readonly opsetVersion: number;
  /** The tool that wrote the file. */
  readonly producer: string;
  /** The graph inputs that are not weights. */
  readonly inputs: readonly TensorInfo[];
  /** The graph outputs. */
  readonly outputs: readonly TensorInfo[];
  /** The operator types used, sorted. */
  readonly operators: readonly string[];
}

const DTYPES: Partial<Record<TensorProto_DataType, string>> = {
  [TensorProto_DataType.FLOAT]: 'float32',
  [TensorProto_DataType.UINT8]: 'uint8',
  [TensorProto_DataType.INT8]: 'int8',
  [TensorProto_DataType.INT32]: 'int32',
  [TensorProto_DataType.INT64]: 'int64',
  [TensorProto_DataType.FLOAT16]: 'float16',
  [TensorProto_DataType.DOUBLE]: 'float64',
  [TensorProto_DataType.BOOL]: 'bool',
};

function tensorInfo(value: ValueInfoProto): TensorInfo {
  const tensor = value.type?.value.case === 'tensorType' ? value.type.value.value : undefined;
  return {
    name: value.name,
    dtype: (tensor && DTYPES[tensor.elemType as TensorProto_DataType]) ?? 'unknown',
    dims: (tensor?.shape?.dim ?? []).map((d) =>
      d.value.case === 'dimValue' ? Number(d.value.value) : d.value.case === 'dimParam' ? d.value.value : -1,
    ),
  };
}

/**
 * Parses a model file. Throws an Error saying so when the bytes are not an ONNX model (a
 * truncated or corrupt file fails to parse, or parses without a graph).
 */
export function inspectModel(bytes: Uint8Array): ModelInfo {
  let model;
  try {
    model = fromBinary(ModelProtoSchema, bytes);
  } catch (error) {
    throw new Error(`not an ONNX model: ${(error as Error).message}`, { cause: error });
  }
  const graph = model.graph;
  if (!graph || graph.node.length === 0 || graph.output.length === 0) throw new Error('not an ONNX model: no graph');
  const weights = new Set(graph.initializer.map((t) => t.name));
  return {
    irVersion: Number(model.irVersion),
    opsetVersion: Number(model.opsetImport.find((o) => o.domain === '' || o.domain === 'ai.onnx')?.version ?? 0n),
    producer: `${model.producerName} ${model.producerVersion}`.trim(),
    inputs: graph.input.filter((i) => !weights.has(i.name)).map(tensorInfo),
    outputs: graph.output.map(tensorInfo),
    operators: [...new Set(graph.node.map((n) => n.opType))].sort(),
  };
}
