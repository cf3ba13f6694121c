/**
 * Builds ONNX models with the project's own protobuf toolchain (protoc-gen-es output for
 * onnx.proto). Small on purpose: a graph is a list of nodes, named values and float weights.
 */
import { create, toBinary, type MessageInitShape } from '@bufbuild/protobuf';
import {
  AttributeProto_AttributeType as AttributeType,
  ModelProtoSchema,
  TensorProto_DataType as DataType,
  type AttributeProtoSchema,
  type ModelProto,
  type NodeProtoSchema,
  type TensorProtoSchema,
  type ValueInfoProtoSchema,
} from '@faceprint/contracts/onnx';

type Init<T extends Parameters<typeof create>[0]> = MessageInitShape<T>;

/** The ONNX IR version written (IR 8 goes with opset 17-18). */
export const IR_VERSION = 8n;

/** The default ONNX operator set written. */
export const DEFAULT_OPSET = 17;

/** A typed attribute value; ONNX tells ints from floats, so callers must too. */
export type Attribute =
  | { readonly int: number }
  | { readonly ints: readonly number[] }
  | { readonly float: number }
  | { readonly floats: readonly number[] }
  | { readonly string: string };

/** Attribute constructors: `{ strides: ints([2, 2]) }`. */
export const int = (value: number): Attribute => ({ int: value });
export const ints = (values: readonly number[]): Attribute => ({ ints: values });
export const float = (value: number): Attribute => ({ float: value });
export const floats = (values: readonly number[]): Attribute => ({ floats: values });
export const string = (value: string): Attribute => ({ string: value });

/** A dimension: a fixed size or a symbolic name such as "batch". */
export type Dimension = number | string;

/** Options of {@link OnnxGraphBuilder.build}. */
export interface BuildOptions {
  /** The tool that wrote the file. */
  readonly producerName: string;
  /** Its version. */
  readonly producerVersion: string;
  /** The operator set version. Default: {@link DEFAULT_OPSET}. */
  readonly opsetVersion?: number;
  /** Documentation of the model. */
  readonly docString?: string;
  /** Free-form metadata stored in the file. */
  readonly metadata?: Readonly<Record<string, string>>;
}

function attributeProto(name: string, value: Attribute): Init<typeof AttributeProtoSchema> {
  if ('int' in value) return { name, type: AttributeType.INT, i: BigInt(value.int) };
  if ('ints' in value) return { name, type: AttributeType.INTS, ints: value.ints.map(BigInt) };
  if ('float' in value) return { name, type: AttributeType.FLOAT, f: value.float };
  if ('floats' in value) return { name, type: AttributeType.FLOATS, floats: [...value.floats] };
  return { name, type: AttributeType.STRING, s: new TextEncoder().encode(value.string) };
}

function valueInfo(name: string, elemType: DataType, dims: readonly Dimension[]): Init<typeof ValueInfoProtoSchema> {
  return {
    name,
    type: {
      value: {
        case: 'tensorType',
        value: {
          elemType,
          shape: {
            dim: dims.map((d) => ({
              value: typeof d === 'number' ? { case: 'dimValue' as const, value: BigInt(d) } : { case: 'dimParam' as const, value: d },
            })),
          },
        },
      },
    },
  };
}

/** Accumulates nodes, weights, inputs and outputs of one graph. */
export class OnnxGraphBuilder {
  readonly #name: string;
  readonly #nodes: Init<typeof NodeProtoSchema>[] = [];
  readonly #initializers: Init<typeof TensorProtoSchema>[] = [];
  readonly #inputs: Init<typeof ValueInfoProtoSchema>[] = [];
  readonly #outputs: Init<typeof ValueInfoProtoSchema>[] = [];
  readonly #names = new Set<string>();
  #counter = 0;

  constructor(name: string) {
    this.#name = name;
  }

  #unique(base: string): string {
    let name = base;
    while (this.#names.has(name)) name = `${base}_${++this.#counter}`;
    this.#names.add(name);
    return name;
  }

  /** Declares a float32 graph input and returns its value name. */
  input(name: string, dims: readonly Dimension[]): string {
    const unique = this.#unique(name);
    this.#inputs.push(valueInfo(unique, DataType.FLOAT, dims));
    return unique;
  }

  /** Declares `value` a float32 graph output named `name` (an Identity renames it when needed). */
  output(value: string, name: string, dims: readonly Dimension[]): string {
    const outputName = value === name ? value : this.node('Identity', [value], {}, name);
    this.#outputs.push(valueInfo(outputName, DataType.FLOAT, dims));
    return outputName;
  }

  /** Adds a float32 weight tensor and returns its value name. */
  weight(name: string, data: Float32Array, dims: readonly number[]): string {
    const expected = dims.reduce((a, b) => a * b, 1);
    if (data.length !== expected) throw new Error(`weight ${name}: ${data.length} values for shape [${dims.join(', ')}]`);
    const unique = this.#unique(name);
    this.#initializers.push(tensorProto(unique, DataType.FLOAT, dims, new Uint8Array(data.buffer, data.byteOffset, data.byteLength)));
    return unique;
  }

  /** Adds an int64 constant tensor (shapes, pads, axes) and returns its value name. */
  int64s(name: string, values: readonly number[]): string {
    const unique = this.#unique(name);
    const data = new BigInt64Array(values.map(BigInt));
    this.#initializers.push(tensorProto(unique, DataType.INT64, [values.length], new Uint8Array(data.buffer)));
    return unique;
  }

  /** Adds a node and returns the name of its (single) output. */
  node(opType: string, inputs: readonly string[], attributes: Readonly<Record<string, Attribute>> = {}, outputName?: string): string {
    const output = this.#unique(outputName ?? `${opType.toLowerCase()}_${this.#nodes.length}`);
    this.#nodes.push({
      input: [...inputs],
      output: [output],
      name: `${opType}_${this.#nodes.length}`,
      opType,
      attribute: Object.entries(attributes).map(([key, value]) => attributeProto(key, value)),
    });
    return output;
  }

  /** The finished model. */
  build(options: BuildOptions): ModelProto {
    return create(ModelProtoSchema, {
      irVersion: IR_VERSION,
      producerName: options.producerName,
      producerVersion: options.producerVersion,
      docString: options.docString ?? '',
      opsetImport: [{ domain: '', version: BigInt(options.opsetVersion ?? DEFAULT_OPSET) }],
      metadataProps: Object.entries(options.metadata ?? {}).map(([key, value]) => ({ key, value })),
      graph: {
        name: this.#name,
        node: this.#nodes,
        initializer: this.#initializers,
        input: this.#inputs,
        output: this.#outputs,
      },
    });
  }
}

function tensorProto(name: string, dataType: DataType, dims: readonly number[], rawData: Uint8Array): Init<typeof TensorProtoSchema> {
  // raw_data is little-endian by the ONNX spec; typed arrays are host-endian, and every platform
  // Node.js and ONNX Runtime ship for is little-endian.
  return { name, dims: dims.map(BigInt), dataType, rawData: rawData.slice() };
}

/** Serialises a model to the bytes of a `.onnx` file. */
export function serializeModel(model: ModelProto): Uint8Array {
  return toBinary(ModelProtoSchema, model);
}
