/**
 * The least a gRPC embedder can be, for bench/vision.ts to measure beside the embedder service: a
 * bare grpc-js server with one unary method, `/bench.MinimalEmbedder/Embed`, that takes one crop's
 * raw RGB8 bytes and answers its L2-normalised embedding as raw float32 bytes. It keeps what any
 * embedder must do (the same preprocessing, inference on its own thread with the service's ONNX
 * Runtime settings, batches formed from the crops that arrive while one runs, the same HTTP/2
 * windows) and leaves out everything else the service does: protobuf, validation, telemetry,
 * health, logging, model versions, queue limits. Its throughput under the same load is the ceiling
 * of a grpc-js embedder on the machine measured, its caller sharing the cores as the service's does.
 *
 * Reads the model from the registry (FACEPRINT_MODEL_REGISTRY, as the services do), prints its
 * port on stdout once ready, and exits on SIGTERM.
 */
import { Server, ServerCredentials, type sendUnaryData, type ServerUnaryCall } from '@grpc/grpc-js';
import { normalise } from '@faceprint/face-pipeline';
import { ModelRegistry, registryRootFromEnv } from '@faceprint/model-registry';
import { imageInputOf, ortSessionOptions, WorkerSession } from '@faceprint/onnx';
import { DEFAULT_FLOW_CONTROL_WINDOW_BYTES } from '@faceprint/service-kit';
import { setServerConnectionWindow, setServerStreamWindow } from '../libs/service-kit/src/flow-control.js';

const MAX_BATCH = 64;
const { manifest, bytes } = await new ModelRegistry(registryRootFromEnv(process.env)).loadModel('face-recognition-net');
const input = imageInputOf(manifest);
const output = manifest.outputs[0]!.name;
const dim = manifest.embeddingDim;
const session = await WorkerSession.create(bytes, ortSessionOptions({ executionProviders: ['cpu'], threads: 0, spin: false }));

type Reply = (embedding: Buffer) => void;
type Batch = { tensor: Float32Array; replies: Reply[] };
const newBatch = (tensor: Float32Array = new Float32Array(MAX_BATCH * input.cropLength)): Batch => ({ tensor, replies: [] });
/** The next batch, preprocessed crop by crop as they arrive while the one before runs; crops beyond a full batch wait. */
let next = newBatch();
const overflow: { pixels: Buffer; reply: Reply }[] = [];
let running = false;
/** Batch tensors handed back by the inference thread, for reuse. */
const spare: Float32Array[] = [];

function add(pixels: Buffer, reply: Reply): void {
  if (next.replies.length === MAX_BATCH) return void overflow.push({ pixels, reply });
  input.writeCrop(pixels, next.tensor, next.replies.length);
  next.replies.push(reply);
}

async function runBatches(): Promise<void> {
  if (running) return;
  running = true;
  while (next.replies.length > 0) {
    const batch = next;
    next = newBatch(spare.pop());
    const inference = session.run({ [input.name]: { data: batch.tensor.subarray(0, batch.replies.length * input.cropLength), dims: [batch.replies.length, 3, input.height, input.width] } }, [output]);
    for (const { pixels, reply } of overflow.splice(0, MAX_BATCH)) add(pixels, reply);
    const result = await inference;
    spare.push(new Float32Array(result.inputs[input.name]!.data.buffer));
    const values = result.outputs[output]!.data;
    batch.replies.forEach((reply, n) => reply(Buffer.from(normalise(values.slice(n * dim, (n + 1) * dim)).buffer)));
  }
  running = false;
}

const asIs = (message: Buffer) => message;
const server = new Server({ 'grpc.max_receive_message_length': 32 * 1024 * 1024 });
setServerStreamWindow(server, DEFAULT_FLOW_CONTROL_WINDOW_BYTES);
server.addService(
  { embed: { path: '/bench.MinimalEmbedder/Embed', requestStream: false, responseStream: false, requestSerialize: asIs, requestDeserialize: asIs, responseSerialize: asIs, responseDeserialize: asIs } },
  {
    embed: (call: ServerUnaryCall<Buffer, Buffer>, callback: sendUnaryData<Buffer>) => {
      add(call.request, (embedding) => callback(null, embedding));
      void runBatches();
    },
  },
);
server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (error, port) => {
  if (error) throw error;
  setServerConnectionWindow(server, DEFAULT_FLOW_CONTROL_WINDOW_BYTES);
  process.stdout.write(`${port}\n`);
});
// The inference thread would keep the process alive after the server stops.
process.on('SIGTERM', () => process.exit(0));
