/**
 * The inside of an inference thread (worker-session.ts): one ONNX Runtime session, loaded from
 * the bytes it is sent, running one request per message and sending the outputs back with the
 * inputs (their buffers transferred, not copied).
 */
import { parentPort } from 'node:worker_threads';
import * as ort from 'onnxruntime-node';
import type { FromWorker, ToWorker, TensorData } from './worker-session.js';

let session: ort.InferenceSession | undefined;
const reply = (message: FromWorker, transfer: ArrayBuffer[] = []) => parentPort!.postMessage(message, transfer);

parentPort!.on('message', (message: ToWorker) => {
  void (async () => {
    try {
      if (message.kind === 'load') {
        session = await ort.InferenceSession.create(message.model, message.options);
        reply({ kind: 'loaded', inputNames: [...session.inputNames], outputNames: [...session.outputNames] });
      } else if (message.kind === 'run') {
        const feeds = Object.fromEntries(Object.entries(message.feeds).map(([name, { data, dims }]) => [name, new ort.Tensor('float32', data, dims)]));
        const results = await session!.run(feeds, message.outputs ?? session!.outputNames);
        const outputs: Record<string, TensorData> = {};
        for (const [name, tensor] of Object.entries(results)) outputs[name] = { data: tensor.data as Float32Array, dims: tensor.dims.map(Number) };
        const transfer = [...Object.values(outputs), ...Object.values(message.feeds)].map(({ data }) => data.buffer as ArrayBuffer);
        reply({ kind: 'ran', id: message.id, outputs, inputs: message.feeds }, [...new Set(transfer)]);
      } else {
        await session?.release();
        session = undefined;
        reply({ kind: 'released' });
      }
    } catch (error) {
      reply({ kind: 'failed', id: message.kind === 'run' ? message.id : undefined, message: error instanceof Error ? error.message : String(error) });
    }
  })();
});
