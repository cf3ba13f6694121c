/** Checks a model in ONNX Runtime before it may enter the registry. */
import type { MessageInitShape } from '@bufbuild/protobuf';
import type { TensorSpecSchema } from '@faceprint/contracts/trainer';
import * as ort from 'onnxruntime-node';

/**
 * Loads `model` in ONNX Runtime and runs it once on zeros of `probeShape`, checking the outputs
 * against the manifest's output specs (fixed dimensions must match). Throws an Error naming the
 * model and what failed: an operator ONNX Runtime does not support, a bad graph, a wrong shape.
 */
export async function validateWithOnnxRuntime(
  name: string,
  model: Uint8Array,
  probeShape: readonly number[],
  outputs: readonly MessageInitShape<typeof TensorSpecSchema>[],
): Promise<void> {
  let session: ort.InferenceSession;
  try {
    session = await ort.InferenceSession.create(model);
  } catch (error) {
    throw new Error(`${name}: ONNX Runtime cannot load the model: ${(error as Error).message}`, { cause: error });
  }
  try {
    const [inputName] = session.inputNames;
    const size = probeShape.reduce((a, b) => a * b, 1);
    const results = await session.run({ [inputName!]: new ort.Tensor('float32', new Float32Array(size), [...probeShape]) });
    for (const spec of outputs) {
      const result = results[spec.name ?? ''];
      if (!result) throw new Error(`output "${spec.name}" is missing`);
      const expected = (spec.shape ?? []).map(Number);
      const actual = result.dims;
      const matches = expected.length === actual.length && expected.every((d, i) => d === -1 || d === actual[i]);
      if (!matches) throw new Error(`output "${spec.name}" has shape [${actual.join(', ')}], the manifest says [${expected.join(', ')}]`);
    }
  } catch (error) {
    throw new Error(`${name}: the validation run failed: ${(error as Error).message}`, { cause: error });
  } finally {
    await session.release();
  }
}
