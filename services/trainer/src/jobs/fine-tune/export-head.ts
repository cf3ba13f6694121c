/**
 * One ONNX graph for a fine-tuned model: the frozen backbone, then L2 normalisation, the trained
 * projection head (MatMul) and L2 normalisation again, under the backbone's output name, so that
 * the manifest's input and output specs stay true.
 */
import { create, fromBinary } from '@bufbuild/protobuf';
import { ModelProtoSchema, NodeProtoSchema, TensorProto_DataType, TensorProtoSchema, type ModelProto } from '@faceprint/contracts/onnx';
import { serializeModel } from '@faceprint/onnx';

/** The backbone's bytes with the head (D x D, row-major, y = x W) appended to its first output. */
export function appendProjectionHead(backbone: Uint8Array, weights: Float32Array, dim: number): Uint8Array {
  const model: ModelProto = fromBinary(ModelProtoSchema, backbone);
  const graph = model.graph!;
  const output = graph.output[0]!.name;
  const raw = `${output}__backbone`;
  // The value the backbone produced is renamed; the head's last node produces the output name.
  for (const node of graph.node) node.output = node.output.map((name) => (name === output ? raw : name));
  for (const node of graph.node) node.input = node.input.map((name) => (name === output ? raw : name));
  const head = `${output}__head_weights`;
  graph.initializer.push(create(TensorProtoSchema, { name: head, dims: [BigInt(dim), BigInt(dim)], dataType: TensorProto_DataType.FLOAT, rawData: new Uint8Array(weights.buffer.slice(weights.byteOffset, weights.byteOffset + weights.byteLength)) }));
  const node = (opType: string, inputs: string[], outputName: string, attributes: { name: string; i: bigint }[] = []) =>
    create(NodeProtoSchema, {
      opType,
      input: inputs,
      output: [outputName],
      name: `${outputName}__${opType}`,
      attribute: attributes.map((a) => ({ name: a.name, i: a.i, type: 2 /* INT */ })),
    });
  const l2 = [{ name: 'axis', i: 1n }, { name: 'p', i: 2n }];
  graph.node.push(node('LpNormalization', [raw], `${output}__normalised`, l2), node('MatMul', [`${output}__normalised`, head], `${output}__projected`), node('LpNormalization', [`${output}__projected`], output, l2));
  return serializeModel(model);
}
