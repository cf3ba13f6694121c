/**
 * The inside of an inference thread (worker-session.ts): one ONNX Runtime session, loaded from
 * the bytes it is sent, running one batch per message and sending the output back with the input
 * (their buffers transferred, not copied).
 */
import { parentPort } from 'node:worker_threads';
import * as ort from 'onnxruntime-node';
import type { ToWorker, FromWorker } from './worker-session.js';

let session: ort.InferenceSession | undefined;
const reply = (message: FromWorker, transfer: ArrayBuffer[] = []) => parentPort!.postMessage(message, transfer);

parentPort!.on('message', (message: ToWorker) => {
  void (async () => {
    try {
      if (message.kind === 'load') {
        session = await ort.InferenceSession.create(message.model, message.options);
        reply({ kind: 'loaded' });
      } else if (message.kind === 'run') {
        const results = await session!.run({ [message.input]: new ort.Tensor('float32', message.tensor, message.dims) }, [message.output]);
        const output = results[message.output]!;
        const data = output.data as Float32Array;
        const input = message.tensor;
        reply({ kind: 'ran', id: message.id, data, dims: [...output.dims], input }, [data.buffer as ArrayBuffer, input.buffer as ArrayBuffer]);
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
