/**
 * Bring your own model: an ONNX file the operator has (a licensed ArcFace-class embedder, say)
 * with a spec of what it is. The spec is checked for what the mesh needs (a licence and a source:
 * no model enters the registry without them; the input's preprocessing; the alignment template;
 * the output and its size), the file against the spec (its graph declares the named input and
 * output; ONNX Runtime runs it on a batch of two crops and returns `embedding_dim` finite values
 * per crop that differ between the crops), and the version is published unpromoted with its
 * sha256 and what the file says of itself (producer, IR and opset) in its lineage, as every model's
 * provenance is recorded. A face detector is imported the same way when its spec names an output
 * decoding the detector knows (`detector_head`: YuNet-style or RetinaFace-style heads); its probe
 * runs it on a letterboxed-size image and checks each output the head reads against the count of
 * cells or prior boxes the head implies.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { ModelTask, type ModelManifest } from '@faceprint/contracts/trainer';
import type { ModelRegistry } from '@faceprint/model-registry';
import { headDecoderOf, imageInputOf, inspectModel, manifestShape, retinafaceProblem, type ModelInfo } from '@faceprint/onnx';
import { FaceprintError, RequestValidator } from '@faceprint/service-kit';
import * as ort from 'onnxruntime-node';

const MODEL_NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/;

/** What an import asks for. */
export interface OnnxImport {
  readonly name: string;
  readonly onnxPath: string;
  readonly spec: ModelManifest | undefined;
  readonly promoteIfFirst: boolean;
}

/** The spec's problems, as field violations under `spec.`; none means the mesh can serve what it describes. */
function checkSpec(v: RequestValidator, spec: ModelManifest): void {
  const detector = spec.task === ModelTask.DETECTOR;
  v.check(spec.task === ModelTask.EMBEDDER || detector, 'spec.task', 'must be MODEL_TASK_EMBEDDER or MODEL_TASK_DETECTOR');
  v.check(spec.license.trim() !== '', 'spec.license', 'is required: the licence of the weights (an SPDX id, or LicenseRef-... for a commercial licence); a model without one is not imported');
  v.check(!!spec.source?.kind && !!spec.source.locator, 'spec.source', 'kind and locator are required: where the weights came from (e.g. {"kind": "vendor", "locator": "Acme FaceID 5.2, contract 1234"})');
  const input = spec.inputs[0];
  const shape = input?.shape.map(Number) ?? [];
  v.check(!!input?.name, 'spec.inputs[0].name', detector ? 'is required: the graph input the image goes to' : 'is required: the graph input the crops go to');
  if (detector) {
    v.check(shape.length === 4 && shape[1] === 3 && shape[2] === -1 && shape[3] === -1, 'spec.inputs[0].shape', 'must be NCHW with 3 channels and a dynamic height and width, e.g. [1, 3, -1, -1]: each image is letterboxed to its own size (multiples of 32)');
  } else {
    v.check(shape.length === 4 && shape[1] === 3 && shape[2]! > 0 && shape[3]! > 0, 'spec.inputs[0].shape', 'must be NCHW with 3 channels and a fixed crop size, e.g. [-1, 3, 112, 112]');
  }
  v.check(!input?.layout || input.layout === 'NCHW', 'spec.inputs[0].layout', 'must be NCHW');
  v.check(input?.channelOrder === 'RGB' || input?.channelOrder === 'BGR', 'spec.inputs[0].channel_order', 'must be RGB or BGR');
  v.check(input?.mean.length === 3 && input.std.length === 3 && input.std.every((s) => s !== 0), 'spec.inputs[0]', 'mean and std must hold 3 values each (per channel, applied to 0-255 pixels), std not 0');
  if (detector) {
    const head = spec.detectorHead;
    v.check(head?.kind === 'yunet' || head?.kind === 'retinaface', 'spec.detector_head.kind', 'is required: how the outputs decode into faces, "yunet" or "retinaface" (docs/models.md)');
    if (head?.kind === 'retinaface') {
      const problem = retinafaceProblem(head);
      v.check(problem === undefined, 'spec.detector_head', problem ?? '');
    }
    return;
  }
  const alignment = spec.alignment;
  v.check(alignment?.points.length === 5, 'spec.alignment.points', 'must hold the five landmarks of the crop template (eyes, nose tip, mouth corners), in crop pixels');
  v.check(alignment?.width === shape[3] && alignment?.height === shape[2], 'spec.alignment', `width and height must be the input's crop size (${shape[3]}x${shape[2]})`);
  v.check(!!spec.outputs[0]?.name, 'spec.outputs[0].name', 'is required: the graph output that holds the embedding');
  v.check(spec.embeddingDim > 0, 'spec.embedding_dim', 'is required: the embedding size');
}

/** The probe image of a detector: not square, so that rows and columns cannot be confused. */
const PROBE_WIDTH = 320;
const PROBE_HEIGHT = 256;

/**
 * Runs the detector on a probe image and checks what its head reads: each output there, as many
 * values as the head's cells or prior boxes imply, finite, and decodable; returns what is wrong.
 */
async function probeDetector(bytes: Uint8Array, spec: ModelManifest, info: ModelInfo): Promise<string | undefined> {
  const head = headDecoderOf(spec);
  const missing = head.outputNames.filter((name) => !info.outputs.some((o) => o.name === name));
  if (missing.length > 0) return `has no output ${missing.join(', ')}, which its detector_head reads (it has ${info.outputs.map((o) => o.name).join(', ')})`;
  const input = imageInputOf(spec, { width: PROBE_WIDTH, height: PROBE_HEIGHT });
  const pixels = Uint8Array.from({ length: PROBE_WIDTH * PROBE_HEIGHT * 3 }, (_, i) => Math.floor(i / 3) % 251);
  const session = await ort.InferenceSession.create(bytes);
  try {
    const results = await session.run({ [input.name]: new ort.Tensor('float32', input.toTensor([{ pixels }]), [1, 3, PROBE_HEIGHT, PROBE_WIDTH]) }, [...head.outputNames]);
    const outputs = Object.fromEntries(head.outputNames.map((name) => [name, results[name]!.data as Float32Array]));
    for (const [name, count] of Object.entries(head.outputLengths(PROBE_WIDTH, PROBE_HEIGHT))) {
      const values = outputs[name]!;
      if (values.length !== count) return `gives ${values.length} values in ${name} for a ${PROBE_WIDTH}x${PROBE_HEIGHT} image, and its detector_head implies ${count}: the head's kind, strides or prior sizes do not match the model`;
      if (!values.every(Number.isFinite)) return `gives values in ${name} that are not finite`;
    }
    head.decode(outputs, PROBE_WIDTH, PROBE_HEIGHT, 0);
    return undefined;
  } finally {
    await session.release();
  }
}

/** Runs the model on two different crops; returns what is wrong with its output, or undefined. */
async function probeEmbedder(bytes: Uint8Array, spec: ModelManifest): Promise<string | undefined> {
  const input = imageInputOf(spec);
  const output = spec.outputs[0]!.name;
  const plane = input.width * input.height;
  // Two crops that cannot embed alike: a horizontal and a vertical gradient.
  const crops = [0, 1].map((kind) => ({ pixels: Uint8Array.from({ length: plane * 3 }, (_, i) => Math.floor((255 * (kind === 0 ? Math.floor(i / 3) % input.width : Math.floor(i / 3 / input.width))) / input.width)) }));
  const session = await ort.InferenceSession.create(bytes);
  try {
    const results = await session.run({ [input.name]: new ort.Tensor('float32', input.toTensor(crops), [2, 3, input.height, input.width]) }, [output]);
    const values = results[output]!.data as Float32Array;
    if (values.length !== 2 * spec.embeddingDim) return `gives ${values.length / 2} values per crop, the spec's embedding_dim is ${spec.embeddingDim}`;
    if (!values.every(Number.isFinite)) return 'gives values that are not finite';
    const [a, b] = [values.subarray(0, spec.embeddingDim), values.subarray(spec.embeddingDim)];
    if (a.every((x, i) => x === b[i])) return 'gives the same embedding for two different crops (is the input preprocessing right?)';
    return undefined;
  } finally {
    await session.release();
  }
}

/** Checks and publishes the file; INVALID_ARGUMENT for a bad request or spec, FAILED_PRECONDITION for a file that does not fit or run. */
export async function importOnnxFile(registry: ModelRegistry, request: OnnxImport): Promise<{ manifest: ModelManifest; created: boolean }> {
  const v = new RequestValidator();
  v.check(MODEL_NAME.test(request.name), 'name', 'is required: a registry model name (a-z, 0-9, . _ -; up to 64)');
  v.check(request.onnxPath !== '', 'onnx_path', 'is required: the ONNX file, as a path the trainer can read');
  v.check(request.spec !== undefined, 'spec', 'is required: what the model is (docs/models.md, "Bring your own model")');
  if (request.spec) checkSpec(v, request.spec);
  v.throwIfInvalid();
  const spec = request.spec!;
  const bytes = await readFile(request.onnxPath).catch((error: NodeJS.ErrnoException) => {
    throw FaceprintError.invalidArgument([{ field: 'onnx_path', description: `the trainer cannot read ${request.onnxPath} (${error.code ?? error.message})` }]);
  });
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  const failed = (why: string) => FaceprintError.failedPrecondition('MODEL_FILE', basename(request.onnxPath), `${basename(request.onnxPath)} ${why}`);
  let info: ReturnType<typeof inspectModel>;
  try {
    info = inspectModel(bytes);
  } catch (error) {
    throw failed(`is not an ONNX model: ${(error as Error).message}`);
  }
  const inputName = spec.inputs[0]!.name;
  if (!info.inputs.some((i) => i.name === inputName)) throw failed(`has no input "${inputName}" (it has ${info.inputs.map((i) => i.name).join(', ')})`);
  const outputName = spec.outputs[0]?.name;
  if (spec.task === ModelTask.EMBEDDER && !info.outputs.some((o) => o.name === outputName)) throw failed(`has no output "${outputName}" (it has ${info.outputs.map((o) => o.name).join(', ')})`);
  const probe = spec.task === ModelTask.DETECTOR ? probeDetector(bytes, spec, info) : probeEmbedder(bytes, spec);
  const problem = await probe.catch((error: unknown) => `does not run in ONNX Runtime: ${(error as Error).message}`);
  if (problem) throw failed(problem);

  const provenance = `imported from ${basename(request.onnxPath)} (sha256 ${sha256}; written by ${info.producer || 'an unnamed producer'}, IR ${info.irVersion}, opset ${info.opsetVersion})`;
  const { manifest, created } = await registry.publish({
    name: request.name,
    model: bytes,
    // What the spec says the model is; no thresholds or metrics: those it earns here (faceprint models calibrate, evaluate).
    manifest: {
      task: spec.task,
      license: spec.license,
      source: { kind: spec.source!.kind, locator: spec.source!.locator, path: spec.source!.path, sha256 },
      inputs: spec.inputs,
      outputs:
        spec.task === ModelTask.DETECTOR
          ? info.outputs.map((o) => ({ name: o.name, shape: manifestShape(o), dtype: o.dtype }))
          : spec.outputs.map((o) => ({ ...o, shape: o.shape.length > 0 ? o.shape : [-1n, BigInt(spec.embeddingDim)] })),
      alignment: spec.alignment,
      embeddingDim: spec.embeddingDim,
      detectorHead: spec.detectorHead,
      format: 'onnx',
      lineage: { steps: [...(spec.lineage?.steps ?? []), provenance] },
      description: spec.description || `${spec.task === ModelTask.DETECTOR ? 'A face detector' : 'An embedder'} brought by the operator: ${provenance}.`,
    },
  });
  if (request.promoteIfFirst && (await registry.currentVersion(request.name).catch(() => undefined)) === undefined) await registry.promote(request.name, manifest.model!.version);
  return { manifest, created };
}
